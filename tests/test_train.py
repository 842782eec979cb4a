"""emokeras.train at small sizes: the run folder, best-epoch selection, resume after interruption,
refusing to retrain a finished run, the exported SavedModel, and two replicas against one."""

import csv
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from cudnn_testing import lstm_layers
from emokeras import data, export, models
from emokeras.config import MultiViewConfig
from emokeras.specs import model_spec
from run_testing import small_config
from emokeras.train import build_compiled_model, build_multiview_model, run


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
    """fit, the validation figures and the test evaluation, on the demo corpus's real silences."""
    config, _, branch = h_mm_4_run
    assert len(branch.layers()) == len(lstm_layers(build_compiled_model(config, config.data)))
    assert not branch.unmasked()


def test_run_folder_holds_config_history_tensorboard_and_results(trained, capsys):
    config, results = trained
    run_dir = config.run_dir()
    assert run_dir.endswith(os.path.join("runs", "H-MM-4", "fold-3"))
    with open(os.path.join(run_dir, "config.json")) as f:
        resolved = json.load(f)
    assert resolved["model"] == "H-MM-4" and resolved["model_config"]["hidden_units"] == 8
    assert resolved["replicas"] >= 1 and resolved["data"] == config.data
    assert [int(row["epoch"]) for row in read_history(config)] == [0, 1, 2]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for writer in ("train", "validation"):
        events = EventAccumulator(os.path.join(run_dir, "tensorboard", writer)).Reload()
        tags = set(events.Tags()["tensors"]) | set(events.Tags()["scalars"])
        assert {"epoch_loss", "epoch_unweighted_accuracy", "epoch_weighted_accuracy"} <= tags, (writer, tags)
    assert not os.path.exists(os.path.join(run_dir, "backup"))  # removed once training finished
    with open(os.path.join(run_dir, "results.json")) as f:
        assert json.load(f) == results
    for split in ("validation", "test"):
        matrix = np.array(results[split]["confusion_matrix"])
        assert matrix.shape == (4, 4) and matrix.sum() == 40  # the demo's held-out speaker: 40 utterances
        np.testing.assert_allclose(results[split]["unweighted_accuracy"], ua_from_confusion(matrix), rtol=1e-6)
        np.testing.assert_allclose(results[split]["weighted_accuracy"], np.trace(matrix) / 40, rtol=1e-6)
    assert results["epochs"] == 3 and results["train_seconds"] > 0


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
        assert plugin == "images" and [step for step, _ in steps] == [0, 1, 2], tag
        width, height = (int(x) for x in steps[-1][1][:2])
        image = tf.image.decode_png(steps[-1][1][2]).numpy()
        assert image.shape == (height, width, 3) and image.std() > 0, tag  # a drawing, not a blank
    # Every loss term and metric, per epoch, for train and validation.
    for writer in ("train", "validation"):
        tags = _plugin_tensors(os.path.join(tensorboard_dir, writer))
        for tag in ("epoch_loss", "epoch_unweighted_accuracy", "epoch_weighted_accuracy"):
            assert tags[tag][0] == "scalars" and len(tags[tag][1]) == 3, (writer, tag)
    metadata = _events(tensorboard_dir).SummaryMetadata("_hparams_/session_start_info")
    assert metadata.plugin_data.plugin_name == "hparams"
    start = plugin_data_pb2.HParamsPluginData.FromString(metadata.plugin_data.content).session_start_info
    assert start.group_name == "H-MM-4/fold-3"
    assert start.hparams["model"].string_value == "H-MM-4" and start.hparams["hidden_units"].number_value == 8
    assert start.hparams["multiview"].string_value == "none"


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
    inputs, _ = next(iter(data.make_dataset(config.data, 3, "test", batch_size=16)))
    inputs = models.select_inputs(keras_model, inputs)
    got = serve(**inputs)["probabilities"].numpy()
    want = keras_model.predict(inputs, verbose=0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    with open(os.path.join(config.export_dir(), export.METADATA)) as f:
        metadata = json.load(f)
    assert metadata["model"] == "H-MM-4" and metadata["class_names"] == ["anger", "happiness", "neutral", "sadness"]
    assert set(metadata["inputs"]) == set(model_spec("H-MM-4").inputs)
    shown = subprocess.run(["saved_model_cli", "show", "--dir", config.export_dir(), "--tag_set", "serve",
                            "--signature_def", "serving_default"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr[-2000:]
    for name in ("frames", "num_frames", "word_vectors", "num_words", "word_spans", "probabilities"):
        assert f"['{name}']" in shown.stdout


def test_a_finished_run_is_reported_not_retrained(trained, capsys):
    config, results = trained
    again = run(config)
    assert again == results
    assert "already trained" in capsys.readouterr().out


class Interrupt(keras.callbacks.Callback):
    def __init__(self, after_epoch):
        super().__init__()
        self.after_epoch = after_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.after_epoch:
            raise KeyboardInterrupt(f"interrupted after epoch {epoch}")


class EpochsSeen(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path, demo_data, capsys):
    config = small_config(tmp_path, demo_data, epochs=4)
    with pytest.raises(KeyboardInterrupt):
        run(config, callbacks=[Interrupt(after_epoch=1)])
    assert os.path.isdir(os.path.join(config.run_dir(), "backup"))
    assert not os.path.exists(os.path.join(config.run_dir(), "results.json"))
    seen = EpochsSeen()
    results = run(config, callbacks=[seen])
    assert "resuming" in capsys.readouterr().out
    assert seen.epochs == [2, 3]  # epochs 0 and 1 were finished before the interruption
    assert [int(row["epoch"]) for row in read_history(config)] == [0, 1, 2, 3]
    values = [float(row["val_unweighted_accuracy"]) for row in read_history(config)]
    assert results["epochs"] == 4 and results["best_epoch"] == int(np.argmax(values)) + 1


def test_bad_model_name_fails_before_training(tmp_path, demo_data):
    with pytest.raises(ValueError, match="unknown model 'B-ACO-3'"):
        run(small_config(tmp_path, demo_data, model="B-ACO-3"))


_TWO_REPLICAS = """
import numpy as np, tensorflow as tf, keras
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from emokeras import data, models
from emokeras.config import ModelConfig, TrainConfig
from emokeras.metrics import UnweightedAccuracy, WeightedAccuracy
from emokeras.train import build_compiled_model
data_dir, name = {data_dir!r}, {name!r}
config = TrainConfig(model=name, fold=3, learning_rate=1e-2,
                     model_config=ModelConfig(hidden_units=8, blstm_layers=1, dropout=0.0))
inputs, labels = next(iter(data.make_dataset(data_dir, 3, "train", batch_size=32)))
results = []
for devices in (["/cpu:0"], ["/cpu:0", "/cpu:1"]):
    strategy = tf.distribute.MirroredStrategy(devices)
    with strategy.scope():
        keras.utils.set_random_seed(3)
        model = build_compiled_model(config, data_dir)
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss=model.loss,
                      metrics=[UnweightedAccuracy(), WeightedAccuracy()])
    # A dataset, not train_on_batch: fit splits a dataset's global batch across the replicas, whereas
    # train_on_batch would hand every replica the whole batch.
    batch = tf.data.Dataset.from_tensors((models.select_inputs(model, inputs), labels))
    logs = {{key: values[0] for key, values in model.fit(batch, epochs=1, verbose=0).history.items()}}
    after = model.evaluate(batch, verbose=0, return_dict=True)
    results.append((strategy.num_replicas_in_sync, logs, after, [(w.path, keras.ops.convert_to_numpy(w).copy()) for w in model.weights]))
(r1, logs1, after1, weights1), (r2, logs2, after2, weights2) = results
assert (r1, r2) == (1, 2)
print('LOGS', logs1, logs2, after1, after2)
for key in ("loss", "unweighted_accuracy", "weighted_accuracy"):
    np.testing.assert_allclose(logs2[key], logs1[key], rtol=1e-4, err_msg=key)
    np.testing.assert_allclose(after2[key], after1[key], rtol=1e-4, err_msg="after the step: " + key)
# Plain SGD: the step is the gradient itself, so a wrongly scaled loss would show (Adam's step would not).
assert len(weights1) == len(weights2)
for (path, w1), (_, w2) in zip(weights1, weights2):
    np.testing.assert_allclose(w2, w1, rtol=1e-4, atol=1e-6, err_msg=path)
"""


@pytest.mark.parametrize("name", ["B-ACO-1", "H-MM-4"])
def test_two_replicas_train_like_one(demo_data, name):
    """One step on the same global batch under one and two replicas: same loss, UA, WA and weights.
    Logical CPU devices must be configured before TensorFlow starts, hence a fresh process."""
    script = _TWO_REPLICAS.format(data_dir=demo_data, name=name)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]


def test_teacher_run_exports_an_acoustic_only_student(trained, tmp_path):
    teacher_config, _ = trained
    # "{fold}" in --teacher stands for the run's fold (one flag for a cross-validation sweep).
    teacher = os.path.join(os.path.dirname(teacher_config.run_dir()), "fold-{fold}")
    config = small_config(tmp_path, teacher_config.data, epochs=1,
                          multiview=MultiViewConfig(mode="teacher", teacher=teacher))
    results = run(config)
    assert config.run_dir().endswith(os.path.join("B-ACO-1.teacher.H-MM-4", "fold-3"))
    history = read_history(config)
    assert {"contrastive_loss", "kl_loss", "val_unweighted_accuracy"} <= set(history[0])
    assert "acoustic_loss" not in history[0]  # the teacher row is Lc + LKL
    serve = export.load_serving(config.export_dir())
    assert set(serve.structured_input_signature[1]) == {"frames", "num_frames"}  # no transcript needed
    # The export is the trained student: rebuild the multi-view model, load the best weights, compare.
    model, student = build_multiview_model(config, config.data)
    model.load_weights(os.path.join(config.run_dir(), "best.weights.h5"))
    inputs, _ = next(iter(data.make_dataset(config.data, 3, "test", batch_size=16)))
    inputs = models.select_inputs(student, inputs)
    np.testing.assert_allclose(serve(**inputs)["probabilities"].numpy(), student.predict(inputs, verbose=0),
                               rtol=1e-5, atol=1e-6)
    assert results["model"] == "B-ACO-1.teacher.H-MM-4"


def test_a_teacher_from_another_fold_is_refused(trained, tmp_path):
    teacher_config, _ = trained
    config = small_config(tmp_path, teacher_config.data, fold=2,
                          multiview=MultiViewConfig(mode="teacher", teacher=teacher_config.run_dir()))
    with pytest.raises(ValueError, match="trained on fold 3, not fold 2"):
        run(config)
    with pytest.raises(ValueError, match="needs --teacher"):
        small_config(tmp_path, teacher_config.data, multiview=MultiViewConfig(mode="frozen")).run_dir()
