"""Training callbacks: the best epoch by validation UA, kept across interruptions, epoch times, the β
schedule, TensorBoard figures, and the hyper-parameters for TensorBoard's HParams dashboard."""

from __future__ import annotations

import json
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hparams_api

from emokeras import figures
from emokeras.files import write_json
from emokeras.labels import CLASS_NAMES
from emokeras.metrics import UnweightedAccuracy
from emokeras.models import inspection_model


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


class ValidationFigures(keras.callbacks.Callback):
    """Writes figures of the validation speaker to TensorBoard after each epoch.

    - `confusion_matrix`: the validation confusion matrix (the paper's Figures 9 and 10);
    - `attention`, for models that read words and have context attention or a
      GMU: the paper's Figure 3 for the first `examples` utterances (words
      shaded by attention weight, bars for the GMU's acoustic vs lexical share).

    Args:
      inspected: the model to draw (the deployable one: for multi-view
        learning, the acoustic student), not the model being fitted.
      dataset: the batched validation `(inputs, labels)`.
      examples: parsed single utterances (`emokeras.data.parse_example`
        dicts, with their words) for Figure 3.
      log_dir: TensorBoard folder of the validation writer.
    """

    def __init__(self, inspected, dataset, examples, log_dir: str):
        super().__init__()
        self.inspected, self.dataset, self.examples, self.log_dir = inspected, dataset, list(examples), log_dir

    def on_train_begin(self, logs=None):
        inspection = inspection_model(self.inspected)
        self._input_names = tuple(inspection.input)
        self._infer = tf.function(lambda inputs: inspection(inputs, training=False), reduce_retracing=True)
        self._draws_words = "word_vectors" in self._input_names and len(inspection.output) > 1
        self._writer = tf.summary.create_file_writer(self.log_dir)

    def _select(self, inputs):
        return {name: inputs[name] for name in self._input_names}

    def on_epoch_end(self, epoch, logs=None):
        unweighted = UnweightedAccuracy()
        for inputs, labels in self.dataset:
            unweighted.update_state(labels, self._infer(self._select(inputs))["probabilities"])
        matrix = unweighted.confusion.numpy().astype(np.int64)
        ua = float(unweighted.result())
        images = {"confusion_matrix": figures.confusion_matrix_png(
            matrix, CLASS_NAMES, f"validation, epoch {epoch + 1}: UA {ua:.4f}")}
        if self._draws_words and self.examples:
            images["attention"] = figures.attention_png([self._figure_row(example) for example in self.examples])
        with self._writer.as_default():
            for name, png in images.items():
                tf.summary.image(name, tf.image.decode_png(png, channels=3)[tf.newaxis], step=epoch)
        self._writer.flush()

    def _figure_row(self, example) -> dict:
        inputs = {name: tf.expand_dims(example[name], 0) for name in self._input_names}
        outputs = {name: value.numpy()[0] for name, value in self._infer(inputs).items()}
        predicted = CLASS_NAMES[int(np.argmax(outputs["probabilities"]))]
        gate = outputs.get("modality_gate")
        return {"words": [word.decode() for word in example["words"].numpy()],
                "attention": outputs.get("attention_weights"),
                "acoustic_share": None if gate is None else gate.mean(axis=-1),
                "title": f"{example['utterance_id'].numpy().decode()}: true {CLASS_NAMES[int(example['label'])]}, "
                         f"predicted {predicted}"}


def write_hyperparameters(log_dir: str, values: dict, trial_id: str) -> None:
    """Records a run's hyper-parameters for TensorBoard's HParams dashboard (`None` is written as "none")."""
    values = {key: "none" if value is None else value for key, value in values.items()}
    with tf.summary.create_file_writer(log_dir).as_default():
        hparams_api.hparams(values, trial_id=trial_id)
