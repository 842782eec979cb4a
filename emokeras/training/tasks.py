"""What a run trains, and how, as task objects (in the manner of Model Garden's `Task`).

`SingleViewTask` (one of the paper's models) and `MultiViewTask` (an acoustic student beside a second view, §3.4).
`Experiment` and the tuner's HyperModel both build their models, data and callbacks from one.

A task checks, before anything is built, that the corpus can feed its models (`check_data`); builds its model
(compiled, in the caller's distribution scope) and the deployable one; gives `fit` its training epochs (each
shuffled by the seed and the epoch, restricted to the inputs the model reads, with Algorithm 1's negatives for a
multi-view model and class weights if asked) and its validation batches; and the callbacks its training needs.
"""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import tensorflow as tf

from emokeras.config import ModelConfig, TrainConfig
from emokeras.data import pipelines, tfrecords
from emokeras.models import multiview
from emokeras.models.builders import build_model
from emokeras.models.metrics import UnweightedAccuracy, WeightedAccuracy
from emokeras.models.specs import ACOUSTIC_ONLY, missing_for, model_spec, models_for
from emokeras.training.callbacks import BetaSchedule, EpochSeeds, StopOnNonFiniteLoss
from emokeras.training.checkpoint import BEST_WEIGHTS

# A finished run's files (`emokeras.training.experiment` writes them): a teacher must have all three.
RESULTS = "results.json"
CONFIG = "config.json"


def _keep_inputs(input_names, class_weights=None):
    """The batch's inputs that `input_names` lists.

    With `class_weights` (per class id), each utterance's weight as a third element.
    """
    weights = None if class_weights is None else tf.constant(class_weights, tf.float32)

    @tf.autograph.experimental.do_not_convert
    def keep(inputs, label):
        kept = {name: inputs[name] for name in input_names}
        return (kept, label) if weights is None else (kept, label, tf.gather(weights, label))

    return keep


def class_weights(config: TrainConfig, manifest: dict) -> list[float] | None:
    """`--class_weights balanced`.

    Per class, n / (classes · n_class) over the fold's training split (None for no weights). A class absent from
    training weighs 0.
    """
    if config.class_weights is None:
        return None
    train = pipelines.fold_of(manifest, config.fold).splits["train"]
    classes = tfrecords.class_names(manifest)
    counts = np.array([sum(manifest["counts"][group][name] for group in train) for name in classes], np.float64)
    weights = np.divide(counts.sum(), len(classes) * counts, out=np.zeros_like(counts), where=counts > 0)
    return weights.tolist()


def check_data(config: TrainConfig, manifest: dict) -> None:
    """Refuses, before anything is built, a fold the corpus lacks and a model that needs what it lacks.

    Raises:
      ValueError: naming the fold or the model, what the corpus lacks, and the models that can run.
    """
    pipelines.fold_of(manifest, config.fold)
    views = config.multiview
    names = [config.model] if views.mode is None else [views.student] + ([views.view] if views.mode == "joint"
                                                                           else [])
    has_words, has_timings = manifest["has_words"], manifest["has_timings"]
    for name in names:
        lacking = missing_for(name, has_words, has_timings)
        if lacking:
            raise ValueError(f"{name} needs {lacking}, which this corpus ({manifest.get('corpus')}) has not; models "
                             f"that can run on it: {', '.join(models_for(has_words, has_timings))}")
    if views.mode is not None:
        multiview.negative_eligibility(views.negatives, tfrecords.class_names(manifest))


def build_model_for(name: str, config: TrainConfig, data_dir: str, frame_statistics=None):
    """Model `name` sized by `config.model_config`, normalising frames with the fold's training statistics."""
    manifest = tfrecords.read_manifest(data_dir)
    mean, variance = frame_statistics or pipelines.frame_statistics(data_dir, config.fold, config.data_config)
    return build_model(name, config.model_config, num_features=manifest["num_features"],
                       word_dimension=manifest["encoder_dimension"], frame_mean=mean, frame_variance=variance,
                       num_classes=len(tfrecords.class_names(manifest)))


def optimizer(config: TrainConfig):
    """The paper's: Adam with the global gradient norm clipped (Appendix B)."""
    return keras.optimizers.Adam(config.learning_rate, global_clipnorm=config.clipnorm)


def build_compiled_model(config: TrainConfig, data_dir: str, frame_statistics=None):
    """`config.model`, compiled as the paper trains it, in the current scope."""
    model = build_model_for(config.model, config, data_dir, frame_statistics)
    classes = model.output.shape[-1]
    model.compile(optimizer=optimizer(config), loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=[UnweightedAccuracy(classes), WeightedAccuracy(classes)])
    return model


def load_trained(run_dir: str, data_dir: str, fold: int, frame_statistics=None):
    """The best model of a finished run (its `config.json` and `best.weights.h5`), for the same fold.

    Raises:
      FileNotFoundError: the run never finished (no `results.json`) or is not a run folder.
      ValueError: it was trained on another fold, or is a multi-view run.
    """
    config_path, weights_path = os.path.join(run_dir, CONFIG), os.path.join(run_dir, BEST_WEIGHTS)
    for path in (config_path, weights_path, os.path.join(run_dir, RESULTS)):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{run_dir} is not a finished run (no {os.path.basename(path)}); train it to "
                                    "the end first (python -m emokeras.train --model <name> --fold <k>)")
    with open(config_path, encoding="utf-8") as handle:
        trained = json.load(handle)
    if trained["fold"] != fold:
        raise ValueError(f"{run_dir} was trained on fold {trained['fold']}, not fold {fold}: its weights have "
                         f"seen fold {fold}'s held-out speakers")
    if trained.get("multiview", {}).get("mode"):
        raise ValueError(f"{run_dir} is a multi-view run; a teacher is a single model such as H-MM-4")
    config = TrainConfig(model=trained["model"], fold=fold, model_config=ModelConfig(**trained["model_config"]))
    model = build_model_for(config.model, config, data_dir, frame_statistics)
    model.load_weights(weights_path)
    return model


def build_multiview_model(config: TrainConfig, data_dir: str, frame_statistics=None):
    """The compiled `MultiViewModel` of `config.multiview`, and its acoustic view (the deployable model)."""
    views = config.multiview
    if views.mode not in multiview.MODES:
        raise ValueError(f"--multiview must be one of {', '.join(multiview.MODES)}, got {views.mode!r}")
    if model_spec(views.student).needs_transcript:
        raise ValueError(f"the student {views.student} needs a transcript; the acoustic view must need frames only "
                         f"({' or '.join(ACOUSTIC_ONLY)})")
    statistics = frame_statistics or pipelines.frame_statistics(data_dir, config.fold, config.data_config)
    student = build_model_for(views.student, config, data_dir, statistics)
    if views.mode == "joint":
        second = build_model_for(model_spec(views.view).name, config, data_dir, statistics)
    else:
        second = load_trained(views.teacher_dir(config.fold, config.seed), data_dir, config.fold, statistics)
    model = multiview.MultiViewModel(student, second, mode=views.mode, beta_a=views.beta_a, beta_m=views.beta_m,
                                     margin=views.margin)
    model.compile(optimizer=optimizer(config))
    return model, student


class Task:
    """A run's models, data and callbacks.

    Args:
      config: the run (`TrainConfig`).
      data_dir: its prepared folder.
      frame_statistics: the fold's training frames' mean and variance (computed when first needed if None).

    Raises:
      ValueError: the corpus cannot feed the run (a fold it lacks, a model needing what it lacks).
    """

    def __init__(self, config: TrainConfig, data_dir: str, frame_statistics=None):
        self.config, self.data_dir = config, data_dir
        self.manifest = tfrecords.read_manifest(data_dir)
        self.class_names = tfrecords.class_names(self.manifest)
        check_data(config, self.manifest)
        self._statistics = frame_statistics

    @property
    def frame_statistics(self):
        """The training split's per-feature frame mean and variance (computed once)."""
        if self._statistics is None:
            self._statistics = pipelines.frame_statistics(self.data_dir, self.config.fold, self.config.data_config)
        return self._statistics

    def build(self):
        """`(the model fit trains, the deployable model)`, compiled, in the current scope."""
        raise NotImplementedError

    def input_names(self, model) -> tuple[str, ...]:
        """The inputs of the batches that `model` reads."""
        raise NotImplementedError

    def each_epoch(self, model):
        """`(batches, epoch) -> batches` for one training epoch: the model's inputs, class weights if asked."""
        keep = _keep_inputs(self.input_names(model), class_weights(self.config, self.manifest))
        return lambda dataset, epoch: dataset.map(keep)

    def training_data(self, model, first_epoch: int) -> tuple:
        """What `fit` trains `model` on from `first_epoch`, and the batches per epoch."""
        config = self.config
        return pipelines.training_epochs(self.data_dir, config.fold, config.batch_size, config.seed, first_epoch,
                                         config.epochs, config.data_config, self.each_epoch(model))

    def validation_data(self, model):
        """The validation split's batches, with the inputs the deployable model reads."""
        deployable = model.acoustic_view if isinstance(model, multiview.MultiViewModel) else model
        return pipelines.make_dataset(self.data_dir, self.config.fold, "validation",
                                      batch_size=self.config.batch_size,
                                      data_config=self.config.data_config).map(_keep_inputs(tuple(deployable.input)))

    def callbacks(self, name: str) -> list:
        """Training's own callbacks: dropout seeded by (seed, epoch), a stop at the first non-finite loss."""
        return [EpochSeeds(self.config.seed), StopOnNonFiniteLoss(name)]


class SingleViewTask(Task):
    """One of the paper's models (`config.model`), trained with the cross-entropy."""

    def build(self):
        """The model and itself: what is trained is deployed."""
        model = build_compiled_model(self.config, self.data_dir, self.frame_statistics)
        return model, model

    def input_names(self, model) -> tuple[str, ...]:
        """The model's inputs."""
        return tuple(model.input)


class MultiViewTask(Task):
    """An acoustic student trained beside a second view (`config.multiview`); only the student is deployed."""

    def build(self):
        """The multi-view model and its acoustic student."""
        return build_multiview_model(self.config, self.data_dir, self.frame_statistics)

    def input_names(self, model) -> tuple[str, ...]:
        """The inputs of both views."""
        return tuple(dict.fromkeys((*model.acoustic_view.input, *model.second_view.input)))

    def each_epoch(self, model):
        """Each epoch's batches with the negatives of Algorithm 1, drawn from (seed, epoch, batch)."""
        keep = super().each_epoch(model)
        views, seed, classes = self.config.multiview, self.config.seed, self.class_names
        return lambda dataset, epoch: multiview.add_negatives(keep(dataset, epoch), views.negatives, classes,
                                                              seed=seed, epoch=epoch)

    def callbacks(self, name: str) -> list:
        """Training's callbacks and the β schedule."""
        views = self.config.multiview
        return [*super().callbacks(name), BetaSchedule(views.beta_a, views.beta_m, views.beta_decay)]


def task_for(config: TrainConfig, data_dir: str, frame_statistics=None) -> Task:
    """The task of `config`: multi-view with a `multiview.mode`, else single-view."""
    kind = SingleViewTask if config.multiview.mode is None else MultiViewTask
    return kind(config, data_dir, frame_statistics)
