"""Corpus readers and the demo corpus writer (pure Python and numpy; no TensorFlow)."""

from emokeras.corpus.iemocap import Corpus, Utterance, count_table, read_iemocap

__all__ = ["Corpus", "Utterance", "count_table", "read_iemocap"]
