"""Training callbacks.

The best epoch by validation UA, kept across interruptions, epoch times, the β schedule, TensorBoard figures, and the
hyper-parameters for TensorBoard's HParams dashboard.
"""

from __future__ import annotations

import math
import time

import keras
import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hparams_api

from emokeras.models.builders import inference_function, inspection_model
from emokeras.models.metrics import UnweightedAccuracy
from emokeras.models.specs import CLASS_NAMES
from emokeras.training import figures


class EpochSeconds(keras.callbacks.Callback):
    """Adds `epoch_seconds` (wall time of the epoch, validation included) to each epoch's logs.

    The history file and TensorBoard then record how long training took.
    """

    def on_epoch_begin(self, epoch, logs=None):
        """Starts the epoch's clock."""
        self._started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        """Adds `epoch_seconds` to the epoch's logs."""
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
        """Sets β_a and β_m for the epoch."""
        scale = 1.0 / (1.0 + self.decay * epoch)
        self.model.beta_a.assign(self.beta_a * scale)
        self.model.beta_m.assign(self.beta_m * scale)

    def on_epoch_end(self, epoch, logs=None):
        """Adds the epoch's β_a and β_m to its logs."""
        if logs is not None:
            logs["beta_a"], logs["beta_m"] = float(self.model.beta_a.numpy()), float(self.model.beta_m.numpy())


class EpochSeeds(keras.callbacks.Callback):
    """Seeds every random draw of the model (dropout) at the start of each epoch from `(seed, epoch)`.

    Keras keeps each layer's dropout stream in a `SeedGenerator`, whose state is not saved with the weights: a run
    resumed at epoch `e` would draw what the first epoch drew. Seeded per epoch, a resumed run draws exactly what an
    uninterrupted one draws there (the data's order is seeded the same way: `emokeras.data.pipelines.training_epochs`).
    """

    def __init__(self, seed: int):
        super().__init__()
        self.seed = seed

    def on_epoch_begin(self, epoch, logs=None):
        """Seeds every dropout stream of the model from `(seed, epoch)`."""
        states = [variable for variable in self.model.variables if variable.path.endswith("seed_generator_state")]
        values = np.random.SeedSequence([self.seed, epoch]).generate_state(len(states)) & 0x7FFFFFFF
        for variable, value in zip(states, values):
            variable.assign(np.array([value, 0], dtype=variable.dtype))


class NonFiniteLoss(ValueError):
    """Training reached a NaN or infinite loss; the message names the run, the epoch and the step."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training at the first batch whose loss is not finite, raising `NonFiniteLoss`.

    Keras' `TerminateOnNaN` ends `fit` normally, after which a run would be evaluated and exported as if it had
    trained: here the epoch is not committed and nothing is exported.

    Args:
      run: how the message names the run.
    """

    def __init__(self, run: str):
        super().__init__()
        self.run = run
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        """Remembers the epoch, for the message."""
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        """Raises `NonFiniteLoss` if the batch's loss is NaN or infinite."""
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise NonFiniteLoss(f"{self.run}: the training loss is {float(loss)} at epoch {self._epoch + 1}, step "
                                f"{batch + 1}; training stopped and nothing was exported (a lower --learning_rate, "
                                "or --clipnorm, may keep it finite; train again with --overwrite)")


class ValidationFigures(keras.callbacks.Callback):
    """Writes figures of the validation speaker to TensorBoard after each epoch.

    - `confusion_matrix`: the validation confusion matrix (the paper's Figures 9 and 10), as `fit`'s validation pass
      left it in the fitted model's `UnweightedAccuracy` (the validation split is not run a second time);
    - `attention`, for models that read words and have context attention or a
      GMU: the paper's Figure 3 for the first `examples` utterances (words
      shaded by attention weight, bars for the GMU's acoustic vs lexical share).

    Args:
      inspected: the model to draw (the deployable one: for multi-view
        learning, the acoustic student), not the model being fitted.
      dataset: the batched validation `(inputs, labels)` that `fit` validates on.
      examples: parsed single utterances (`emokeras.data.pipelines.parse_example`
        dicts, with their words) for Figure 3.
      log_dir: TensorBoard folder of the validation writer.
      class_names: the classes, in label order.
    """

    def __init__(self, inspected, dataset, examples, log_dir: str, class_names=CLASS_NAMES):
        super().__init__()
        self.inspected, self.dataset, self.examples, self.log_dir = inspected, dataset, list(examples), log_dir
        self.class_names = list(class_names)

    def on_train_begin(self, logs=None):
        """Builds Figure 3's model (if drawn) and the TensorBoard writer."""
        self._inspection = inspection_model(self.inspected)
        self._input_names = tuple(self._inspection.input)
        self._draws_words = ("word_vectors" in self._input_names and len(self._inspection.output) > 1
                             and bool(self.examples))
        if self._draws_words:  # traced once, for the figures' single rows
            self._infer = inference_function(self._inspection, self.dataset.element_spec)
        self._writer = tf.summary.create_file_writer(self.log_dir)

    def on_epoch_end(self, epoch, logs=None):
        """Draws the epoch's figures and writes them to TensorBoard."""
        [unweighted] = [metric for metric in _all_metrics(self.model) if isinstance(metric, UnweightedAccuracy)]
        matrix = keras.ops.convert_to_numpy(unweighted.confusion).astype(np.int64)
        ua = float(unweighted.result())
        images = {"confusion_matrix": figures.confusion_matrix_png(
            matrix, self.class_names, f"validation, epoch {epoch + 1}: UA {ua:.4f}")}
        if self._draws_words:
            images["attention"] = figures.attention_png([self._figure_row(example) for example in self.examples])
        with self._writer.as_default():
            for name, png in images.items():
                tf.summary.image(name, tf.image.decode_png(png, channels=3)[tf.newaxis], step=epoch)
        self._writer.flush()

    def _figure_row(self, example) -> dict:
        inputs = {name: tf.expand_dims(example[name], 0) for name in self._input_names}
        outputs = {name: value.numpy()[0] for name, value in self._infer(inputs).items()}
        predicted = self.class_names[int(np.argmax(outputs["probabilities"]))]
        gate = outputs.get("modality_gate")
        return {"words": [word.decode() for word in example["words"].numpy()],
                "attention": outputs.get("attention_weights"),
                "acoustic_share": None if gate is None else gate.mean(axis=-1),
                "title": f"{example['utterance_id'].numpy().decode()}: true {self.class_names[int(example['label'])]}, "
                         f"predicted {predicted}"}


def _all_metrics(model) -> list:
    """`model.metrics`, with the metrics Keras' compiled-metrics container holds in place of the container."""
    found = []
    for metric in model.metrics:
        found += getattr(metric, "metrics", None) or [metric]
    return found


def write_hyperparameters(log_dir: str, values: dict, trial_id: str) -> None:
    """Records a run's hyper-parameters for TensorBoard's HParams dashboard (`None` is written as "none")."""
    values = {key: "none" if value is None else value for key, value in values.items()}
    with tf.summary.create_file_writer(log_dir).as_default():
        hparams_api.hparams(values, trial_id=trial_id)
