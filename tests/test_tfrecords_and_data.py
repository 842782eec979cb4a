"""TFRecord round trip, the fold rule, truncation, batching and normalisation statistics."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from emokeras.config import DataConfig
from emokeras.data import pipelines, tfrecords


def test_example_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.standard_normal((7, 130)).astype(np.float32)
    vectors = rng.standard_normal((2, 5)).astype(np.float32)
    path = str(tmp_path / "x.tfrecord")
    with tfrecords.ShardWriter(path) as writer:
        writer.write(tfrecords.serialize_example("Ses01F_impro01_M003", "Train", "Ses01_M", 3, frames,
                                                 ["oh", "no"], [(0, 3), (4, 7)], vectors))
    [example] = list(tf.data.TFRecordDataset(path).map(lambda s: tfrecords.decode_example(s, 130, 5)))
    assert example["utterance_id"].numpy() == b"Ses01F_impro01_M003"
    assert example["speaker"].numpy() == b"Ses01_M"
    assert (example["group"].numpy(), example["label"].numpy()) == (b"Train", 3)
    np.testing.assert_array_equal(example["frames"].numpy(), frames)
    np.testing.assert_array_equal(example["word_vectors"].numpy(), vectors)
    np.testing.assert_array_equal(example["word_spans"].numpy(), [[0, 3], [4, 7]])
    assert example["words"].numpy().tolist() == [b"oh", b"no"]


def test_a_schema_1_folder_is_read_as_iemocaps(tmp_path):
    """Folders prepared before other corpora.

    Examples without a group (theirs is their speaker), and a manifest without classes or folds (IEMOCAP's).
    """
    def feature(values, kind):
        return tf.train.Feature(**{kind: (tf.train.Int64List if kind == "int64_list" else
                                          tf.train.BytesList)(value=values)})

    old = tf.train.Example(features=tf.train.Features(feature={
        "utterance_id": feature([b"Ses01F_impro01_M003"], "bytes_list"), "session": feature([1], "int64_list"),
        "label": feature([2], "int64_list"), "speaker": feature([b"Ses01_M"], "bytes_list"),
        "frames": feature([np.zeros((2, 130), np.float32).tobytes()], "bytes_list"),
        "num_frames": feature([2], "int64_list"), "num_words": feature([1], "int64_list"),
        "words": feature([b"oh"], "bytes_list"), "word_spans": feature([0, 2], "int64_list"),
        "word_vectors": feature([np.zeros((1, 4), np.float32).tobytes()], "bytes_list")}))
    example = tfrecords.decode_example(old.SerializeToString(), 130, 4)
    assert example["group"].numpy() == b"Ses01_M"
    with open(tmp_path / "manifest.json", "w") as handle:
        json.dump({"schema_version": 1, "corpus": "iemocap", "counts": {str(s): {} for s in range(1, 6)}}, handle)
    manifest = tfrecords.read_manifest(str(tmp_path))
    assert manifest["classes"] == ["anger", "happiness", "neutral", "sadness"] and len(manifest["folds"]) == 10
    assert manifest["shards"]["session-2-00000.tfrecord"] == ["Ses02_F", "Ses02_M"]
    assert manifest["has_timings"] and manifest["options"] == {}


def test_serialize_refuses_disagreeing_word_counts():
    with pytest.raises(ValueError, match=r"u1: 2 words, 1 spans and 2 word vectors"):
        tfrecords.serialize_example("u1", "g", "Ses01_F", 0, np.zeros((3, 130)), ["a", "b"], [(0, 1)],
                                    np.zeros((2, 4)))


def test_shard_writer_leaves_nothing_when_interrupted(tmp_path):
    path = tmp_path / "s.tfrecord"
    with pytest.raises(KeyboardInterrupt):
        with tfrecords.ShardWriter(str(path)) as writer:
            writer.write(b"partial")
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_an_unchanged_shard_is_read_once_and_a_rewritten_one_again(tmp_path, monkeypatch):
    """A run builds several pipelines over the same shards: a shard's sizes are read once while it is unchanged.

    Written again, it is read again; the same shard under a manifest of other sizes is checked against those.
    """
    path = str(tmp_path / "s-00000.tfrecord")
    manifest = {"num_features": 3, "encoder_dimension": 2}

    def write(num_features, frames):
        with tfrecords.ShardWriter(path) as writer:
            writer.write(tfrecords.serialize_example("u1", "g", "s", 0, np.zeros((frames, num_features)), ["a"],
                                                     [(0, 1)], np.zeros((1, 2))))

    reads = []
    records = tf.data.TFRecordDataset
    monkeypatch.setattr(tf.data, "TFRecordDataset", lambda *args: reads.append(args) or records(*args))
    write(3, frames=4)
    for _ in range(3):
        tfrecords.check_shard(path, manifest)
    assert len(reads) == 1
    write(5, frames=4)  # another shard at the same path: read again, and refused
    with pytest.raises(tfrecords.ManifestMismatch, match=r"s-00000.tfrecord: its examples have num_features 5 "
                                                         r"where the manifest says 3"):
        tfrecords.check_shard(path, manifest)
    with pytest.raises(tfrecords.ManifestMismatch, match="num_features 5 where"):  # a refusal is not remembered
        tfrecords.check_shard(path, manifest)
    tfrecords.check_shard(path, {**manifest, "num_features": 5})
    assert len(reads) == 4


def test_fold_rule():
    from emokeras.data.corpus.iemocap import session_folds

    manifest = {"corpus": "demo", "folds": [fold.to_json() for fold in session_folds()]}
    assert pipelines.fold_of(manifest, 3).splits == {
        "train": ("Ses01_F", "Ses01_M", "Ses03_F", "Ses03_M", "Ses04_F", "Ses04_M", "Ses05_F", "Ses05_M"),
        "validation": ("Ses02_M",), "test": ("Ses02_F",)}
    fold = pipelines.fold_of(manifest, 0)
    assert fold.splits["validation"] == ("Ses01_F",) and fold.splits["test"] == ("Ses01_M",)
    speakers = {f"Ses{s:02d}_{g}" for s in range(1, 6) for g in "FM"}
    tests = [pipelines.fold_of(manifest, f).splits["test"][0] for f in range(10)]
    assert sorted(tests) == sorted(speakers)  # each speaker is test in exactly one fold
    for f in range(10):
        splits = [set(groups) for groups in pipelines.fold_of(manifest, f).splits.values()]
        assert sum(len(s) for s in splits) == len(set().union(*splits)) == 10  # no speaker in two splits
    with pytest.raises(ValueError, match=r"--fold 10: this corpus \(demo\) has folds 0-9"):
        pipelines.fold_of(manifest, 10)
    assert pipelines.evaluated_splits(manifest, 3) == ("validation", "test")


def test_parse_truncates_frames_and_words_and_clips_spans():
    starts = np.arange(40) * 25  # 40 words, 25 frames apart, each 20 long
    example = {
        "frames": tf.ones((1000, 130)),
        "word_spans": tf.constant(np.stack([starts, starts + 20], axis=1), tf.int32),
        "word_vectors": tf.constant(np.arange(40, dtype=np.float32)[:, None] * np.ones((1, 4), np.float32)),
        "words": tf.constant([f"w{i}" for i in range(40)]),
        "label": tf.constant(2),
        "utterance_id": tf.constant("u"),
    }
    parsed = pipelines.parse_example(example, max_frames=700, max_words=30)
    assert parsed["num_frames"].numpy() == 700
    assert parsed["num_words"].numpy() == 28  # words starting at 0, 25, ..., 675 lie in 700 frames
    assert parsed["words"].numpy()[-1] == b"w27" and parsed["words"].shape == (28,)
    np.testing.assert_array_equal(parsed["word_spans"].numpy()[-1], [675, 695])
    parsed = pipelines.parse_example(example, max_frames=690, max_words=30)
    np.testing.assert_array_equal(parsed["word_spans"].numpy()[-1], [675, 690])  # clipped to the kept frames
    parsed = pipelines.parse_example(example, max_frames=1000, max_words=30)
    assert parsed["num_words"].numpy() == 30
    np.testing.assert_array_equal(parsed["word_vectors"].numpy()[:, 0], np.arange(30))
    assert parsed["words"].numpy().tolist() == [f"w{i}".encode() for i in range(30)]


def _collect(dataset):
    ids, labels, batches = [], [], []
    for inputs, label in dataset:
        ids.extend(inputs["utterance_id"].numpy().tolist())
        labels.extend(label.numpy().tolist())
        batches.append(inputs)
    return ids, labels, batches


def test_splits_follow_the_fold_rule(demo_data):
    ids = {split: _collect(pipelines.make_dataset(demo_data, 3, split, batch_size=16, with_ids=True))[0]
           for split in ("train", "validation", "test")}
    assert {len(v) for v in ids.values()} == {160, 20}
    assert len(ids["train"]) == 160
    assert all(i.startswith(b"Ses02") and i.split(b"_")[-1][:1] == b"M" for i in ids["validation"])
    assert all(i.startswith(b"Ses02") and i.split(b"_")[-1][:1] == b"F" for i in ids["test"])
    assert not any(i.startswith(b"Ses02") for i in ids["train"])


def test_batches_are_bucketed_padded_and_carry_lengths(demo_data):
    _, labels, batches = _collect(pipelines.make_dataset(demo_data, 3, "validation", batch_size=8, with_ids=True))
    assert sorted(set(labels)) == [0, 1, 2, 3]
    for inputs in batches:
        frames, lengths = inputs["frames"].numpy(), inputs["num_frames"].numpy()
        assert frames.shape[0] <= 8 and frames.shape[1] == lengths.max() and frames.shape[2] == 130
        for row, length in enumerate(lengths):
            assert np.all(frames[row, length:] == 0) and np.any(frames[row, length - 1] != 0)
        words = inputs["num_words"].numpy()
        assert inputs["word_vectors"].shape[1] == words.max()
        spans = inputs["word_spans"].numpy()
        for row, count in enumerate(words):
            assert np.all(spans[row, count:] == 0)
            assert np.all(spans[row, :count, 1] <= lengths[row]) and np.all(np.diff(spans[row, :count, 0]) > 0)
        # Bucketing: one batch's lengths share a bucket of BUCKET_BOUNDARIES.
        assert len(set(np.digitize(lengths, DataConfig().bucket_boundaries))) == 1


def test_only_training_is_shuffled_each_epoch_by_its_seed_and_epoch(demo_data):
    def order(split, epoch, seed=0):
        return _collect(pipelines.make_dataset(demo_data, 3, split, batch_size=16, with_ids=True, seed=seed,
                                          epoch=epoch))[0]

    first, second = order("train", 0), order("train", 1)
    assert sorted(first) == sorted(second) and first != second
    assert order("train", 1) == second  # a resumed run sees the same epoch in the same order
    assert order("train", 1, seed=1) != second
    assert order("test", 0) == order("test", 1)


def test_training_epochs_follow_one_another_as_single_epochs_would(demo_data):
    epochs, steps = pipelines.training_epochs(demo_data, 3, 16, seed=2, first=1, last=3)
    batches = [len(labels) for _, labels in epochs]
    assert len(batches) == 2 * steps and sum(batches[:steps]) == sum(batches[steps:]) == 160  # 8 speakers x 20
    single = [labels.numpy().tolist()
              for _, labels in pipelines.make_dataset(demo_data, 3, "train", 16, seed=2, epoch=2)]
    assert [labels.numpy().tolist() for _, labels in epochs][steps:] == single


def test_frame_statistics_are_the_training_frames_moments(demo_data):
    mean, variance = pipelines.frame_statistics(demo_data, 3)
    frames = np.concatenate([e["frames"] for e in pipelines.parsed_split(demo_data, 3, "train").as_numpy_iterator()])
    assert mean.shape == variance.shape == (130,)
    np.testing.assert_allclose(mean, frames.astype(np.float64).mean(axis=0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(variance, frames.astype(np.float64).var(axis=0), rtol=1e-3, atol=1e-3)


def test_an_utterance_without_a_word_in_its_kept_frames_stops_the_pipeline_naming_it(demo_data):
    """Preparation skips such utterances (tests/test_prepare.py).

    One that gets through, here because only 5 frames are read (every demo utterance's first word starts at frame 10 or
    later), stops with its name.
    """
    settings = DataConfig(max_frames=5)
    pattern = r"^Ses02[FM]_\S+_M\d+: no word starts inside its first 5 frames \(or it has no frame\), so the models " \
              r"cannot read it; .*--max_frames"
    with pytest.raises(pipelines.UnreadableUtterance, match=pattern):
        with pipelines.reported_as_unreadable(pipelines.TRAINING_ADVICE):
            list(pipelines.make_dataset(demo_data, 3, "validation", data_config=settings))
    with pytest.raises(pipelines.UnreadableUtterance, match=r"^Ses0[1345][FM]_\S+: no word starts inside its first 5"):
        pipelines.frame_statistics(demo_data, 3, settings)


def test_a_manifest_that_disagrees_with_its_shards_is_named(demo_data, tmp_path):
    """Another encoder's manifest beside these shards: named before any pipeline fails inside a reshape."""
    for name in os.listdir(demo_data):
        if name.endswith(".tfrecord"):
            os.symlink(os.path.join(demo_data, name), tmp_path / name)
    with open(os.path.join(demo_data, tfrecords.MANIFEST)) as handle:
        manifest = json.load(handle)
    tfrecords.write_manifest(str(tmp_path), {**manifest, "encoder_dimension": 1024})
    with pytest.raises(tfrecords.ManifestMismatch, match=r"session-1-00000.tfrecord: its examples have "
                                                         r"encoder_dimension 256 where the manifest says 1024"):
        pipelines.make_dataset(str(tmp_path), 3, "train")
