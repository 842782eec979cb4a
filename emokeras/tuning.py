"""Tuning, as a library: a Keras Tuner search over multi-view settings (`search_hyperparameters(config, space)`).

Searches βa ∈ {1.0, 1.2}, βm ∈ {0.3, 0.5, 1.0} (the paper's Appendix B), the contrastive margin and the negative
rule, for a multi-view run (default: B-ACO-1 trained jointly with H-MM-4), maximising the acoustic view's
validation UA. Only the settings the mode uses are searched (`emokeras.config.MODE_SETTINGS`).

The tuner's state goes to `<tuning>/<experiment>.fold-<k>/`, with the configuration it searches around in
`config.json`: a stopped search resumes when started again (finished trials are kept, and `max_trials` counts
them), and one started around other settings is refused, naming each difference. One process searches a folder at
a time. Each trial costs a training run (joint H-MM-4 on the demo corpus: about 10 minutes on 2 cores at the
paper's sizes).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import warnings

import keras
import keras_tuner
import tensorflow as tf

from emokeras import data, tfrecords
from emokeras.callbacks import BetaSchedule, EpochSeeds, StopOnNonFiniteLoss
from emokeras.config import MODE_SETTINGS, TrainConfig, TuneConfig, command_line
from emokeras.experiment import (
    CONFIG,
    RunMismatch,
    build_multiview_model,
    check_data,
    dtype_policy,
    recorded_differences,
    resolve_data,
    training_data,
    validation_data,
)
from emokeras.files import exclusive, write_json

logger = logging.getLogger(__name__)

OBJECTIVE = "val_unweighted_accuracy"
SEARCHED = ("beta_a", "beta_m", "margin", "negatives")  # the TuneConfig fields that hold values to search


def searched(mode: str) -> tuple[str, ...]:
    """The searched `MultiViewConfig` fields that a mode's loss uses (Eq. 3-5)."""
    return tuple(name for name in MODE_SETTINGS[mode] if name in SEARCHED)


class MultiViewHyperModel(keras_tuner.HyperModel):
    """Builds and fits one `MultiViewModel` per trial.

    Args:
      config: the run to tune; its `multiview` values are replaced by each trial's.
      space: the values to choose from.
      data_dir: the prepared folder.
    """

    def __init__(self, config: TrainConfig, space: TuneConfig, data_dir: str):
        super().__init__(name=config.experiment())
        self.config, self.space, self.data_dir = config, space, data_dir
        self._frame_statistics = data.frame_statistics(data_dir, config.fold, config.data_config)

    def trial_config(self, hp) -> TrainConfig:
        """`config` with the trial's values (declaring them to `hp` on first use)."""
        values = {name: hp.Choice(name, list(getattr(self.space, name)))
                  for name in searched(self.config.multiview.mode)}
        return dataclasses.replace(self.config, multiview=dataclasses.replace(self.config.multiview, **values))

    def build(self, hp):
        keras.utils.set_random_seed(self.config.seed)  # every trial starts from the same weights
        model, _ = build_multiview_model(self.trial_config(hp), self.data_dir, self._frame_statistics)
        return model

    def fit(self, hp, model, *args, callbacks=None, **kwargs):
        """Fits on the fold with the trial's negatives and β, passing the tuner's callbacks through."""
        config = self.trial_config(hp)
        train, steps = training_data(model, config, self.data_dir, first_epoch=0)
        views = config.multiview
        return model.fit(train, steps_per_epoch=steps, validation_data=validation_data(model, config, self.data_dir),
                         epochs=config.epochs, verbose=2, shuffle=False,
                         callbacks=[EpochSeeds(config.seed), StopOnNonFiniteLoss(f"trial {hp.values}"),
                                    BetaSchedule(views.beta_a, views.beta_m, views.beta_decay), *(callbacks or [])])


def make_tuner(config: TrainConfig, space: TuneConfig, data_dir: str):
    """The `space.tuner` tuner over `MultiViewHyperModel`, its state in `space.directory` (resumed if there)."""
    kind = {"grid": keras_tuner.GridSearch, "random": keras_tuner.RandomSearch,
            "bayesian": keras_tuner.BayesianOptimization}[space.tuner]
    return kind(MultiViewHyperModel(config, space, data_dir),
                objective=keras_tuner.Objective(OBJECTIVE, direction="max"), max_trials=space.max_trials,
                seed=config.seed, directory=space.directory, project_name=f"{config.experiment()}.fold-{config.fold}",
                overwrite=False, distribution_strategy=tf.distribute.MirroredStrategy())


def search_hyperparameters(config: TrainConfig, space: TuneConfig) -> tuple[dict, float, str]:
    """Runs (or resumes) the search; returns the best trial's values, its validation UA and its command line.

    Raises:
      RunMismatch: the tuning folder holds a search around another configuration.
      FolderInUse: another process is searching in it.
    """
    if config.multiview.mode is None:
        config = dataclasses.replace(config, multiview=dataclasses.replace(config.multiview, mode="joint"))
    config.experiment()  # a frozen or teacher run without --teacher fails here, before any work
    project = os.path.join(space.directory, f"{config.experiment()}.fold-{config.fold}")
    with exclusive(project):
        data_dir = resolve_data(config)
        check_data(config, tfrecords.read_manifest(data_dir))
        config = dataclasses.replace(config, data=data_dir)
        _check_identity(project, config)
        # The validation split's length is not known before its first pass, at whose end Keras warns.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        with dtype_policy(config.mixed_precision), data.reported_as_unreadable(data.TRAINING_ADVICE):
            tuner = make_tuner(config, space, data_dir)
            tuner.search()
    # The highest objective; among equals, the first trial (Keras Tuner's own order of ties is not stable).
    trials = [trial for trial in tuner.oracle.trials.values() if trial.score is not None]
    best = min(trials, key=lambda trial: (-trial.score, trial.trial_id))
    values = {name: best.hyperparameters.get(name) for name in searched(config.multiview.mode)}
    best_config = dataclasses.replace(config, multiview=dataclasses.replace(config.multiview, **values))
    command = command_line(best_config)
    logger.info("best of %d trials (%s/%s): trial %s, validation UA %.4f, %s", len(tuner.oracle.trials),
                space.directory, tuner.project_name, best.trial_id, best.score,
                ", ".join(f"{name} {value}" for name, value in values.items()))
    logger.info("retrain it: %s", command)
    return values, best.score, command


def _check_identity(project: str, config: TrainConfig) -> None:
    """Records the configuration a search is around, or refuses one that differs from the recorded one in what
    shapes a trial's result (the searched settings aside)."""
    path = os.path.join(project, CONFIG)
    if not os.path.isfile(path):
        os.makedirs(project, exist_ok=True)
        write_json(path, dataclasses.asdict(config))
        return
    differences = [line for line in recorded_differences(path, config)
                   if line.split(":")[0].lstrip("-") not in SEARCHED]
    if differences:
        raise RunMismatch(f"{project} holds a search around another configuration ({'; '.join(differences)}); "
                          "search elsewhere with --tuning, or remove the folder")

