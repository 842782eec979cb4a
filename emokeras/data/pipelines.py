"""tf.data pipelines per fold and split (ARCHITECTURE.md, Folds), in three steps.

1. decode: parse a serialised example (`emokeras.data.tfrecords.decode_example`);
2. parse: truncate to `max_frames` frames and `max_words` words (words that
   start beyond the kept frames are dropped, spans clipped), keep lengths;
3. batch: bucket by frame length, pad (lengths give the masks), prefetch.

tf.data traces the pipelines' functions as written
(`tf.autograph.experimental.do_not_convert`): they hold no Python control flow
over tensors, and AutoGraph's rewriting of them would cost each process's first
run about half a second of CPU.

Only the training split is shuffled. Each element is `(inputs, label)` with
`inputs` a dict: `frames [B, T, F]`, `num_frames [B]`, `word_vectors [B, W, D]`,
`num_words [B]`, `word_spans [B, W, 2]` (padding rows are `[0, 0)`).

Every utterance the models read has a frame and a word inside its kept frames:
an LSTM given an empty row fails on a GPU (cuDNN), and a speaker-frame model
has nothing to read. Preparation skips such utterances; the parse step stops
with `UnreadableUtterance`, naming the utterance, if one gets through (a folder
prepared by an older emokeras, or a smaller `max_frames`).
"""

from __future__ import annotations

import contextlib
import os
import re

import numpy as np
import tensorflow as tf

from emokeras.config import DataConfig
from emokeras.data import tfrecords
from emokeras.data.corpus.records import Fold

_UNREADABLE = "the models cannot read it"


# What a user who trains on such an utterance can do.
TRAINING_ADVICE = ("a folder prepared by an older emokeras can hold such utterances: prepare it again (--overwrite), "
                   "which skips them; or read more frames (--max_frames)")


class UnreadableUtterance(ValueError):
    """An utterance with no frame, or no word inside the frames the models read; the message names it."""


def fold_of(manifest: dict, fold: int) -> Fold:
    """The `fold`-th fold of a prepared corpus.

    Raises:
      ValueError: the corpus has no such fold, naming the folds it has.
    """
    folds = manifest["folds"]
    if not isinstance(fold, int) or not 0 <= fold < len(folds):
        have = "fold 0 only" if len(folds) == 1 else f"folds 0-{len(folds) - 1}"
        raise ValueError(f"--fold {fold}: this corpus ({manifest.get('corpus')}) has {have}")
    return Fold.from_json(folds[fold])


def evaluated_splits(manifest: dict, fold: int) -> tuple[str, ...]:
    """The splits a run evaluates: validation, test and any further test split (MSP-Podcast's `test2`)."""
    return tuple(split for split in fold_of(manifest, fold).splits if split != "train")


def parse_example(example: dict, max_frames: int = DataConfig.max_frames,
                  max_words: int = DataConfig.max_words, needs_words: bool = True) -> dict:
    """Truncates frames and words; returns the model's inputs plus the words, label and id.

    The returned tensors depend on an assertion that the utterance kept a frame and (where the corpus has words,
    `needs_words`) a word: evaluating them fails (`reported_as_unreadable` turns that into `UnreadableUtterance`)
    for one that did not.
    """
    frames = example["frames"][:max_frames]
    num_frames = tf.shape(frames)[0]
    spans = example["word_spans"]
    # Keep words that start inside the kept frames, at most max_words of them.
    keep = spans[:, 0] < num_frames
    spans = tf.boolean_mask(spans, keep)[:max_words]
    num_words = tf.shape(spans)[0]
    has_word = tf.logical_or(num_words > 0, tf.constant(not needs_words))
    readable = tf.debugging.Assert(tf.logical_and(num_frames > 0, has_word), [tf.strings.join([
        example["utterance_id"], f": no word starts inside its first {max_frames} frames (or it has no frame), so ",
        _UNREADABLE])])
    with tf.control_dependencies([readable]):
        return {
            "frames": tf.identity(frames),
            "num_frames": tf.identity(num_frames),
            "word_vectors": tf.boolean_mask(example["word_vectors"], keep)[:max_words],
            "num_words": tf.identity(num_words),
            "word_spans": tf.minimum(spans, num_frames),
            "words": tf.boolean_mask(example["words"], keep)[:max_words],
            "label": example["label"],
            "utterance_id": example["utterance_id"],
            "speaker": example.get("speaker", tf.constant("")),
        }


@contextlib.contextmanager
def reported_as_unreadable(advice: str | None = None):
    """Within the block, the parse step's failed assertion is raised as `UnreadableUtterance`.

    Its message, then `advice` (what the caller's user can do about it).
    """
    try:
        yield
    except tf.errors.InvalidArgumentError as error:
        # Graph mode prints the assertion's data in brackets, eager mode after "Summarized data: b'".
        found = re.search(r"(?:\[|Summarized data: b')([^\[\]]*?" + _UNREADABLE + ")", error.message)
        if found is None:
            raise
        raise UnreadableUtterance(found.group(1) + (f"; {advice}" if advice else "")) from None


def _shard_paths(data_dir: str, manifest: dict, groups) -> tuple[list[str], bool]:
    """The shard files holding `groups`.

    In the manifest's order, and whether they hold other groups too (then the split keeps its own groups' examples
    only).
    """
    files = [name for name, held in manifest["shards"].items() if set(held) & set(groups)]
    others = any(set(manifest["shards"][name]) - set(groups) for name in files)
    paths = [os.path.join(data_dir, name) for name in files]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"{data_dir}: missing shard(s) {', '.join(map(os.path.basename, missing))}; "
                                "prepare again with `python -m emokeras.prepare --overwrite`")
    return paths, others


def parsed_split(data_dir: str, fold: int, split: str, data_config: DataConfig | None = None) -> tf.data.Dataset:
    """Steps 1-2 for one split: decoded, filtered to the split's groups, truncated; unbatched."""
    settings = data_config or DataConfig()
    manifest = tfrecords.read_manifest(data_dir)
    splits = fold_of(manifest, fold).splits
    if split not in splits:
        raise ValueError(f"split must be one of {', '.join(splits)} for fold {fold}, got {split!r}")
    groups = splits[split]
    paths, others = _shard_paths(data_dir, manifest, groups)
    for path in paths:
        tfrecords.check_shard(path, manifest)
    dataset = tf.data.TFRecordDataset(paths)
    num_features, dimension = manifest["num_features"], manifest["encoder_dimension"]
    needs_words = manifest["has_words"]

    @tf.autograph.experimental.do_not_convert
    def decode(serialized):
        return tfrecords.decode_example(serialized, num_features, dimension)

    @tf.autograph.experimental.do_not_convert
    def parse(example):
        return parse_example(example, settings.max_frames, settings.max_words, needs_words)

    dataset = dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if others:  # shards that hold other groups too: keep this split's examples
        wanted = tf.constant(list(groups))
        dataset = dataset.filter(tf.autograph.experimental.do_not_convert(
            lambda example: tf.reduce_any(tf.equal(example["group"], wanted))))
    return dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def epoch_seed(seed: int, epoch: int) -> int:
    """The shuffling seed of `epoch`.

    A function of the run's seed and the epoch alone, so that a run resumed at any epoch draws what an uninterrupted run
    draws there.
    """
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0] & 0x7FFFFFFF)


def _batched(dataset: tf.data.Dataset, split: str, batch_size: int, seed: int, epoch: int, with_ids: bool,
             settings: DataConfig) -> tf.data.Dataset:
    """Step 3 for one epoch of a cached split: shuffled (training only, by `epoch_seed`), bucketed, padded."""
    if split == "train":
        dataset = dataset.shuffle(settings.shuffle_buffer, seed=epoch_seed(seed, epoch), reshuffle_each_iteration=False)

    @tf.autograph.experimental.do_not_convert
    def to_pair(example):
        inputs = {key: example[key] for key in ("frames", "num_frames", "word_vectors", "num_words", "word_spans")}
        if with_ids:
            inputs["utterance_id"] = example["utterance_id"]
            inputs["speaker"] = example["speaker"]
        return inputs, example["label"]

    dataset = dataset.map(to_pair, num_parallel_calls=tf.data.AUTOTUNE)
    boundaries = [b for b in settings.bucket_boundaries if b < settings.max_frames]
    return dataset.bucket_by_sequence_length(
        element_length_func=lambda inputs, label: inputs["num_frames"],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        pad_to_bucket_boundary=False,
        drop_remainder=False,
    )


def make_dataset(data_dir: str, fold: int, split: str, batch_size: int = 64, seed: int = 0, with_ids: bool = False,
                 data_config: DataConfig | None = None, epoch: int = 0) -> tf.data.Dataset:
    """The batched `(inputs, label)` dataset of a fold's split, for one epoch.

    Args:
      data_dir: a prepared folder (`tfrecords/<corpus>/<encoder>`).
      fold: 0..9 (see `Fold`).
      split: "train", "validation" or "test".
      batch_size: utterances per batch.
      seed: the run's seed; with `epoch`, it fixes the training split's order (`epoch_seed`).
      with_ids: also put `utterance_id` and `speaker` in `inputs` (for evaluation and inspection, not models).
      data_config: truncation, bucketing and shuffling (`DataConfig`: the paper's 700 frames and 30 words).
      epoch: which epoch's order the training split takes (0-based).
    """
    settings = data_config or DataConfig()
    dataset = parsed_split(data_dir, fold, split, settings).cache()
    return _batched(dataset, split, batch_size, seed, epoch, with_ids, settings).prefetch(tf.data.AUTOTUNE)


def training_epochs(data_dir: str, fold: int, batch_size: int, seed: int, first: int, last: int,
                    data_config: DataConfig | None = None, each_epoch=None) -> tuple[tf.data.Dataset, int]:
    """Epochs `first` to `last - 1` of the training split, one after the other, for one `fit`.

    And the batches in each epoch (`fit`'s `steps_per_epoch`).

    Each epoch's order and `each_epoch`'s draws are functions of `seed` and the epoch, never of how many epochs
    this process has run: a run resumed at epoch `first` sees what an uninterrupted run sees from there.

    Args:
      data_dir: the prepared folder.
      fold: the fold whose training split is read.
      batch_size: utterances per batch.
      seed: the run's seed.
      first: the first epoch (0-based), where a resumed run starts.
      last: one past the last epoch.
      data_config: truncation and bucketing; the paper's if None.
      each_epoch: `(batched dataset, epoch) -> dataset`, applied to each epoch (multi-view negatives, input
        selection); None keeps the batches as they are.
    """
    settings = data_config or DataConfig()
    cached = parsed_split(data_dir, fold, "train", settings).cache()  # decoded once, shared by every epoch
    each_epoch = each_epoch or (lambda dataset, epoch: dataset)
    # Bucketing flushes each bucket's remainder at the end of an epoch, so the count does not depend on the order.
    steps = sum(1 for _ in _batched(cached, "train", batch_size, seed, 0, False, settings))
    epochs = [each_epoch(_batched(cached, "train", batch_size, seed, epoch, False, settings), epoch)
              for epoch in range(first, last)]
    dataset = epochs[0]
    for following in epochs[1:]:
        dataset = dataset.concatenate(following)
    return dataset.prefetch(tf.data.AUTOTUNE), steps


def frame_statistics(data_dir: str, fold: int, data_config: DataConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and variance over every frame the fold's training split feeds the model.

    For the model's `Normalization` layer: statistics come from the training
    split only, so validation and test speakers stay unseen.

    Raises:
      UnreadableUtterance: a training utterance the models cannot read.
    """
    total, total_squares, count = 0.0, 0.0, 0
    frames_of = tf.autograph.experimental.do_not_convert(lambda example: example["frames"])
    dataset = parsed_split(data_dir, fold, "train", data_config).map(frames_of)
    with reported_as_unreadable(TRAINING_ADVICE):
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
