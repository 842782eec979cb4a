"""Helpers the tests share.

Audio and corpora they write, small runs and models, the cuDNN harness, the layer test, the masked reference graph, the
two-replica checks and a distributed search.
"""
