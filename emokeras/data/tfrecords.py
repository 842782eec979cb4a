"""TFRecord shards and their manifest (ARCHITECTURE.md, TFRecord example).

Shards `<shard>-<n>.tfrecord` (IEMOCAP: one per session, `session-<k>-00000.tfrecord`) under
`tfrecords/<corpus>/<encoder>/`, beside a `manifest.json` that says what the shards hold: the classes, the folds
(groups per split), which groups each shard holds, and whether the corpus has words and word timings. Writers
write to temporary names and rename when whole.

Schema 2 stores each example's `group`; a folder of schema 1 (before corpora other than IEMOCAP) is read as
IEMOCAP's: its groups are its speakers, its folds the ten session folds.
"""

from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf

from emokeras.files import write_json

SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)
MANIFEST = "manifest.json"

FEATURES = {
    "utterance_id": tf.io.FixedLenFeature([], tf.string),
    # Schema 1 has no group: its group is its speaker (decode_example).
    "group": tf.io.FixedLenFeature([], tf.string, default_value=""),
    "label": tf.io.FixedLenFeature([], tf.int64),
    "speaker": tf.io.FixedLenFeature([], tf.string),
    "frames": tf.io.FixedLenFeature([], tf.string),
    "num_frames": tf.io.FixedLenFeature([], tf.int64),
    "num_words": tf.io.FixedLenFeature([], tf.int64),
    "words": tf.io.VarLenFeature(tf.string),
    "word_spans": tf.io.VarLenFeature(tf.int64),
    "word_vectors": tf.io.FixedLenFeature([], tf.string),
}


class ManifestMismatch(ValueError):
    """The folder holds TFRecords prepared from something else."""


def shard_file(shard: str, index: int = 0) -> str:
    """The `index`-th file of a shard: `session-1-00000.tfrecord`."""
    return f"{shard}-{index:05d}.tfrecord"


def serialize_example(utterance_id: str, group: str, speaker: str, label: int, frames: np.ndarray,
                      words, word_spans: np.ndarray, word_vectors: np.ndarray) -> bytes:
    """One utterance as a serialised `tf.train.Example`; checks shapes agree."""
    frames = np.ascontiguousarray(frames, dtype=np.float32)
    word_spans = np.asarray(word_spans, dtype=np.int64).reshape(-1, 2)
    word_vectors = np.ascontiguousarray(word_vectors, dtype=np.float32)
    if frames.ndim != 2:
        raise ValueError(f"{utterance_id}: frames must be [num_frames, features], got {frames.shape}")
    if not len(words) == word_spans.shape[0] == word_vectors.shape[0]:
        raise ValueError(f"{utterance_id}: {len(words)} words, {word_spans.shape[0]} spans and "
                         f"{word_vectors.shape[0]} word vectors")

    def int64(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))

    def raw(values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))

    example = tf.train.Example(features=tf.train.Features(feature={
        "utterance_id": raw([utterance_id.encode()]),
        "group": raw([group.encode()]),
        "label": int64([label]),
        "speaker": raw([speaker.encode()]),
        "frames": raw([frames.tobytes()]),
        "num_frames": int64([frames.shape[0]]),
        "num_words": int64([len(words)]),
        "words": raw([w.encode() for w in words]),
        "word_spans": int64(word_spans.reshape(-1).tolist()),
        "word_vectors": raw([word_vectors.tobytes()]),
    }))
    return example.SerializeToString()


def decode_example(serialized: tf.Tensor, num_features: int, word_dimension: int) -> dict[str, tf.Tensor]:
    """Parses one serialised example into dense tensors with their shapes restored."""
    parsed = tf.io.parse_single_example(serialized, FEATURES)
    num_words = parsed["num_words"]
    return {
        "utterance_id": parsed["utterance_id"],
        "group": tf.where(tf.equal(parsed["group"], ""), parsed["speaker"], parsed["group"]),
        "speaker": parsed["speaker"],
        "label": tf.cast(parsed["label"], tf.int32),
        "frames": tf.reshape(tf.io.decode_raw(parsed["frames"], tf.float32), [-1, num_features]),
        "words": tf.sparse.to_dense(parsed["words"]),
        "word_spans": tf.cast(tf.reshape(tf.sparse.to_dense(parsed["word_spans"]), [num_words, 2]), tf.int32),
        "word_vectors": tf.reshape(tf.io.decode_raw(parsed["word_vectors"], tf.float32),
                                   [num_words, word_dimension]),
    }


class ShardWriter:
    """Writes a shard to `<path>.tmp` and renames it to `path` only when closed without error."""

    def __init__(self, path: str):
        self.path = path
        self._temporary = path + ".tmp"
        self._writer = None
        self.count = 0

    def __enter__(self):
        self._writer = tf.io.TFRecordWriter(self._temporary)
        return self

    def write(self, serialized: bytes) -> None:
        """Appends one serialized example."""
        self._writer.write(serialized)
        self.count += 1

    def __exit__(self, kind, value, traceback):
        self._writer.close()
        if kind is None:
            os.replace(self._temporary, self.path)
        elif os.path.exists(self._temporary):
            os.remove(self._temporary)
        return False


def write_manifest(directory: str, manifest: dict) -> None:
    """Writes `manifest` as `directory`'s manifest, whole (a temporary name, renamed)."""
    write_json(os.path.join(directory, MANIFEST), manifest)


def read_manifest(directory: str) -> dict:
    """Reads and checks a manifest (a schema 1 manifest is returned as schema 2 reads it).

    Raises:
      FileNotFoundError: no manifest (the folder was never prepared, or not completely).
      ManifestMismatch: written by a schema this emokeras cannot read.
    """
    path = os.path.join(directory, MANIFEST)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no manifest; run `python -m emokeras.prepare` first, or check --data")
    with open(path, encoding="utf-8") as handle:
        manifest = json.load(handle)
    if manifest.get("schema_version") not in READABLE_SCHEMAS:
        raise ManifestMismatch(f"{path}: schema version {manifest.get('schema_version')}, this emokeras "
                               f"reads {', '.join(map(str, READABLE_SCHEMAS))}; prepare again with --overwrite")
    if manifest["schema_version"] == 1:
        manifest = _schema_1(manifest)
    return manifest


def _schema_1(manifest: dict) -> dict:
    """A schema 1 manifest (IEMOCAP or the demo: four classes, one shard per session) as schema 2 states it."""
    from emokeras.data.corpus.iemocap import DEFAULT_CLASSES, session_folds, speakers_of

    sessions = sorted(int(session) for session in manifest.get("counts", {}))
    return {**manifest, "options": {}, "classes": list(DEFAULT_CLASSES),
            "folds": [fold.to_json() for fold in session_folds()],
            "shards": {shard_file(f"session-{session}"): list(speakers_of(session)) for session in sessions},
            "has_words": True, "has_timings": True}


def class_names(manifest: dict) -> list[str]:
    """The prepared corpus's classes, in label order."""
    return list(manifest["classes"])


# The manifest fields that identify what was prepared; others are results (counts).
IDENTITY_FIELDS = ("corpus", "corpus_root", "corpus_stamp", "encoder_handle", "feature_set", "options")


def check_manifest(directory: str, expected: dict) -> dict:
    """Returns the folder's manifest if it was prepared from `expected`'s identity fields.

    Raises:
      FileNotFoundError: no manifest.
      ManifestMismatch: naming each field that differs.
    """
    found = read_manifest(directory)
    differences = [f"{key}: found {found.get(key)!r}, asked for {expected.get(key)!r}"
                   for key in IDENTITY_FIELDS if found.get(key) != expected.get(key)]
    if differences:
        raise ManifestMismatch(f"{os.path.join(directory, MANIFEST)} was prepared from something else ("
                               + "; ".join(differences) + "); pass --overwrite to replace it, "
                               "or --out to write elsewhere")
    return found


# Shards whose sizes agreed with a manifest's in this process: (the file as it stands, the sizes). A run builds
# several pipelines over the same shards, and each read of a first example costs a dataset and its iterator.
_agreeing_shards = set()


def check_shard(path: str, manifest: dict) -> None:
    """Reads the first example of a shard and checks its sizes against the manifest.

    So that a folder whose manifest disagrees with its shards is named before a pipeline fails inside a reshape. A
    shard that agreed is not read again while it is the same file (device, inode, size, modification time).

    Raises:
      ManifestMismatch: naming the shard, the sizes found and the manifest's.
    """
    stat = os.stat(path)
    checked = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, manifest["num_features"],
               manifest["encoder_dimension"])
    if checked in _agreeing_shards:
        return
    for serialized in tf.data.TFRecordDataset(path).take(1):
        example = tf.io.parse_single_example(serialized, FEATURES)
        frames, words = int(example["num_frames"]), int(example["num_words"])
        floats = {name: len(example[name].numpy()) // 4 for name in ("frames", "word_vectors")}
        found = {"num_features": floats["frames"] / max(frames, 1),
                 "encoder_dimension": floats["word_vectors"] / max(words, 1)}
        wrong = [f"{key} {value:g} where the manifest says {manifest[key]}" for key, value in found.items()
                 if value != manifest[key]]
        if wrong:
            raise ManifestMismatch(f"{path}: its examples have {'; '.join(wrong)} ({MANIFEST} belongs to other "
                                   "data); prepare the folder again with --overwrite")
    _agreeing_shards.add(checked)


def count_examples(path: str) -> int:
    """The number of examples in the shard at `path`."""
    return sum(1 for _ in tf.data.TFRecordDataset(path))
