"""Corpus readers: each turns a release on disk into the same `Corpus` of `Utterance` records.

Pure Python and numpy, no TensorFlow. `read_corpus(config)` picks the reader of `config.corpus`.
"""

from emokeras.data.corpus.records import Corpus, Fold, Utterance, count_table

__all__ = ["Corpus", "Fold", "Utterance", "count_table", "read_corpus"]


def read_corpus(config) -> Corpus:
    """The corpus `config` (a `PrepareConfig`) names, read from its root.

    Raises:
      FileNotFoundError, ValueError: the root does not hold that corpus, or an option it cannot take.
    """
    # Imported here: each reader imports only what its format needs.
    from emokeras.data.corpus import crema_d, iemocap, manifest, msp_podcast, ravdess

    root = config.corpus_root()
    classes = config.classes or None
    if config.corpus in ("iemocap", "demo"):
        return iemocap.read_iemocap(root, classes, name=config.corpus)
    if config.corpus == "msp-podcast":
        return msp_podcast.read_msp_podcast(root, classes, word_timings=config.word_timings)
    if config.corpus == "crema-d":
        return crema_d.read_crema_d(root, classes, speaker_folds=config.speaker_folds)
    if config.corpus == "ravdess":
        return ravdess.read_ravdess(root, classes, speaker_folds=config.speaker_folds)
    if config.corpus == "manifest":
        return manifest.read_manifest(root, classes, speaker_folds=config.speaker_folds,
                                      word_timings=config.word_timings)
    raise ValueError(f"unknown corpus {config.corpus!r}")
