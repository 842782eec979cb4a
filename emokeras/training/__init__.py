"""Stage 3, training.

One run (`experiment`, built from a `tasks` object, its state in `checkpoint`, its `callbacks` and `figures`),
cross-validation over folds and seeds (`cross_validation`), Keras Tuner searches (`tuning`), per-utterance predictions
(`predictions`) and the paired tests that compare runs (`paired_tests`). Importing this package loads no TensorFlow
(`predictions` and `paired_tests` never do).
"""
