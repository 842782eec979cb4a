"""Any corpus through every command.

Preparation of MSP-Podcast, CREMA-D, RAVDESS and a manifest written in their real layouts; classes and folds as data
(class-sized models, the corpus's folds in errors, Test2 beside Test1); models refused where the corpus lacks what they
read; and one manifest corpus end to end, from prepare to predict.
"""

import dataclasses
import json
import logging
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from emokeras.config import ModelConfig, PrepareConfig
from emokeras.data import pipelines, tfrecords
from emokeras.data.preparation import prepare_corpus
from emokeras.training import predictions
from emokeras.training.experiment import Experiment
from emokeras.training.tasks import class_weights

from helpers.corpora import (
    CREMA_EMPTY,
    MANIFEST_CLASSES,
    MSP_STEREO,
    write_crema_d,
    write_manifest_corpus,
    write_msp_podcast,
    write_ravdess,
)
from helpers.runs import small_config


def prepared(tmp_path_factory, corpus, root, **options):
    """`corpus` at `root` prepared with one openSMILE worker (a second costs more than it saves on a few files)."""
    base = tmp_path_factory.mktemp(corpus)
    config = PrepareConfig(corpus=corpus, root=root, out=str(base / "tfrecords"),
                           encoder_dir=str(tmp_path_factory.getbasetemp() / "encoders"), **{"workers": 1, **options})
    return prepare_corpus(config)


@pytest.fixture(scope="module")
def msp_data(tmp_path_factory):
    return prepared(tmp_path_factory, "msp-podcast", write_msp_podcast(tmp_path_factory.mktemp("msp-release")))


def test_msp_podcast_is_prepared_with_its_classes_splits_and_a_resampled_stereo_file(msp_data):
    manifest = tfrecords.read_manifest(msp_data)
    assert manifest["corpus"] == "msp-podcast" and manifest["schema_version"] == 2
    assert manifest["classes"] == ["anger", "happiness", "neutral", "sadness"]
    assert manifest["folds"] == [{"name": "0", "train": ["Train"], "validation": ["Development"], "test": ["Test1"],
                                  "test2": ["Test2"]}]
    assert manifest["shards"] == {"Train-00000.tfrecord": ["Train"], "Development-00000.tfrecord": ["Development"],
                                  "Test1-00000.tfrecord": ["Test1"], "Test2-00000.tfrecord": ["Test2"]}
    assert manifest["has_words"] and manifest["has_timings"]
    assert manifest["counts"]["Train"] == {"anger": 2, "happiness": 2, "neutral": 2, "sadness": 2}
    assert manifest["skipped"] == {"Test3 (no labels)": 2, "no audio": 1, "other label": 2}
    assert manifest["skipped_ids"]["no audio"] == ["MSP-PODCAST_0009_0001"]
    examples = {e["utterance_id"].decode(): e for e in pipelines.parsed_split(msp_data, 0, "train").as_numpy_iterator()}
    stereo = examples[os.path.splitext(MSP_STEREO)[0]]
    # 1.2 s at 44.1 kHz, two channels: down-mixed and resampled, it has the frames of 1.2 s at 16 kHz.
    assert stereo["num_frames"] == examples["MSP-PODCAST_0001_0000"]["num_frames"] == 115
    assert [w.decode() for w in stereo["words"]] == ["hello", "there"]
    np.testing.assert_array_equal(stereo["word_spans"], [[20, 50], [60, 100]])
    assert len(list(pipelines.parsed_split(msp_data, 0, "test2"))) == 4


def test_msp_podcast_trains_on_its_one_fold_and_reports_test2(msp_data, tmp_path):
    with pytest.raises(ValueError, match=r"--fold 3: this corpus \(msp-podcast\) has fold 0 only"):
        Experiment(small_config(tmp_path, msp_data, fold=3, epochs=1)).run()
    config = small_config(tmp_path, msp_data, fold=0, epochs=1, class_weights="balanced")
    results = Experiment(config).run()
    assert set(results) >= {"validation", "test", "test2"}
    assert np.array(results["test2"]["confusion_matrix"]).sum() == 4
    rows = predictions.read(os.path.join(config.run_dir(), "predictions.csv"))
    assert sorted(set(rows["split"])) == ["test", "test2", "validation"]
    assert predictions.class_columns(rows) == ["anger", "happiness", "neutral", "sadness"]


def test_balanced_class_weights_are_the_inverse_training_frequencies():
    manifest = {"classes": ["a", "b", "c"], "folds": [{"name": "0", "train": ["g1", "g2"], "validation": ["v"],
                                                       "test": ["t"]}],
                "counts": {"g1": {"a": 6, "b": 2, "c": 0}, "g2": {"a": 4, "b": 2, "c": 2}, "v": {"a": 99, "b": 0,
                                                                                                 "c": 0}}}
    config = small_config(pathlib.Path("unused"), "unused", fold=0, class_weights="balanced")
    # Training: a 10, b 4, c 2 of 16: weights 16 / (3 · n).
    assert class_weights(config, manifest) == pytest.approx([16 / 30, 16 / 12, 16 / 6])
    assert class_weights(dataclasses.replace(config, class_weights=None), manifest) is None


@pytest.fixture(scope="module")
def crema_data(tmp_path_factory):
    return prepared(tmp_path_factory, "crema-d", write_crema_d(tmp_path_factory.mktemp("crema-release")),
                    speaker_folds=3)


def test_crema_d_skips_its_empty_clip_and_warns_about_its_size(tmp_path_factory, caplog):
    with caplog.at_level(logging.INFO, logger="emokeras"):
        data_dir = prepared(tmp_path_factory, "crema-d", write_crema_d(tmp_path_factory.mktemp("crema-again")),
                            speaker_folds=3)
    manifest = tfrecords.read_manifest(data_dir)
    assert manifest["skipped_ids"]["bad audio"] == [CREMA_EMPTY]
    assert f"{CREMA_EMPTY}.wav: no samples" in caplog.text
    assert "found 18 utterances; the release has 7442: is it complete?" in caplog.text
    assert manifest["num_utterances"] == 17 and not manifest["has_timings"] and manifest["has_words"]
    assert len(manifest["folds"]) == 3 and data_dir.endswith(os.path.join("crema-d-3-folds", "char-ngram-256"))
    assert "speakers    utterances  anger  disgust  fear  happiness  neutral  sadness" in caplog.text
    assert "speakers-0           6      1        1     1          1        1        1" in caplog.text


def test_a_model_that_needs_word_timings_is_refused_before_training(crema_data, tmp_path):
    config = small_config(tmp_path, crema_data, model="H-MM-4", fold=0)
    with pytest.raises(ValueError, match=r"^H-MM-4 needs word timings \(alignments\), which this corpus \(crema-d\) "
                                         r"has not; models that can run on it: B-ACO-1, B-LEX, B-MM-1, "
                                         r"B-ACO-1\+attention$"):
        Experiment(config).run()
    assert not os.path.exists(config.run_dir())
    with pytest.raises(ValueError, match=r"--fold 7: this corpus \(crema-d\) has folds 0-2"):
        Experiment(small_config(tmp_path, crema_data, fold=7)).run()
    done = subprocess.run([sys.executable, "-m", "emokeras.train", "--model", "B-ACO-2", "--fold", "0", "--data",
                           crema_data, "--output", str(tmp_path / "runs")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "ERROR: B-ACO-2 needs word timings (alignments), which this corpus (crema-d) has not; models that can run "
        "on it: B-ACO-1, B-LEX, B-MM-1, B-ACO-1+attention")


def test_a_six_class_model_trains_on_crema_d_and_exports_its_class_names(crema_data, tmp_path):
    config = small_config(tmp_path, crema_data, model="B-LEX", fold=1, epochs=1)
    results = Experiment(config).run()
    assert np.array(results["test"]["confusion_matrix"]).shape == (6, 6)
    with open(os.path.join(config.export_dir(), "assets.extra", "emokeras.json")) as handle:
        metadata = json.load(handle)
    assert metadata["class_names"] == ["anger", "disgust", "fear", "happiness", "neutral", "sadness"]
    assert metadata["corpus"] == "crema-d"


def test_ravdess_is_resampled_from_48_khz(tmp_path_factory):
    data_dir = prepared(tmp_path_factory, "ravdess", write_ravdess(tmp_path_factory.mktemp("ravdess-release")),
                        speaker_folds=3)
    manifest = tfrecords.read_manifest(data_dir)
    assert manifest["num_utterances"] == 24 and len(manifest["classes"]) == 8
    frames = [e["num_frames"] for e in pipelines.parsed_split(data_dir, 0, "test").as_numpy_iterator()]
    assert frames and set(frames) == {75}  # 0.8 s: (12,800 − 960) / 160 + 1 frames of 60 ms every 10 ms


@pytest.mark.large
def test_a_manifest_corpus_from_prepare_to_predict(tmp_path_factory):
    """TextGrid, CTM and WhisperX timings → prepare → H-MM-4 for one epoch → export → predict.

    The recogniser answers with the corpus's own class names.
    """
    from emokeras.serving.recognizer import Recognizer

    csv_path = write_manifest_corpus(tmp_path_factory.mktemp("own"))
    data_dir = prepared(tmp_path_factory, "manifest", csv_path)
    assert data_dir.endswith(os.path.join("manifest-manifest", "char-ngram-256"))
    manifest = tfrecords.read_manifest(data_dir)
    assert manifest["classes"] == list(MANIFEST_CLASSES) and manifest["has_timings"]
    assert manifest["num_utterances"] == 24 and manifest["skipped_ids"] == {"no audio": ["s1_99"]}
    example = next(e for e in pipelines.parsed_split(data_dir, 0, "validation").as_numpy_iterator()
                   if e["utterance_id"] == b"s3_00")
    assert [w.decode() for w in example["words"]] == ["hello", "2", "there"]
    np.testing.assert_array_equal(example["word_spans"], [[20, 50], [50, 60], [60, 100]])  # "2": between

    root = tmp_path_factory.mktemp("own-runs")
    config = small_config(root, data_dir, model="H-MM-4", fold=0, epochs=1,
                          model_config=ModelConfig(hidden_units=8, blstm_layers=1, dropout=0.1))
    results = Experiment(config).run()
    assert np.array(results["test"]["confusion_matrix"]).shape == (3, 3)

    wav = os.path.join(os.path.dirname(csv_path), "audio", "s1", "s1_00.wav")
    question = root / "question"
    question.mkdir()
    shutil.copy(wav, question / "s1_00.wav")
    shutil.copy(os.path.join(os.path.dirname(csv_path), "align", "s1_00.TextGrid"), question / "s1_00.TextGrid")
    answers = Recognizer.load(config.export_dir()).predict_file(str(question / "s1_00.wav"))
    assert list(answers.columns) == ["emotion", *MANIFEST_CLASSES, "error"]
    assert answers["emotion"].iloc[0] in MANIFEST_CLASSES
    np.testing.assert_allclose(answers[list(MANIFEST_CLASSES)].sum(axis=1), 1.0, atol=1e-5)
    done = subprocess.run([sys.executable, "-m", "emokeras.predict", "--model", config.export_dir(),
                           str(question / "s1_00.wav")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[0].split() == ["file", "start", "end", "emotion", *MANIFEST_CLASSES]
