"""Deployment: exports (SavedModel and model.onnx).

The runtimes that serve them, and the recogniser that answers recordings, composed of a segmenter, a frame source, input
builders and a runtime. Importing this package loads no TensorFlow (the export module does, when imported).
"""
