"""emokeras.training.experiment at small sizes.

The run folder, the validation figure, best-epoch selection, resuming after an interruption at any point, a run's
identity, one writer per run folder, the exported SavedModel, and two replicas against one.
"""

import csv
import dataclasses
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from emokeras.config import MultiViewConfig
from emokeras.data import pipelines
from emokeras.files import FolderInUse, OutputError
from emokeras.models import builders
from emokeras.models.specs import model_spec
from emokeras.serving import export
from emokeras.settings import command_line
from emokeras.training import experiment
from emokeras.training.experiment import Experiment, RunMismatch
from emokeras.training.tasks import build_compiled_model, build_multiview_model

from helpers.cudnn import lstm_layers
from helpers.runs import FIRST_SECOND, small_config


def read_history(config):
    with open(os.path.join(config.run_dir(), "history.csv")) as f:
        return list(csv.DictReader(f))


def ua_from_confusion(matrix):
    matrix = np.asarray(matrix, float)
    support = matrix.sum(1)
    return np.mean(np.diag(matrix)[support > 0] / support[support > 0])


@pytest.fixture(scope="module")
def trained(h_mm_4_run):
    """The session's small H-MM-4 run: (config, results)."""
    return h_mm_4_run[:2]


def test_a_training_run_passes_every_lstm_a_mask_cudnn_accepts(h_mm_4_run):
    """fit, the validation figures and the test evaluation, on the demo corpus's real silences; stacked layers too."""
    config, _, branch = h_mm_4_run
    assert config.model_config.blstm_layers == 2  # the second layer of each stack reads the first one's mask
    assert branch["lstm_calls"] == len(lstm_layers(build_compiled_model(config, config.data)))
    assert branch["unmasked"] == []


def test_run_folder_holds_config_history_tensorboard_and_results(trained):
    config, results = trained
    run_dir = config.run_dir()
    assert run_dir.endswith(os.path.join("runs", "H-MM-4", "fold-3"))
    with open(os.path.join(run_dir, "config.json")) as f:
        resolved = json.load(f)
    assert resolved["model"] == "H-MM-4" and resolved["model_config"]["hidden_units"] == 8
    assert resolved["replicas"] >= 1 and resolved["data"] == config.data
    assert [int(row["epoch"]) for row in read_history(config)] == [0, 1]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for writer in ("train", "validation"):
        events = EventAccumulator(os.path.join(run_dir, "tensorboard", writer)).Reload()
        tags = set(events.Tags()["tensors"]) | set(events.Tags()["scalars"])
        assert {"epoch_loss", "epoch_unweighted_accuracy", "epoch_weighted_accuracy"} <= tags, (writer, tags)
    assert not os.path.exists(os.path.join(run_dir, "state"))  # removed once the results are written
    with open(os.path.join(run_dir, "results.json")) as f:
        assert json.load(f) == results
    for split in ("validation", "test"):
        matrix = np.array(results[split]["confusion_matrix"])
        assert matrix.shape == (4, 4) and matrix.sum() == 20  # the demo's held-out speaker: 20 utterances
        np.testing.assert_allclose(results[split]["unweighted_accuracy"], ua_from_confusion(matrix), rtol=1e-6)
        np.testing.assert_allclose(results[split]["weighted_accuracy"], np.trace(matrix) / 20, rtol=1e-6)
    assert results["epochs"] == 2 and results["train_seconds"] > 0


def _events(directory):
    from tensorboard.backend.event_processing.event_accumulator import TENSORS, EventAccumulator

    return EventAccumulator(directory, size_guidance={TENSORS: 0}).Reload()


def _plugin_tensors(directory):
    """{tag: (plugin name, [(step, array)])} of the event files in `directory`, read by TensorBoard's reader."""
    import tensorflow as tf

    events = _events(directory)
    return {tag: (events.SummaryMetadata(tag).plugin_data.plugin_name,
                  [(event.step, tf.make_ndarray(event.tensor_proto)) for event in events.Tensors(tag)])
            for tag in events.Tags()["tensors"]}


def test_tensorboard_has_figures_per_epoch_and_the_hyperparameters(trained):
    import tensorflow as tf
    from tensorboard.plugins.hparams import plugin_data_pb2

    config, results = trained
    tensorboard_dir = os.path.join(config.run_dir(), "tensorboard")
    validation = _plugin_tensors(os.path.join(tensorboard_dir, "validation"))
    for tag in ("confusion_matrix", "attention"):
        plugin, steps = validation[tag]
        assert plugin == "images" and [step for step, _ in steps] == [0, 1], tag
        width, height = (int(x) for x in steps[-1][1][:2])
        image = tf.image.decode_png(steps[-1][1][2]).numpy()
        assert image.shape == (height, width, 3) and image.std() > 0, tag  # a drawing, not a blank
    # Every loss term and metric, per epoch, for train and validation.
    for writer in ("train", "validation"):
        tags = _plugin_tensors(os.path.join(tensorboard_dir, writer))
        for tag in ("epoch_loss", "epoch_unweighted_accuracy", "epoch_weighted_accuracy"):
            assert tags[tag][0] == "scalars" and len(tags[tag][1]) == 2, (writer, tag)
    metadata = _events(tensorboard_dir).SummaryMetadata("_hparams_/session_start_info")
    assert metadata.plugin_data.plugin_name == "hparams"
    start = plugin_data_pb2.HParamsPluginData.FromString(metadata.plugin_data.content).session_start_info
    assert start.group_name == "H-MM-4/fold-3"
    assert start.hparams["model"].string_value == "H-MM-4" and start.hparams["hidden_units"].number_value == 8
    assert start.hparams["multiview"].string_value == "none"


@pytest.mark.filterwarnings("ignore:Your input ran out of data")  # a generator's length is known after a pass
def test_the_validation_figure_draws_fits_own_validation_pass(tmp_path):
    """Each epoch's confusion matrix is the one fit's validation pass counted: the split is read once an epoch."""
    from unittest import mock

    from emokeras.models.metrics import UnweightedAccuracy, WeightedAccuracy
    from emokeras.training import figures
    from emokeras.training.callbacks import ValidationFigures

    from helpers.models import batch, compiled, small_model

    model = compiled(small_model("B-ACO-1"), optimizer=keras.optimizers.SGD(0.5),
                     loss="sparse_categorical_crossentropy", metrics=[UnweightedAccuracy(), WeightedAccuracy()])
    inputs, labels = builders.select_inputs(model, batch()), np.array([0, 1, 1], "int32")
    passes = []

    def validation_batches():
        passes.append(1)
        yield inputs, labels

    validation = tf.data.Dataset.from_generator(validation_batches, output_signature=(
        {name: tf.TensorSpec((None, *value.shape[1:]), value.dtype) for name, value in inputs.items()},
        tf.TensorSpec((None,), tf.int32)))
    drawn, draw = [], figures.confusion_matrix_png

    def recorded(matrix, class_names, title):
        drawn.append((matrix, title))
        return draw(matrix, class_names, title)

    with mock.patch.object(figures, "confusion_matrix_png", recorded):
        history = model.fit(tf.data.Dataset.from_tensors((inputs, labels)), validation_data=validation, epochs=2,
                            shuffle=False, verbose=0,
                            callbacks=[ValidationFigures(model, validation, [], str(tmp_path))]).history
    assert len(passes) == 2 and len(drawn) == 2
    predicted = np.argmax(keras.ops.convert_to_numpy(model(inputs, training=False)), axis=-1)
    expected = np.zeros((4, 4), np.int64)
    np.add.at(expected, (labels, predicted), 1)
    np.testing.assert_array_equal(drawn[-1][0], expected)
    assert drawn[-1][1] == f"validation, epoch 2: UA {history['val_unweighted_accuracy'][-1]:.4f}"


def test_predictions_hold_every_evaluated_utterance_and_give_the_results_scores(trained, demo_data):
    import pandas as pd

    from emokeras.training import predictions

    config, results = trained
    rows = predictions.read(os.path.join(config.run_dir(), "predictions.csv"))
    assert list(rows.columns) == ["utterance_id", "speaker", "fold", "split", "seed", "label", "predicted",
                                  "anger", "happiness", "neutral", "sadness"]
    expected = {split: {example["utterance_id"].numpy().decode(): int(example["label"])
                        for example in pipelines.parsed_split(demo_data, 3, split)} for split in ("validation", "test")}
    names = ["anger", "happiness", "neutral", "sadness"]
    for split in ("validation", "test"):
        part = rows[rows["split"] == split]
        assert dict(zip(part["utterance_id"], part["label"])) == {k: names[v] for k, v in expected[split].items()}
        assert set(part["speaker"]) == {"Ses02_M" if split == "validation" else "Ses02_F"}
        assert (part["fold"] == 3).all() and (part["seed"] == config.seed).all()
        np.testing.assert_allclose(part[names].sum(axis=1), 1.0, atol=1e-5)
        assert list(part["predicted"]) == [names[k] for k in np.argmax(part[names].to_numpy(), axis=1)]
        # UA and WA from the file, by hand: results.json's.
        truth, guess = part["label"].map(names.index), part["predicted"].map(names.index)
        recall = [np.mean(guess[truth == k] == k) for k in range(4) if (truth == k).any()]
        assert results[split]["unweighted_accuracy"] == pytest.approx(np.mean(recall), abs=1e-9)
        assert results[split]["weighted_accuracy"] == pytest.approx(np.mean(truth == guess), abs=1e-9)
        pairs = sorted(f"{k}\t{names[v]}\n" for k, v in expected[split].items())
        import hashlib

        assert results[split]["split_hash"] == hashlib.sha256("".join(pairs).encode()).hexdigest()
    assert isinstance(rows, pd.DataFrame)


def test_a_finished_run_without_predictions_gets_them_by_evaluation_alone(b_aco_1_run, tmp_path):
    config, results = b_aco_1_run
    copy = dataclasses.replace(config, output=str(tmp_path / "runs"))
    shutil.copytree(config.run_dir(), copy.run_dir())
    os.remove(os.path.join(copy.run_dir(), "predictions.csv"))
    older = {key: value for key, value in results.items()}
    for split in ("validation", "test"):
        older[split] = {key: value for key, value in results[split].items() if key != "split_hash"}
    with open(os.path.join(copy.run_dir(), "results.json"), "w") as f:
        json.dump(older, f)  # as a run trained before predictions were kept
    seen = EpochsSeen()
    again = Experiment(copy).run(callbacks=[seen])
    assert seen.epochs == []
    assert again == results
    with open(os.path.join(copy.run_dir(), "predictions.csv")) as a, \
            open(os.path.join(config.run_dir(), "predictions.csv")) as b:
        assert a.read() == b.read()


def test_best_epoch_is_the_highest_validation_ua(trained):
    config, results = trained
    history = read_history(config)
    values = [float(row["val_unweighted_accuracy"]) for row in history]
    assert results["best_epoch"] == int(np.argmax(values)) + 1
    # The restored weights are the best epoch's: evaluating them gives that epoch's validation UA.
    np.testing.assert_allclose(results["validation"]["unweighted_accuracy"], max(values), atol=1e-6)


def test_exported_saved_model_matches_the_keras_model(trained):
    config, results = trained
    assert results["saved_model"] == config.export_dir()
    keras_model = build_compiled_model(config, config.data)  # normalisation statistics included
    keras_model.load_weights(os.path.join(config.run_dir(), "best.weights.h5"))
    serve = export.load_serving(config.export_dir())
    inputs, _ = next(iter(pipelines.make_dataset(config.data, 3, "test", batch_size=16)))
    inputs = builders.select_inputs(keras_model, inputs)
    got = serve(**inputs)["probabilities"].numpy()
    want = keras_model.predict(inputs, verbose=0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    with open(os.path.join(config.export_dir(), export.METADATA)) as f:
        metadata = json.load(f)
    assert metadata["model"] == "H-MM-4" and metadata["class_names"] == ["anger", "happiness", "neutral", "sadness"]
    assert set(metadata["inputs"]) == set(model_spec("H-MM-4").inputs)
    # TensorFlow's own reader, as a user runs it: installed beside the interpreter (found without an activated venv).
    saved_model_cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    shown = subprocess.run([saved_model_cli, "show", "--dir", config.export_dir(), "--tag_set", "serve",
                            "--signature_def", "serving_default"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr[-2000:]
    for name in ("frames", "num_frames", "word_vectors", "num_words", "word_spans", "probabilities"):
        assert f"['{name}']" in shown.stdout


def test_a_finished_run_is_reported_not_retrained(trained, caplog):
    caplog.set_level(logging.INFO, logger="emokeras")
    config, results = trained
    again = Experiment(config).run()
    assert again == results
    assert "already trained" in caplog.text


class EpochsSeen(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


class InterruptInEpoch(keras.callbacks.Callback):
    """Ctrl-C in the middle of an epoch (0-based `epoch`), after `batches` of its steps."""

    def __init__(self, epoch, batches=3):
        super().__init__()
        self.epoch, self.batches, self._current = epoch, batches, None

    def on_epoch_begin(self, epoch, logs=None):
        self._current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self._current == self.epoch and batch + 1 == self.batches:
            raise KeyboardInterrupt(f"Ctrl-C in epoch {self.epoch + 1}")


def _weights(path):
    import h5py

    found = {}
    with h5py.File(path, "r") as handle:
        handle.visititems(lambda name, item: found.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset)
                          else None)
    return found


def assert_same_history(got, expected):
    """The same epochs and columns; the same values but for the time, a logged mean allowed two float32 units apart.

    TensorFlow on a CPU does not promise bit-identical loss values from run to run: two uninterrupted runs ending in
    bit-identical weights have logged an epoch's mean loss one float32 unit apart (docs/training.md).
    """
    assert [row.keys() for row in got] == [row.keys() for row in expected]
    for mine, theirs in zip(got, expected, strict=True):
        assert mine["epoch"] == theirs["epoch"]
        for key in theirs.keys() - {"epoch", "epoch_seconds"}:
            assert float(mine[key]) == pytest.approx(float(theirs[key]), rel=2 ** -22, abs=0), (theirs["epoch"], key)


@pytest.mark.large
@pytest.mark.parametrize("multiview_mode", [None, "joint"])
def test_a_run_interrupted_in_epoch_2_ends_exactly_as_an_uninterrupted_one(tmp_path, demo_data, multiview_mode,
                                                                            caplog):
    """Shuffling, dropout and negatives are drawn from (seed, epoch).

    The resumed run's scores, predictions and weights are the uninterrupted run's to the last bit, its history's
    values to float32 rounding. Started again with other sizes, the interrupted run is refused and its recorded
    configuration left as it was.
    """
    caplog.set_level(logging.INFO, logger="emokeras")
    views = MultiViewConfig(mode=multiview_mode, view="B-LEX") if multiview_mode else MultiViewConfig()
    whole = small_config(tmp_path / "whole", demo_data, epochs=2, seed=5, multiview=views, data_config=FIRST_SECOND,
                         model_config=dataclasses.replace(small_config(tmp_path, demo_data).model_config, dropout=0.3))
    resumed = dataclasses.replace(whole, output=str(tmp_path / "resumed" / "runs"),
                                  saved_models=str(tmp_path / "resumed" / "saved_models"))
    expected = Experiment(whole).run()
    with pytest.raises(KeyboardInterrupt):
        Experiment(resumed).run(callbacks=[InterruptInEpoch(epoch=1)])
    assert read_history(resumed) and [int(row["epoch"]) for row in read_history(resumed)] == [0]
    assert os.path.isdir(os.path.join(resumed.run_dir(), "state"))
    assert not os.path.exists(os.path.join(resumed.run_dir(), "results.json"))
    with open(os.path.join(resumed.run_dir(), "config.json")) as f:
        recorded = f.read()
    bigger = dataclasses.replace(resumed, model_config=dataclasses.replace(resumed.model_config, hidden_units=16))
    with pytest.raises(RunMismatch, match="--hidden_units: recorded 8, asked for 16"):
        Experiment(bigger).run()
    with open(os.path.join(resumed.run_dir(), "config.json")) as f:
        assert f.read() == recorded
    seen = EpochsSeen()
    got = Experiment(resumed).run(callbacks=[seen])
    assert seen.epochs == [1] and "resuming the interrupted run at epoch 2 of 2" in caplog.text

    assert_same_history(read_history(resumed), read_history(whole))
    for split in ("validation", "test"):
        assert got[split] == expected[split]
    assert got["best_epoch"] == expected["best_epoch"]
    with open(os.path.join(resumed.run_dir(), "predictions.csv")) as a, \
            open(os.path.join(whole.run_dir(), "predictions.csv")) as b:
        assert a.read() == b.read()
    mine, theirs = (_weights(os.path.join(c.run_dir(), "best.weights.h5")) for c in (resumed, whole))
    assert mine.keys() == theirs.keys()
    for name in theirs:
        assert np.array_equal(mine[name], theirs[name]), name


def test_a_non_finite_setting_is_refused_at_the_flag():
    from emokeras.config import TrainConfig
    from emokeras.settings import from_flat

    for name in ("learning_rate", "clipnorm", "dropout", "l2", "beta_a", "margin"):
        with pytest.raises(ValueError, match=rf"--{name} must be a finite number, got nan"):
            from_flat(TrainConfig, {name: float("nan")})
    with pytest.raises(ValueError, match="--learning_rate must be a finite number, got inf"):
        from_flat(TrainConfig, {"learning_rate": float("inf")})


@pytest.mark.large
def test_training_stops_at_the_first_non_finite_loss_and_exports_nothing(tmp_path, demo_data):
    from emokeras.training.callbacks import NonFiniteLoss

    config = small_config(tmp_path, demo_data, epochs=2, learning_rate=1e30, clipnorm=1e30)
    with pytest.raises(NonFiniteLoss, match=r"fold-3: the training loss is (nan|inf) at epoch 1, step \d+; training "
                                            r"stopped and nothing was exported"):
        Experiment(config).run()
    assert not os.path.exists(os.path.join(config.run_dir(), "results.json"))
    assert not os.path.exists(config.export_dir())
    assert not os.path.exists(os.path.join(config.run_dir(), "state"))  # the epoch was not committed


@pytest.mark.large
def test_a_run_that_fails_before_training_writes_nothing_in_its_folder(tmp_path, demo_data, b_aco_1_run):
    """A wrong --data fails before training and leaves no run folder (the corrected command is no other run's).

    A finished run leaves no temporary file behind.
    """
    config = small_config(tmp_path, demo_data, epochs=1, data=str(tmp_path / "no-such-data"))
    with pytest.raises(FileNotFoundError, match="no-such-data"):
        Experiment(config).run()
    assert not os.path.exists(config.run_dir())
    finished = b_aco_1_run[0].run_dir()
    leftovers = [name for name in os.listdir(finished) if name.startswith(".") or "partial" in name]
    assert leftovers == []


@pytest.mark.large
def test_a_run_stopped_after_training_finishes_from_its_best_epoch(tmp_path, demo_data, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="emokeras")
    """Stopped during the export (here by a full disk; a kill stops it the same way): the error names the export
    folder, and the rerun trains no epoch again; the history, epochs, time and best epoch are the first run's."""
    config = small_config(tmp_path, demo_data, epochs=1, data_config=FIRST_SECOND)

    def full_disk(model, path, metadata, onnx):
        raise tf.errors.ResourceExhaustedError(None, None, f"{path}/variables; No space left on device")

    monkeypatch.setattr(experiment, "export_saved_model", full_disk)
    with pytest.raises(OutputError, match=rf"^{config.export_dir()}: could not write the exported model \(the disk "
                                          r"is full\)"):
        Experiment(config).run()
    assert not os.path.exists(os.path.join(config.run_dir(), "results.json"))
    monkeypatch.undo()
    with open(os.path.join(config.run_dir(), "best.json")) as f:
        best = json.load(f)
    seen = EpochsSeen()
    results = Experiment(config).run(callbacks=[seen])
    assert seen.epochs == [] and "finishing the trained run from its best epoch" in caplog.text
    history = read_history(config)
    assert [int(row["epoch"]) for row in history] == [0] and results["epochs"] == 1
    assert results["train_seconds"] == round(sum(float(row["epoch_seconds"]) for row in history), 1)
    assert results["best_epoch"] == best["epoch"]
    assert os.path.isfile(os.path.join(config.export_dir(), "saved_model.pb"))


def test_a_run_of_other_settings_is_refused_naming_each_difference(b_aco_1_run, tmp_path):
    config, results = b_aco_1_run
    results_path = os.path.join(config.run_dir(), "results.json")
    finished_at = os.path.getmtime(results_path)
    elsewhere = tmp_path / "elsewhere"  # another prepared folder (a manifest is what marks one)
    elsewhere.mkdir()
    shutil.copy(os.path.join(config.data, "manifest.json"), elsewhere / "manifest.json")
    other = dataclasses.replace(config, epochs=2, data=str(elsewhere),
                                data_config=dataclasses.replace(config.data_config, max_frames=600),
                                model_config=dataclasses.replace(config.model_config, hidden_units=16))
    pattern = (r"B-ACO-1/fold-3 holds a run of another configuration \(--epochs: recorded 1, asked for 2; --data: "
               r"recorded '.*', asked for '.*elsewhere'; --max_frames: recorded 700, asked for 600; "
               r"--hidden_units: recorded 8, asked for 16\); train it again with --overwrite, or elsewhere with "
               r"--output")
    with pytest.raises(RunMismatch, match=pattern):
        Experiment(other).run()
    assert os.path.getmtime(results_path) == finished_at
    # What does not shape the result is not part of the run: a multi-view setting of a single model.
    ignored = dataclasses.replace(config, multiview=dataclasses.replace(config.multiview, beta_a=2.0))
    assert Experiment(ignored).run() == results
    # The command line says it in one line, with exit status 1.
    result = subprocess.run([sys.executable, "-m", *shlex.split(command_line(other, "emokeras.train"))],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "--hidden_units: recorded 8, asked for 16" in result.stderr
    assert "Traceback" not in result.stderr


def test_one_run_folder_has_one_writer_and_a_killed_holder_frees_it(b_aco_1_run):
    config, results = b_aco_1_run
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom emokeras.files import exclusive\n"
         "with exclusive(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(600)", config.run_dir()],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderInUse, match=rf"fold-3 is in use by process {holder.pid} on .* since .*; wait for "
                                              "it to finish, or stop it"):
            Experiment(config).run()
    finally:
        holder.kill()  # SIGKILL: the holder cannot clean up
        holder.wait()
    assert Experiment(config).run() == results  # its lock is free again


def test_bad_model_name_fails_before_training(tmp_path, demo_data):
    with pytest.raises(ValueError, match="unknown model 'B-ACO-3'"):
        Experiment(small_config(tmp_path, demo_data, model="B-ACO-3"))


def test_two_replicas_train_like_one(two_replicas):
    """One step of H-MM-4 on the same global batch under one and two replicas.

    Same loss, UA, WA and weights (its GMU's batch statistics included).
    """
    assert two_replicas["training_step"] == "ok", two_replicas["training_step"]


def test_a_mixed_precision_teacher_run_exports_a_float32_acoustic_only_student(trained, tmp_path):
    teacher_config, _ = trained
    # "{fold}" in --teacher stands for the run's fold (one flag for a cross-validation sweep).
    teacher = os.path.join(os.path.dirname(teacher_config.run_dir()), "fold-{fold}")
    config = small_config(tmp_path, teacher_config.data, epochs=1, mixed_precision="mixed_bfloat16",
                          multiview=MultiViewConfig(mode="teacher", teacher=teacher), data_config=FIRST_SECOND)
    results = Experiment(config).run()
    assert keras.mixed_precision.global_policy().name == "float32"  # the run's policy does not leak out
    assert config.run_dir().endswith(os.path.join("B-ACO-1.teacher.H-MM-4", "fold-3"))
    history = read_history(config)
    assert {"contrastive_loss", "kl_loss", "val_unweighted_accuracy"} <= set(history[0])
    assert "acoustic_loss" not in history[0]  # the teacher row is Lc + LKL
    assert all(np.isfinite(float(value)) for value in history[0].values())
    with open(os.path.join(config.run_dir(), "config.json")) as f:
        assert json.load(f)["mixed_precision"] == "mixed_bfloat16"
    with open(os.path.join(config.export_dir(), export.METADATA)) as f:
        assert json.load(f)["mixed_precision"] == "mixed_bfloat16"
    serve = export.load_serving(config.export_dir())
    # No transcript needed, and float32 in and out whatever the policy inside.
    assert {name: spec.dtype for name, spec in serve.structured_input_signature[1].items()} == {
        "frames": tf.float32, "num_frames": tf.int32}
    assert serve.structured_outputs["probabilities"].dtype == tf.float32
    # The export is the trained student: rebuild the multi-view model, load the best weights, compare.
    with experiment.dtype_policy("mixed_bfloat16"):
        model, student = build_multiview_model(config, config.data)
    model.load_weights(os.path.join(config.run_dir(), "best.weights.h5"))
    inputs, _ = next(iter(pipelines.make_dataset(config.data, 3, "test", batch_size=16)))
    inputs = builders.select_inputs(student, inputs)
    np.testing.assert_allclose(serve(**inputs)["probabilities"].numpy(), student.predict(inputs, verbose=0),
                               rtol=1e-5, atol=1e-6)
    assert results["model"] == "B-ACO-1.teacher.H-MM-4"


def test_a_teacher_must_be_a_finished_run_of_the_same_fold(trained, tmp_path):
    teacher_config, _ = trained
    config = small_config(tmp_path, teacher_config.data, fold=2,
                          multiview=MultiViewConfig(mode="teacher", teacher=teacher_config.run_dir()))
    with pytest.raises(ValueError, match="trained on fold 3, not fold 2"):
        Experiment(config).run()
    unfinished = tmp_path / "unfinished" / "H-MM-4" / "fold-3"  # trained, but stopped before its results
    unfinished.mkdir(parents=True)
    for name in ("config.json", "best.weights.h5"):
        shutil.copy(os.path.join(teacher_config.run_dir(), name), unfinished / name)
    config = small_config(tmp_path, teacher_config.data, multiview=MultiViewConfig(mode="teacher",
                                                                                   teacher=str(unfinished)))
    with pytest.raises(FileNotFoundError, match=r"unfinished/H-MM-4/fold-3 is not a finished run \(no results.json\)"):
        Experiment(config).run()
    with pytest.raises(ValueError, match="needs --teacher"):
        small_config(tmp_path, teacher_config.data, multiview=MultiViewConfig(mode="frozen")).run_dir()
