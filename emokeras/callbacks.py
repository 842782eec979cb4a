"""Training callbacks: the best epoch by validation UA, kept across interruptions, and epoch times."""

from __future__ import annotations

import json
import math
import os
import time

import keras

from emokeras.files import write_json


class EpochSeconds(keras.callbacks.Callback):
    """Adds `epoch_seconds` (wall time of the epoch, validation included) to each epoch's logs,
    so the history file and TensorBoard record how long training took."""

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.monotonic() - self._started


class BetaSchedule(keras.callbacks.Callback):
    """Sets a `MultiViewModel`'s loss weights each epoch: `β = β0 / (1 + ρ·epoch)` (Appendix B).

    With `decay` (ρ) 0 the weights stay at their initial values.
    """

    def __init__(self, beta_a: float, beta_m: float, decay: float = 0.0):
        super().__init__()
        self.beta_a, self.beta_m, self.decay = beta_a, beta_m, decay

    def on_epoch_begin(self, epoch, logs=None):
        scale = 1.0 / (1.0 + self.decay * epoch)
        self.model.beta_a.assign(self.beta_a * scale)
        self.model.beta_m.assign(self.beta_m * scale)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["beta_a"], logs["beta_m"] = float(self.model.beta_a.numpy()), float(self.model.beta_m.numpy())


class BestEpochCheckpoint(keras.callbacks.Callback):
    """Saves the weights of the epoch with the highest `monitor` (the paper keeps the model
    that is best on the validation speaker).

    Unlike `ModelCheckpoint(save_best_only=True)`, the best value so far is kept
    in `best.json` beside the weights, so a run resumed by `BackupAndRestore`
    does not take its first resumed epoch for the best one.

    Args:
      directory: where `best.weights.h5` and `best.json` go.
      monitor: the log to maximise.
    """

    WEIGHTS = "best.weights.h5"
    STATE = "best.json"

    def __init__(self, directory: str, monitor: str = "val_unweighted_accuracy"):
        super().__init__()
        self.directory = directory
        self.monitor = monitor
        self.best_value = -math.inf
        self.best_epoch = None  # 1-based

    @property
    def weights_path(self) -> str:
        return os.path.join(self.directory, self.WEIGHTS)

    def on_train_begin(self, logs=None):
        state_path = os.path.join(self.directory, self.STATE)
        if os.path.isfile(state_path) and os.path.isfile(self.weights_path):
            with open(state_path) as f:
                state = json.load(f)
            self.best_value, self.best_epoch = state["value"], state["epoch"]

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            raise KeyError(f"BestEpochCheckpoint: no {self.monitor!r} in the epoch's logs "
                           f"(have: {', '.join(sorted(logs or {}))}); is there validation data?")
        if value <= self.best_value:
            return
        self.best_value, self.best_epoch = float(value), epoch + 1
        os.makedirs(self.directory, exist_ok=True)
        partial = os.path.join(self.directory, ".partial." + self.WEIGHTS)
        self.model.save_weights(partial)
        os.replace(partial, self.weights_path)
        write_json(os.path.join(self.directory, self.STATE),
                   {"monitor": self.monitor, "value": self.best_value, "epoch": self.best_epoch})

