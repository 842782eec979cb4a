"""Preparation, as a library: a corpus on disk → TFRecord shards with a manifest (`prepare_corpus(PrepareConfig())`).

With the defaults it writes the demo corpus (`data/demo`), the default text
encoder (`data/encoders/char-ngram-256`) and `tfrecords/demo/char-ngram-256/`,
then prints the utterances per group and class. Idempotent: a folder whose
manifest matches is left as it is; a mismatched one is refused unless
`overwrite`. Utterances whose audio or alignment is bad are skipped with a
warning naming them, and counted; the rest are kept.

The corpus is read by its reader (`emokeras.data.corpus.read_corpus`) into the same records whatever it was, then
streamed: audio is read (down-mixed and resampled to 16 kHz mono) and its frames extracted in worker processes a
bounded number of utterances ahead, words encoded in batches and examples written as they come, so memory does not
grow with the corpus. The manifest records the classes, the folds, which groups each shard holds and whether the
corpus has words and word timings.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import shutil
import time

import tensorflow as tf

from emokeras.config import DataConfig, PrepareConfig, encoder_name
from emokeras.data import alignments, tfrecords
from emokeras.data.corpus import count_table, demo, read_corpus
from emokeras.data.corpus.records import OTHER_CLASS
from emokeras.data.features import lexical
from emokeras.data.features.acoustic import FEATURE_SET, NUM_FEATURES, FeatureError, extract_frames_parallel
from emokeras.files import exclusive, replace_folder, reported_write_errors

logger = logging.getLogger(__name__)

# Every model reads the first DataConfig.max_frames frames: an utterance with no word there has no speaker frame
# and no word to read, and an LSTM given an empty row fails on a GPU.
MAX_FRAMES = DataConfig.max_frames
NO_WORD_READ = f"no word in the first {MAX_FRAMES} frames"
# Examples per shard file: a large group (MSP-Podcast's Train) is written as several files.
SHARD_SIZE = 5000
# Utterances whose words are encoded together (and whose frames are held at once while they are).
ENCODE_BATCH = 64


def _manifest_identity(config: PrepareConfig, corpus_root: str) -> dict:
    return {
        "schema_version": tfrecords.SCHEMA_VERSION,
        "corpus": config.corpus,
        "corpus_root": os.path.abspath(corpus_root),
        "corpus_stamp": demo.demo_corpus_stamp(corpus_root) if config.corpus == "demo" else None,
        "encoder_handle": config.encoder_handle(),
        "feature_set": FEATURE_SET,
        "options": config.options(),
    }


def _ensure_demo_corpus(config: PrepareConfig, corpus_root: str) -> None:
    wanted = demo.demo_stamp(config.demo_seed, config.demo_utterances_per_speaker)
    if demo.demo_corpus_stamp(corpus_root) != wanted:
        logger.info("writing the demo corpus to %s ...", corpus_root)
        demo.write_demo_corpus(os.path.dirname(corpus_root), seed=config.demo_seed,
                               utterances_per_speaker=config.demo_utterances_per_speaker)


def word_inputs(utterance, num_frames: int, timed: bool):
    """The words and frame spans an example stores for `utterance`, fitted to its `num_frames` frames.

    Without timings (a corpus that has none), every span is `[0, 0)`: only models that read no spans train on it.

    Raises:
      FeatureError: the alignment runs past the audio's end, or leaves no word inside it.
    """
    if not timed:
        words = list(utterance.words or ())
        return words, [(0, 0)] * len(words)
    timed_words = [alignments.Word(text, *(span or (None, None))) for text, span in zip(utterance.words,
                                                                                           utterance.spans)]
    words, spans = alignments.frame_spans(timed_words)
    where = utterance.alignment or utterance.id
    try:
        return alignments.fit_to_frames(utterance.id, list(words), list(spans), num_frames)
    except alignments.AlignmentError as error:
        raise FeatureError(f"{error} ({where})") from None


class _ShardFiles:
    """Writes a shard's examples into files of at most `SHARD_SIZE` (`<shard>-00000.tfrecord`, ...)."""

    def __init__(self, staging: str, shard: str):
        self.staging, self.shard, self.files, self.count = staging, shard, [], 0
        self._writer = None

    def write(self, serialized: bytes) -> None:
        if self._writer is None or self._writer.count >= SHARD_SIZE:
            self.close()
            self.files.append(tfrecords.shard_file(self.shard, len(self.files)))
            self._writer = tfrecords.ShardWriter(os.path.join(self.staging, self.files[-1])).__enter__()
        self._writer.write(serialized)
        self.count += 1

    def close(self, error=None) -> None:
        if self._writer is not None:
            self._writer.__exit__(type(error) if error else None, error, None)
            self._writer = None


def _write_shards(config: PrepareConfig, corpus, encoder, staging: str, skipped) -> tuple:
    """Extracts, checks, encodes and writes every utterance into `staging`, shard by shard, streaming.

    Returns `({group: {class: count}}, the utterances written, {shard file: [groups]}, {group: frames})`. Bad ones are
    named and counted in `skipped`.
    """
    timed = corpus.has_timings
    label_of = {name: index for index, name in enumerate(corpus.classes)}
    counts = {group: collections.Counter() for group in corpus.groups}
    frames_per_group = collections.Counter()
    written, shard_groups = [], {}
    ordered = [(shard, [u for u in corpus if u.group in groups]) for shard, groups in corpus.shards]
    requests = [utterance.request for _, utterances in ordered for utterance in utterances]
    # closing(): whatever stops the writing, the feeder threads and openSMILE workers stop before it propagates.
    with contextlib.closing(extract_frames_parallel(requests, workers=config.workers)) as features:
        for shard, utterances in ordered:
            files = _ShardFiles(staging, shard)
            try:
                for first in range(0, len(utterances), ENCODE_BATCH):
                    kept = []
                    for utterance in utterances[first:first + ENCODE_BATCH]:
                        _, frames, error = next(features)
                        if error is not None:
                            logger.warning("skipped: %s", error)
                            skipped["bad audio"].append(utterance.id)
                            continue
                        try:
                            words, spans = word_inputs(utterance, frames.shape[0], timed)
                        except FeatureError as error:
                            logger.warning("skipped: %s", error)
                            skipped["alignment past audio end"].append(utterance.id)
                            continue
                        if timed and min(start for start, _ in spans) >= MAX_FRAMES:
                            # The models would read its frames but none of its words.
                            logger.warning("skipped: %s: its first word starts at frame %d, after the %d frames the "
                                           "models read", utterance.id, min(start for start, _ in spans), MAX_FRAMES)
                            skipped[NO_WORD_READ].append(utterance.id)
                            continue
                        kept.append((utterance, frames, words, spans))
                    vectors = encoder.encode([words for _, _, words, _ in kept])
                    for (utterance, frames, words, spans), word_vectors in zip(kept, vectors):
                        files.write(tfrecords.serialize_example(
                            utterance.id, utterance.group, utterance.speaker, label_of[utterance.label], frames,
                            words, spans, word_vectors))
                        counts[utterance.group][utterance.label] += 1
                        frames_per_group[utterance.group] += frames.shape[0]
                        written.append(utterance)
            except BaseException as error:
                files.close(error)
                raise
            files.close()
            groups = dict(corpus.shards)[shard]
            for name in files.files:
                shard_groups[name] = list(groups)
    # Validate: every shard file holds what was written into it.
    total = sum(tfrecords.count_examples(os.path.join(staging, name)) for name in shard_groups)
    if total != len(written):
        raise RuntimeError(f"{staging}: wrote {len(written)} examples, read back {total}")
    return counts, written, shard_groups, frames_per_group


def prepare_corpus(config: PrepareConfig, wait: bool = False) -> str:
    """Prepares TFRecords for `config` if needed; returns their folder.

    Args:
      config: what to read and where to write it.
      wait: if another process is preparing the folder, wait for it (and find it prepared) rather than refuse.

    Raises:
      tfrecords.ManifestMismatch: the folder holds other data and not `overwrite`.
      ValueError: nothing usable was read.
    """
    corpus_root = config.corpus_root()
    data_dir = config.data_dir()
    with exclusive(data_dir, wait=wait):
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
        corpus = read_corpus(config)
        if not corpus.utterances:
            raise ValueError(f"{corpus_root}: no utterance of the chosen classes could be read")
        if corpus.release_size and corpus.release_size[0] != corpus.release_size[1]:
            found, expected = corpus.release_size
            logger.warning("%s: found %d utterances; the release has %d: is it complete?", corpus_root, found,
                           expected)
        encoder = lexical.TextEncoder(config.encoder_handle())
        skipped = collections.defaultdict(list, {k: list(v) for k, v in corpus.skipped.items()})

        # Write into a staging folder, then swap it in whole: readers never see a half-prepared folder.
        staging = data_dir + ".partial"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            with reported_write_errors(staging, "the TFRecords", also=(tf.errors.ResourceExhaustedError,)):
                os.makedirs(staging)
                counts, written, shards, frames = _write_shards(config, corpus, encoder, staging, skipped)
                if not written:
                    raise ValueError(f"{corpus_root}: every utterance was skipped ("
                                     + ", ".join(f"{reason}: {len(ids)}" for reason, ids in sorted(skipped.items()))
                                     + ")")
                manifest = dict(identity)
                manifest.update({
                    "classes": list(corpus.classes),
                    "folds": [fold.to_json() for fold in corpus.folds],
                    "groups": {group: {"speakers": speakers, "frames": frames[group]}
                               for group, speakers in corpus.speakers().items()},
                    "shards": shards,
                    "has_words": corpus.has_words,
                    "has_timings": corpus.has_timings,
                    "encoder_name": encoder_name(config.encoder_handle()),
                    "encoder_dimension": encoder.dimension,
                    "encoder_convention": encoder.convention,
                    "num_features": NUM_FEATURES,
                    "num_utterances": len(written),
                    "counts": {group: {name: counter[name] for name in corpus.classes}
                               for group, counter in counts.items()},
                    "skipped": {reason: len(ids) for reason, ids in sorted(skipped.items())},
                    "skipped_ids": {reason: ids for reason, ids in sorted(skipped.items())
                                    if reason != OTHER_CLASS},
                    "seconds": round(time.monotonic() - started, 1),
                })
                tfrecords.write_manifest(staging, manifest)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)  # nothing is marked complete, and the space comes back
            raise
        replace_folder(staging, data_dir)

    logger.info("%s", count_table(corpus, written))
    logger.info("skipped: %s", ", ".join(f"{reason}: {len(ids)}" for reason, ids in sorted(skipped.items())) or "none")
    logger.info("wrote %d utterances to %s in %.0f s", len(written), data_dir, manifest["seconds"])
    return data_dir
