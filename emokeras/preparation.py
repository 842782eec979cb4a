"""Preparation, as a library: a corpus on disk → TFRecord shards with a manifest (`prepare_corpus(PrepareConfig())`).

With the defaults it writes the demo corpus (`data/demo`), the default text
encoder (`data/encoders/char-ngram-256`) and `tfrecords/demo/char-ngram-256/`,
then prints the utterances per speaker and class. Idempotent: a folder whose
manifest matches is left as it is; a mismatched one is refused unless
`overwrite`. Utterances whose audio or alignment is bad are skipped with a
warning naming them, and counted; the rest are kept.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import shutil
import time

import tensorflow as tf

from emokeras import tfrecords
from emokeras.config import DataConfig, PrepareConfig, encoder_name
from emokeras.corpus import demo, iemocap
from emokeras.features import lexical
from emokeras.features.acoustic import FEATURE_SET, NUM_FEATURES, FeatureError, extract_frames_parallel
from emokeras.files import exclusive, reported_write_errors
from emokeras.labels import CLASS_NAMES

logger = logging.getLogger(__name__)

# The standard 4-class IEMOCAP set (ARCHITECTURE.md, IEMOCAP quirks).
IEMOCAP_STANDARD_COUNT = 5531
# Every model reads the first DataConfig.max_frames frames: an utterance with no word there has no speaker frame
# and no word to read, and an LSTM given an empty row fails on a GPU.
MAX_FRAMES = DataConfig.max_frames
NO_WORD_READ = f"no word in the first {MAX_FRAMES} frames"
# An alignment may run past the last openSMILE frame by up to one analysis
# window plus rounding (the last 60 ms window ends at the audio's end);
# further than this, the alignment does not belong to the audio.
ALIGNMENT_TOLERANCE_FRAMES = 10


def fit_word_spans(utterance_id, words, spans, num_frames, tolerance=ALIGNMENT_TOLERANCE_FRAMES):
    """Fits word spans to the frames openSMILE produced.

    Spans ending up to `tolerance` frames past the last frame are clipped to
    it (words then starting at or past it are dropped); an alignment reaching
    further is for other audio.

    Raises:
      FeatureError: the alignment runs past the audio's end, or no word is left.
    """
    last_end = max(end for _, end in spans)
    if last_end > num_frames + tolerance:
        raise FeatureError(f"{utterance_id}: alignment ends at frame {last_end}, past the audio's end "
                           f"({num_frames} frames)")
    kept = [(word, (start, min(end, num_frames))) for word, (start, end) in zip(words, spans) if start < num_frames]
    if not kept:
        raise FeatureError(f"{utterance_id}: no aligned word lies inside the audio's {num_frames} frames")
    return [word for word, _ in kept], [span for _, span in kept]


def _manifest_identity(config: PrepareConfig, corpus_root: str) -> dict:
    return {
        "schema_version": tfrecords.SCHEMA_VERSION,
        "corpus": config.corpus,
        "corpus_root": os.path.abspath(corpus_root),
        "corpus_stamp": demo.demo_corpus_stamp(corpus_root) if config.corpus == "demo" else None,
        "encoder_handle": config.encoder_handle(),
        "feature_set": FEATURE_SET,
    }


def _ensure_demo_corpus(config: PrepareConfig, corpus_root: str) -> None:
    wanted = demo.demo_stamp(config.demo_seed, config.demo_utterances_per_speaker)
    if demo.demo_corpus_stamp(corpus_root) != wanted:
        logger.info("writing the demo corpus to %s ...", corpus_root)
        demo.write_demo_corpus(os.path.dirname(corpus_root), seed=config.demo_seed,
                               utterances_per_speaker=config.demo_utterances_per_speaker)


def _write_shards(config: PrepareConfig, corpus, encoder, staging: str, skipped) -> tuple[dict, list]:
    """Extracts, checks, encodes and writes every utterance, one shard per session, into `staging`; returns the
    counts per session and class and the utterances written. Bad ones are named and counted in `skipped`."""
    counts: dict[int, collections.Counter] = {}
    written = []
    by_session = collections.defaultdict(list)
    for utterance in corpus:
        by_session[utterance.session].append(utterance)
    paths = [u.wav_path for s in sorted(by_session) for u in by_session[s]]
    # closing(): whatever stops the writing, the feeder threads and openSMILE workers stop before it propagates.
    with contextlib.closing(extract_frames_parallel(paths, workers=config.workers)) as features:
        for session in sorted(by_session):
            kept = []
            for utterance in by_session[session]:
                _, frames, error = next(features)
                if error is not None:
                    logger.warning("skipped: %s", error)
                    skipped["bad audio"].append(utterance.utterance_id)
                    continue
                try:
                    words, spans = fit_word_spans(utterance.utterance_id, utterance.words, utterance.word_spans,
                                                  frames.shape[0])
                except FeatureError as error:
                    logger.warning("skipped: %s (%s)", error, utterance.wav_path)
                    skipped["alignment past audio end"].append(utterance.utterance_id)
                    continue
                first = min(start for start, _ in spans)
                if first >= MAX_FRAMES:  # the models would read its frames but none of its words
                    logger.warning("skipped: %s: its first word starts at frame %d, after the %d frames the models "
                                   "read", utterance.utterance_id, first, MAX_FRAMES)
                    skipped[NO_WORD_READ].append(utterance.utterance_id)
                    continue
                kept.append((utterance, frames, words, spans))
            vectors = encoder.encode([words for _, _, words, _ in kept])
            counts[session] = collections.Counter()
            with tfrecords.ShardWriter(os.path.join(staging, tfrecords.shard_name(session))) as writer:
                for (utterance, frames, words, spans), word_vectors in zip(kept, vectors):
                    writer.write(tfrecords.serialize_example(
                        utterance.utterance_id, utterance.session, utterance.speaker, utterance.label,
                        frames, words, spans, word_vectors))
                    counts[session][CLASS_NAMES[utterance.label]] += 1
                    written.append(utterance)
    # Validate: every shard holds what was counted into it.
    for session, counter in counts.items():
        found = tfrecords.count_examples(os.path.join(staging, tfrecords.shard_name(session)))
        if found != sum(counter.values()):
            raise RuntimeError(f"session {session}: wrote {sum(counter.values())} examples, read back {found}")
    return counts, written


def prepare_corpus(config: PrepareConfig) -> str:
    """Prepares TFRecords for `config` if needed; returns their folder.

    Raises:
      tfrecords.ManifestMismatch: the folder holds other data and not `overwrite`.
      ValueError: nothing usable was read.
    """
    corpus_root = config.corpus_root()
    data_dir = config.data_dir()
    with exclusive(data_dir):
        if config.corpus == "demo":
            _ensure_demo_corpus(config, corpus_root)
        if config.text_encoder is None:
            lexical.build_char_ngram_encoder(config.encoder_handle())
        identity = _manifest_identity(config, corpus_root)
        if os.path.isdir(data_dir) and not config.overwrite:
            try:
                manifest = tfrecords.check_manifest(data_dir, identity)
            except FileNotFoundError:
                pass  # an interrupted earlier run left no manifest: prepare again
            else:
                logger.info("%s: up to date (%d utterances); nothing to do (--overwrite to redo)", data_dir,
                            manifest["num_utterances"])
                return data_dir

        started = time.monotonic()
        corpus = iemocap.read_iemocap(corpus_root)
        if not corpus.utterances:
            raise ValueError(f"{corpus_root}: no 4-class utterance could be read")
        if config.corpus == "iemocap" and len(corpus) + len(corpus.skipped.get("no alignment", [])) \
                != IEMOCAP_STANDARD_COUNT:
            logger.warning("read %d utterances; the standard 4-class IEMOCAP set has %d: is the corpus complete?",
                           len(corpus), IEMOCAP_STANDARD_COUNT)
        encoder = lexical.TextEncoder(config.encoder_handle())
        skipped = collections.defaultdict(list, {k: list(v) for k, v in corpus.skipped.items()})

        # Write into a staging folder, then swap it in whole: readers never see a half-prepared folder.
        staging = data_dir + ".partial"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            with reported_write_errors(staging, "the TFRecords", also=(tf.errors.ResourceExhaustedError,)):
                os.makedirs(staging)
                counts, written = _write_shards(config, corpus, encoder, staging, skipped)
                manifest = dict(identity)
                manifest.update({
                    "encoder_name": encoder_name(config.encoder_handle()),
                    "encoder_dimension": encoder.dimension,
                    "encoder_convention": encoder.convention,
                    "num_features": NUM_FEATURES,
                    "num_utterances": len(written),
                    "counts": {str(s): {name: c[name] for name in CLASS_NAMES} for s, c in sorted(counts.items())},
                    "skipped": {reason: len(ids) for reason, ids in sorted(skipped.items())},
                    "skipped_ids": {reason: ids for reason, ids in sorted(skipped.items()) if reason != "other label"},
                    "seconds": round(time.monotonic() - started, 1),
                })
                tfrecords.write_manifest(staging, manifest)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)  # nothing is marked complete, and the space comes back
            raise
        if os.path.isdir(data_dir):
            shutil.rmtree(data_dir)
        os.replace(staging, data_dir)

    logger.info("%s", iemocap.count_table(written).rstrip("\n"))
    logger.info("skipped: %s", ", ".join(f"{reason}: {len(ids)}" for reason, ids in sorted(skipped.items())) or "none")
    logger.info("wrote %d utterances to %s in %.0f s", len(written), data_dir, manifest["seconds"])
    return data_dir
