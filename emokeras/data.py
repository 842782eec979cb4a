"""tf.data pipelines per fold and split (DESIGN.md, Folds), in three steps.

1. decode: parse a serialised example (`emokeras.tfrecords.decode_example`);
2. parse: truncate to `max_frames` frames and `max_words` words (words that
   start beyond the kept frames are dropped, spans clipped), keep lengths;
3. batch: bucket by frame length, pad (lengths give the masks), prefetch.

Only the training split is shuffled. Each element is `(inputs, label)` with
`inputs` a dict: `frames [B, T, F]`, `num_frames [B]`, `word_vectors [B, W, D]`,
`num_words [B]`, `word_spans [B, W, 2]` (padding rows are `[0, 0)`).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow as tf

from emokeras import tfrecords

SPLITS = ("train", "validation", "test")
NUM_FOLDS = 10
MAX_FRAMES = 700
MAX_WORDS = 30
BUCKET_BOUNDARIES = (100, 200, 300, 400, 500, 600)


@dataclasses.dataclass(frozen=True)
class Fold:
    """Fold `f` holds out session `f // 2 + 1`: for even `f` its female speaker is
    validation and its male test, for odd `f` the reverse; the other four
    sessions train."""

    index: int
    held_out_session: int
    train_sessions: tuple[int, ...]
    validation_speaker: str
    test_speaker: str

    @classmethod
    def of(cls, index: int) -> "Fold":
        if not 0 <= index < NUM_FOLDS:
            raise ValueError(f"fold must be 0..{NUM_FOLDS - 1}, got {index}")
        session = index // 2 + 1
        validation, test = ("F", "M") if index % 2 == 0 else ("M", "F")
        return cls(index, session, tuple(s for s in range(1, 6) if s != session),
                   f"Ses{session:02d}_{validation}", f"Ses{session:02d}_{test}")

    def sessions(self, split: str) -> tuple[int, ...]:
        return self.train_sessions if split == "train" else (self.held_out_session,)

    def speaker(self, split: str) -> str | None:
        """The one speaker of a held-out split; None for training (all speakers of its sessions)."""
        return {"train": None, "validation": self.validation_speaker, "test": self.test_speaker}[split]


def parse_example(example: dict, max_frames: int = MAX_FRAMES, max_words: int = MAX_WORDS) -> dict:
    """Truncates frames and words; returns the model's inputs plus the words, label and id."""
    frames = example["frames"][:max_frames]
    num_frames = tf.shape(frames)[0]
    spans = example["word_spans"]
    # Keep words that start inside the kept frames, at most max_words of them.
    keep = spans[:, 0] < num_frames
    spans = tf.boolean_mask(spans, keep)[:max_words]
    vectors = tf.boolean_mask(example["word_vectors"], keep)[:max_words]
    words = tf.boolean_mask(example["words"], keep)[:max_words]
    spans = tf.minimum(spans, num_frames)
    return {
        "frames": frames,
        "num_frames": num_frames,
        "word_vectors": vectors,
        "num_words": tf.shape(spans)[0],
        "word_spans": spans,
        "words": words,
        "label": example["label"],
        "utterance_id": example["utterance_id"],
    }


def _shard_paths(data_dir: str, sessions) -> list[str]:
    paths = [os.path.join(data_dir, tfrecords.shard_name(s)) for s in sessions]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"{data_dir}: missing shard(s) {', '.join(map(os.path.basename, missing))}; "
                                "prepare again with `python -m emokeras.prepare --overwrite`")
    return paths


def parsed_split(data_dir: str, fold: int, split: str, max_frames: int = MAX_FRAMES,
                 max_words: int = MAX_WORDS) -> tf.data.Dataset:
    """Steps 1-2 for one split: decoded, filtered to the split's speakers, truncated; unbatched."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    manifest = tfrecords.read_manifest(data_dir)
    fold_ = Fold.of(fold)
    dataset = tf.data.TFRecordDataset(_shard_paths(data_dir, fold_.sessions(split)))
    num_features, dimension = manifest["num_features"], manifest["encoder_dimension"]
    dataset = dataset.map(lambda s: tfrecords.decode_example(s, num_features, dimension),
                          num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    speaker = fold_.speaker(split)
    if speaker is not None:
        dataset = dataset.filter(lambda example: tf.equal(example["speaker"], speaker))
    return dataset.map(lambda example: parse_example(example, max_frames, max_words),
                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def make_dataset(data_dir: str, fold: int, split: str, batch_size: int = 64, max_frames: int = MAX_FRAMES,
                 max_words: int = MAX_WORDS, seed: int = 0, with_ids: bool = False,
                 bucket_boundaries=BUCKET_BOUNDARIES) -> tf.data.Dataset:
    """The batched `(inputs, label)` dataset of a fold's split.

    Args:
      data_dir: a prepared folder (`tfrecords/<corpus>/<encoder>`).
      fold: 0..9 (see `Fold`).
      split: "train", "validation" or "test".
      batch_size: utterances per batch.
      max_frames, max_words: truncation (the paper: 700 frames, 30 words).
      seed: the training split's shuffle seed (reshuffled every epoch).
      with_ids: also put `utterance_id` in `inputs` (for inspection, not models).
      bucket_boundaries: frame-length bucket edges; batches hold utterances of
        one bucket, so little padding is computed.
    """
    dataset = parsed_split(data_dir, fold, split, max_frames, max_words).cache()
    if split == "train":
        dataset = dataset.shuffle(4096, seed=seed, reshuffle_each_iteration=True)

    def to_pair(example):
        inputs = {key: example[key] for key in ("frames", "num_frames", "word_vectors", "num_words", "word_spans")}
        if with_ids:
            inputs["utterance_id"] = example["utterance_id"]
        return inputs, example["label"]

    dataset = dataset.map(to_pair, num_parallel_calls=tf.data.AUTOTUNE)
    boundaries = [b for b in bucket_boundaries if b < max_frames]
    dataset = dataset.bucket_by_sequence_length(
        element_length_func=lambda inputs, label: inputs["num_frames"],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        pad_to_bucket_boundary=False,
        drop_remainder=False,
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


def frame_statistics(data_dir: str, fold: int, max_frames: int = MAX_FRAMES) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and variance over every frame the fold's training split feeds the model.

    For the model's `Normalization` layer: statistics come from the training
    split only, so validation and test speakers stay unseen.
    """
    total, total_squares, count = 0.0, 0.0, 0
    dataset = parsed_split(data_dir, fold, "train", max_frames).map(lambda e: e["frames"])
    for frames in dataset.as_numpy_iterator():
        frames = frames.astype(np.float64)
        total = total + frames.sum(axis=0)
        total_squares = total_squares + np.square(frames).sum(axis=0)
        count += frames.shape[0]
    if count == 0:
        raise ValueError(f"{data_dir}: fold {fold}'s training split has no frames")
    mean = total / count
    variance = np.maximum(total_squares / count - np.square(mean), 0.0)
    return mean.astype(np.float32), variance.astype(np.float32)
