"""`python -m emokeras.tune --fold 3`: a Keras Tuner search over multi-view learning's settings.

Searches βa ∈ {1.0, 1.2}, βm ∈ {0.3, 0.5, 1.0} (the paper's Appendix B), the
contrastive margin and the negative rule, for the multi-view run the flags of
`emokeras.train` describe (default: B-ACO-1 trained jointly with H-MM-4),
maximising the acoustic view's validation UA. Only the settings the mode
uses are searched (`config.TuneConfig`).

The tuner's state goes to `tuning/<experiment>.fold-<k>/`: a stopped search
resumes when started again (finished trials are kept, and `--max_trials`
counts them). At the end it prints the best trial and the `emokeras.train`
command that retrains it. `--tuner grid|random|bayesian`.

Each trial costs a training run (joint H-MM-4 on the demo corpus: about 10
minutes on 2 cores at the paper's sizes).
"""

from __future__ import annotations

import dataclasses
import logging

import keras_tuner

from emokeras import cli
from emokeras.config import MODE_SETTINGS, TrainConfig, TuneConfig, command_line

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
        from emokeras import data

        self.config, self.space, self.data_dir = config, space, data_dir
        self._frame_statistics = data.frame_statistics(data_dir, config.fold, config.data_config)

    def trial_config(self, hp) -> TrainConfig:
        """`config` with the trial's values (declaring them to `hp` on first use)."""
        values = {name: hp.Choice(name, list(getattr(self.space, name)))
                  for name in searched(self.config.multiview.mode)}
        return dataclasses.replace(self.config, multiview=dataclasses.replace(self.config.multiview, **values))

    def build(self, hp):
        import keras

        from emokeras import train

        keras.utils.set_random_seed(self.config.seed)  # every trial starts from the same weights
        model, _ = train.build_multiview_model(self.trial_config(hp), self.data_dir, self._frame_statistics)
        return model

    def fit(self, hp, model, *args, callbacks=None, **kwargs):
        """Fits on the fold with the trial's negatives and β, passing the tuner's callbacks through."""
        from emokeras import train

        config = self.trial_config(hp)
        datasets, schedule = train.multiview_datasets(model, config, self.data_dir)
        return model.fit(datasets["train"], validation_data=datasets["validation"], epochs=config.epochs,
                         verbose=2, shuffle=False, callbacks=[schedule, *(callbacks or [])])


def make_tuner(config: TrainConfig, space: TuneConfig, data_dir: str):
    """The `space.tuner` tuner over `MultiViewHyperModel`, its state in `space.directory` (resumed if there)."""
    import tensorflow as tf

    kind = {"grid": keras_tuner.GridSearch, "random": keras_tuner.RandomSearch,
            "bayesian": keras_tuner.BayesianOptimization}[space.tuner]
    return kind(MultiViewHyperModel(config, space, data_dir),
                objective=keras_tuner.Objective(OBJECTIVE, direction="max"), max_trials=space.max_trials,
                seed=config.seed, directory=space.directory, project_name=f"{config.experiment()}.fold-{config.fold}",
                overwrite=False, distribution_strategy=tf.distribute.MirroredStrategy())


def tune(config: TrainConfig, space: TuneConfig) -> tuple[dict, float, str]:
    """Runs (or resumes) the search; returns the best trial's values, its validation UA and its command line."""
    import warnings

    from emokeras import data, train

    if config.multiview.mode is None:
        config = dataclasses.replace(config, multiview=dataclasses.replace(config.multiview, mode="joint"))
    config.experiment()  # a frozen or teacher run without --teacher fails here, before any work
    data_dir = train.resolve_data(config)
    config = dataclasses.replace(config, data=data_dir)
    warnings.filterwarnings("ignore", message="Your input ran out of data")
    with train.dtype_policy(config.mixed_precision), data.reported_as_unreadable(data.TRAINING_ADVICE):
        tuner = make_tuner(config, space, data_dir)
        tuner.search()
    [best] = tuner.oracle.get_best_trials(1)
    values = {name: best.hyperparameters.get(name) for name in searched(config.multiview.mode)}
    best_config = dataclasses.replace(config, multiview=dataclasses.replace(config.multiview, **values))
    command = command_line(best_config)
    print(f"best of {len(tuner.oracle.trials)} trials ({space.directory}/{tuner.project_name}): trial "
          f"{best.trial_id}, validation UA {best.score:.4f}, "
          + ", ".join(f"{name} {value}" for name, value in values.items()))
    print(f"retrain it: {command}")
    return values, best.score, command


def main(argv):
    cli.no_arguments(argv)
    tune(cli.config_from_flags(TrainConfig), cli.config_from_flags(TuneConfig))


def define_flags():
    cli.define_flags(TrainConfig, defaults={"multiview": "joint"})  # tuning searches a multi-view run
    cli.define_flags(TuneConfig)


if __name__ == "__main__":
    cli.run_command(main, define_flags)
