"""emokeras.training.checkpoint.

Each epoch's state is committed whole, so a run stopped at any point, even in the middle of a commit, resumes to the
history, best epoch and weights an uninterrupted run passes through.
"""

import csv
import json
import os

import keras
import numpy as np
import pytest

from emokeras.training import checkpoint
from emokeras.training.checkpoint import RunCheckpoint, TrainingState

rng = np.random.default_rng(0)
X = rng.standard_normal((16, 3)).astype("float32")
Y = (X.sum(-1) > 0).astype("int32")
VALIDATION_UA = [0.5, 0.75, 0.625, 0.875, 0.8]  # epoch 3 (1-based 4) is the best


class ScriptedValidation(keras.callbacks.Callback):
    """Puts a known validation UA into each epoch's logs, as the validation run would."""

    def on_epoch_end(self, epoch, logs=None):
        logs["val_unweighted_accuracy"] = VALIDATION_UA[epoch]


class Stop(keras.callbacks.Callback):
    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise KeyboardInterrupt(f"stopped after epoch {epoch}")


def tiny_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="sparse_categorical_crossentropy")
    return model


def fit(run_dir, epochs=5, stop=None):
    """Fits (resuming from `run_dir`'s state) to `epochs`; returns the model and the epochs it ran."""
    model = tiny_model()
    saver = RunCheckpoint(run_dir)
    initial = saver.restore(model)
    ran = []
    seen = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: ran.append(epoch))
    callbacks = [ScriptedValidation(), saver, *([Stop(stop)] if stop is not None else []), seen]
    model.fit(X, Y, epochs=epochs, initial_epoch=initial, batch_size=8, shuffle=False, verbose=0, callbacks=callbacks)
    return model, ran


def read_history(run_dir):
    with open(os.path.join(run_dir, checkpoint.HISTORY)) as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


def test_a_run_stopped_after_an_epoch_resumes_at_the_next(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        fit(str(tmp_path), stop=1)
    assert TrainingState.read(str(tmp_path)).epochs == 2
    assert read_history(str(tmp_path)) == [0, 1]
    _, ran = fit(str(tmp_path))
    assert ran == [2, 3, 4]
    state = TrainingState.read(str(tmp_path))
    assert read_history(str(tmp_path)) == [0, 1, 2, 3, 4] and [row["epoch"] for row in state.history] == [0, 1, 2, 3, 4]
    assert (state.best_epoch, state.best_value) == (4, 0.875)
    with open(tmp_path / checkpoint.BEST) as handle:
        assert json.load(handle) == {"monitor": "val_unweighted_accuracy", "value": 0.875, "epoch": 4}


def test_the_resumed_weights_are_the_committed_ones(tmp_path):
    uninterrupted, _ = fit(str(tmp_path / "whole"))
    with pytest.raises(KeyboardInterrupt):
        fit(str(tmp_path / "stopped"), stop=2)
    resumed, _ = fit(str(tmp_path / "stopped"))
    # The same batches in the same order, and the optimizer's state restored: the same weights at the end.
    for a, b in zip(uninterrupted.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)
    best = tiny_model()
    best.load_weights(str(tmp_path / "stopped" / checkpoint.BEST_WEIGHTS))
    reference = tiny_model()
    reference.load_weights(str(tmp_path / "whole" / checkpoint.BEST_WEIGHTS))
    for a, b in zip(reference.get_weights(), best.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("failing_rename", [1, 2])
def test_a_commit_stopped_between_its_renames_is_finished_or_undone(tmp_path, monkeypatch, failing_rename):
    """Stopped at the first rename of epoch 2's commit, the state is epoch 1's.

    At the second, the swap is finished from state.old. Either way the history and the state agree, and the run resumes
    from there.
    """
    fit(str(tmp_path), epochs=2)
    renames = {"count": 0}
    real_replace = os.replace

    def replace(source, target):
        if os.path.basename(source) in ("state", "state.partial"):
            renames["count"] += 1
            if renames["count"] == failing_rename:
                raise KeyboardInterrupt("killed during the commit")
        return real_replace(source, target)

    monkeypatch.setattr(checkpoint.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        fit(str(tmp_path), epochs=5)
    monkeypatch.setattr(checkpoint.os, "replace", real_replace)
    state = TrainingState.read(str(tmp_path))
    assert state.epochs == 2 and [row["epoch"] for row in state.history] == [0, 1]
    assert not os.path.exists(tmp_path / "state.old") and not os.path.exists(tmp_path / "state.partial")
    _, ran = fit(str(tmp_path), epochs=5)
    assert ran == [2, 3, 4] and read_history(str(tmp_path)) == [0, 1, 2, 3, 4]


def test_a_missing_monitor_is_named():
    saver = RunCheckpoint("unused")
    with pytest.raises(KeyError, match="no 'val_unweighted_accuracy' in the epoch's logs \\(have: loss\\)"):
        saver.on_epoch_end(0, {"loss": 1.0})
