"""`python -m emokeras.train --fold 3`: train one model on one fold, keep its best epoch, export it.

With no flags: H-MM-4 on fold 3 of the demo corpus, which is prepared first
if it is not yet (`python -m emokeras.prepare`). The run goes to
`runs/<model>/fold-<k>/`:

  config.json        the resolved configuration
  tensorboard/       TensorBoard logs (train and validation, per epoch)
  history.csv        every epoch's losses and metrics
  best.weights.h5    the epoch with the highest validation UA (`best.json`)
  results.json       validation and test UA, WA and confusion matrices, epochs, time

and the best model is exported to `saved_models/<model>/fold-<k>/`. An
interrupted run resumes at its last finished epoch when started again
(`keras.callbacks.BackupAndRestore` under `runs/.../backup/`); a finished
run is reported, not retrained, unless `--overwrite`.

With `--multiview joint|frozen|teacher` an acoustic student is trained beside a
second view (`emokeras.multiview.MultiViewModel`); the run is named
`<student>.<mode>.<second view>` and only the student is exported.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import sys
import warnings

from absl import flags
from emokeras.config import ModelConfig, MultiViewConfig, TrainConfig

logger = logging.getLogger(__name__)
FLAGS = flags.FLAGS  # absl's flag values, defined by define_flags()

RESULTS = "results.json"
CONFIG = "config.json"
FIGURE_UTTERANCES = 4  # validation utterances drawn as the paper's Figure 3 each epoch


def deployable_name(config: TrainConfig) -> str:
    """The model a run exports: `config.model`, or the multi-view student."""
    return config.multiview.student if config.multiview.mode else config.model


def resolve_data(config: TrainConfig) -> str:
    """The prepared folder to read: `config.data`, or the demo corpus, prepared if needed."""
    if config.data:
        return config.data
    from emokeras.prepare import PrepareConfig, prepare

    return prepare(PrepareConfig())


def make_datasets(data_dir: str, config: TrainConfig, input_names):
    """{split: the batched `(inputs, label)` dataset}, inputs restricted to `input_names`."""
    from emokeras import data

    def keep_inputs(inputs, label):
        return {name: inputs[name] for name in input_names}, label

    return {split: data.make_dataset(data_dir, config.fold, split, batch_size=config.batch_size, seed=config.seed)
            .map(keep_inputs) for split in data.SPLITS}


def _evaluate(model, dataset) -> dict:
    """UA, WA and the confusion matrix (rows: truth, columns: prediction) of `model` on `dataset`."""
    from emokeras.metrics import UnweightedAccuracy, WeightedAccuracy
    from emokeras.models import select_inputs

    unweighted, weighted = UnweightedAccuracy(), WeightedAccuracy()
    for inputs, labels in dataset:
        probabilities = model(select_inputs(model, inputs), training=False)
        unweighted.update_state(labels, probabilities)
        weighted.update_state(labels, probabilities)
    return {
        "unweighted_accuracy": float(unweighted.result()),
        "weighted_accuracy": float(weighted.result()),
        "confusion_matrix": unweighted.confusion.numpy().astype(int).tolist(),
    }


def build_model_for(name: str, config: TrainConfig, data_dir: str, frame_statistics=None):
    """Model `name` sized by `config.model_config`, normalising frames with the fold's training statistics."""
    from emokeras import data, models, tfrecords

    manifest = tfrecords.read_manifest(data_dir)
    mean, variance = frame_statistics or data.frame_statistics(data_dir, config.fold)
    return models.build_model(name, config.model_config, num_features=manifest["num_features"],
                              word_dimension=manifest["encoder_dimension"], frame_mean=mean, frame_variance=variance)


def _optimizer(config: TrainConfig):
    import keras

    return keras.optimizers.Adam(config.learning_rate, global_clipnorm=config.clipnorm)


def build_compiled_model(config: TrainConfig, data_dir: str):
    """`config.model`, compiled as the paper trains it (Adam, global-norm clipping), in the current scope."""
    import keras

    from emokeras.metrics import UnweightedAccuracy, WeightedAccuracy

    model = build_model_for(config.model, config, data_dir)
    model.compile(optimizer=_optimizer(config), loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=[UnweightedAccuracy(), WeightedAccuracy()])
    return model


def load_trained(run_dir: str, data_dir: str, fold: int, frame_statistics=None):
    """The best model of a finished run (its `config.json` and `best.weights.h5`), for the same fold.

    `frame_statistics`: the fold's `(mean, variance)` if the caller has them; computed otherwise.
    """
    from emokeras.callbacks import BestEpochCheckpoint

    config_path, weights_path = os.path.join(run_dir, CONFIG), os.path.join(run_dir, BestEpochCheckpoint.WEIGHTS)
    for path in (config_path, weights_path):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{run_dir}: no {os.path.basename(path)}; train it first "
                                    "(python -m emokeras.train --model <name> --fold <k>)")
    with open(config_path) as f:
        trained = json.load(f)
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
    """The compiled `MultiViewModel` of `config.multiview`, and its acoustic view (the deployable model).

    `frame_statistics`: the fold's `(mean, variance)` if the caller has them; computed otherwise.
    """
    from emokeras import data, models
    from emokeras.multiview import MODES, MultiViewModel

    views = config.multiview
    if views.mode not in MODES:
        raise ValueError(f"--multiview must be one of {', '.join(MODES)}, got {views.mode!r}")
    models.check_name(views.student)
    if models.reads_words(views.student):
        raise ValueError(f"the student {views.student} reads words; the acoustic view must need frames only "
                         "(B-ACO-1 or B-ACO-1+attention)")
    statistics = frame_statistics or data.frame_statistics(data_dir, config.fold)
    student = build_model_for(views.student, config, data_dir, statistics)
    if views.mode == "joint":
        second = build_model_for(models.check_name(views.view), config, data_dir, statistics)
    else:
        second = load_trained(views.teacher_dir(config.fold), data_dir, config.fold, statistics)
    model = MultiViewModel(student, second, mode=views.mode, beta_a=views.beta_a, beta_m=views.beta_m,
                           margin=views.margin)
    model.compile(optimizer=_optimizer(config))
    return model, student


def multiview_datasets(model, config: TrainConfig, data_dir: str):
    """What a `MultiViewModel` is fitted with: the datasets of both views' inputs, negatives added to the
    training batches (Algorithm 1), and the β schedule callback."""
    from emokeras import multiview
    from emokeras.callbacks import BetaSchedule

    views = config.multiview
    input_names = tuple(dict.fromkeys((*model.acoustic_view.input, *model.second_view.input)))
    datasets = make_datasets(data_dir, config, input_names)
    datasets["train"] = multiview.add_negatives(datasets["train"], views.negatives, seed=config.seed)
    return datasets, BetaSchedule(views.beta_a, views.beta_m, views.beta_decay)


def command_line(config: TrainConfig) -> str:
    """The `python -m emokeras.train` command that trains `config`: its fold, and every flag off its default."""
    defaults, model_defaults, view_defaults = TrainConfig(), ModelConfig(), MultiViewConfig()
    flags = [("fold", config.fold)]
    if config.multiview.mode is None:
        flags.append(("model", config.model))
    else:
        views = config.multiview
        flags += [("multiview", views.mode), ("student", views.student)]
        flags += [("view", views.view)] if views.mode == "joint" else [("teacher", views.teacher)]
        flags += [(name, getattr(views, name)) for name in ("beta_a", "beta_m", "beta_decay", "margin", "negatives")
                  if getattr(views, name) != getattr(view_defaults, name)]
    flags += [(name, getattr(config.model_config, name)) for name in ("hidden_units", "dropout", "l2")
              if getattr(config.model_config, name) != getattr(model_defaults, name)]
    flags += [(name, getattr(config, name)) for name in ("epochs", "batch_size", "learning_rate", "clipnorm", "seed",
                                                          "data", "output", "saved_models")
              if getattr(config, name) != getattr(defaults, name)]
    return "python -m emokeras.train " + " ".join(f"--{name} {value}" for name, value in flags)


def summary_line(config: TrainConfig, results: dict) -> str:
    validation, test = results["validation"], results["test"]
    return (f"{config.experiment()} fold {config.fold}: validation UA {validation['unweighted_accuracy']:.4f} "
            f"WA {validation['weighted_accuracy']:.4f} | test UA {test['unweighted_accuracy']:.4f} "
            f"WA {test['weighted_accuracy']:.4f} | best epoch {results['best_epoch']}/{results['epochs']} | "
            f"{results['train_seconds']:.0f} s | {config.run_dir()}")


def run(config: TrainConfig, callbacks=()) -> dict:
    """Trains, evaluates and exports one model on one fold; returns `results.json`'s content.

    Args:
      config: what to train.
      callbacks: extra Keras callbacks for `fit` (after emokeras' own).
    """
    import keras
    import tensorflow as tf

    from emokeras import data, models
    from emokeras.callbacks import (BestEpochCheckpoint, EpochSeconds, ValidationFigures,
                                    write_hyperparameters)
    from emokeras.export import export_saved_model
    from emokeras.files import write_json

    if config.multiview.mode is None:
        models.check_name(config.model)
    run_dir = config.run_dir()
    results_path = os.path.join(run_dir, RESULTS)
    if os.path.isfile(results_path) and not config.overwrite:
        with open(results_path) as f:
            results = json.load(f)
        print(f"already trained (--overwrite to train again): {summary_line(config, results)}")
        return results
    if config.overwrite and os.path.isdir(run_dir):
        shutil.rmtree(run_dir)
    data_dir = resolve_data(config)
    os.makedirs(run_dir, exist_ok=True)
    backup_dir = os.path.join(run_dir, "backup")
    resuming = os.path.isdir(backup_dir)

    keras.utils.set_random_seed(config.seed)
    strategy = tf.distribute.MirroredStrategy()
    resolved = dataclasses.asdict(config)
    resolved.update(data=data_dir, replicas=strategy.num_replicas_in_sync,
                    devices=list(strategy.extended.worker_devices))
    write_json(os.path.join(run_dir, CONFIG), resolved)
    tensorboard_dir = os.path.join(run_dir, "tensorboard")
    write_hyperparameters(tensorboard_dir, config.hyperparameters(), f"{config.experiment()}/fold-{config.fold}")

    with strategy.scope():
        if config.multiview.mode is None:
            model = deployable = build_compiled_model(config, data_dir)
        else:
            model, deployable = build_multiview_model(config, data_dir)
    if config.multiview.mode is None:
        datasets, extra_callbacks = make_datasets(data_dir, config, tuple(model.input)), []
    else:
        datasets, schedule = multiview_datasets(model, config, data_dir)
        extra_callbacks = [schedule]
    # Figure 3 needs words: drawn for models that read them (the first few validation utterances).
    figure_examples = (list(data.parsed_split(data_dir, config.fold, "validation").take(FIGURE_UTTERANCES))
                       if models.reads_words(deployable_name(config)) else [])
    extra_callbacks.append(ValidationFigures(deployable, datasets["validation"], figure_examples,
                                             os.path.join(tensorboard_dir, "validation")))
    best = BestEpochCheckpoint(run_dir)
    if resuming:
        print(f"resuming the interrupted run from {backup_dir}")
    # Keras warns that a dataset of unknown length "ran out of data" at the end of every first epoch.
    warnings.filterwarnings("ignore", message="Your input ran out of data")
    model.fit(
        datasets["train"], validation_data=datasets["validation"], epochs=config.epochs, verbose=2, shuffle=False,
        callbacks=[
            keras.callbacks.BackupAndRestore(backup_dir),
            EpochSeconds(),
            best,
            keras.callbacks.CSVLogger(os.path.join(run_dir, "history.csv"), append=True),
            keras.callbacks.TensorBoard(tensorboard_dir, write_graph=False),
            *extra_callbacks,
            *callbacks,
        ],
    )
    model.load_weights(best.weights_path)
    history = _read_history(os.path.join(run_dir, "history.csv"))
    results = {
        "model": config.experiment(),
        "fold": config.fold,
        "validation": _evaluate(deployable, datasets["validation"]),
        "test": _evaluate(deployable, datasets["test"]),
        "best_epoch": best.best_epoch,
        "epochs": len(history),
        "train_seconds": round(sum(float(row["epoch_seconds"]) for row in history), 1),
        "history": history,
    }
    # Multi-view learning exports the acoustic view alone: it needs no transcript.
    export_saved_model(deployable, config.export_dir(), {
        "model": deployable_name(config), "experiment": config.experiment(),
        "fold": config.fold, "data": data_dir, "best_epoch": best.best_epoch, **_preparation_facts(data_dir)})
    results["saved_model"] = config.export_dir()
    write_json(results_path, results)
    print(summary_line(config, results))
    return results


def _preparation_facts(data_dir: str) -> dict:
    """What `emokeras.predict` needs to prepare a wav as the training data was: features and text encoder."""
    from emokeras import tfrecords

    manifest = tfrecords.read_manifest(data_dir)
    handle = manifest["encoder_handle"]
    # A local encoder's path is relative to where preparation ran, as training's is: make it absolute.
    if os.path.exists(handle):
        handle = os.path.abspath(handle)
    return {"feature_set": manifest["feature_set"], "encoder_handle": handle,
            "encoder_dimension": manifest["encoder_dimension"]}


def _read_history(path: str) -> list[dict]:
    import csv

    with open(path, newline="") as f:
        return [{key: (int(value) if key == "epoch" else float(value)) for key, value in row.items()}
                for row in csv.DictReader(f)]


def config_from_flags(values, fold: int) -> TrainConfig:
    """The `TrainConfig` that `define_flags`' flags (parsed into `values`) describe, for `fold`."""
    return TrainConfig(
        model=values.model, fold=fold, epochs=values.epochs, batch_size=values.batch_size,
        learning_rate=values.learning_rate, clipnorm=values.clipnorm, seed=values.seed, data=values.data,
        output=values.output, saved_models=values.saved_models, overwrite=values.overwrite,
        model_config=ModelConfig(hidden_units=values.hidden_units, dropout=values.dropout, l2=values.l2),
        multiview=MultiViewConfig(
            mode=None if values.multiview == "none" else values.multiview, student=values.student,
            view=values.view, teacher=values.teacher, beta_a=values.beta_a, beta_m=values.beta_m,
            beta_decay=values.beta_decay, margin=values.margin, negatives=values.negatives))


# What a command line reports as a user error (exit 1, one line) rather than a traceback.
USER_ERRORS = (ValueError, FileNotFoundError)


def main(argv):
    from absl import app

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        run(config_from_flags(FLAGS, FLAGS.fold))
    except USER_ERRORS as error:
        logger.error("%s", error)
        sys.exit(1)


def define_flags(fold: bool = True):
    """Defines train's flags; `fold=False` leaves out `--fold` (for commands that run several folds)."""
    from emokeras.models import MODEL_NAMES

    defaults, model_defaults = TrainConfig(), ModelConfig()
    flags.DEFINE_enum("model", defaults.model, list(MODEL_NAMES), "The model, by its name in the paper's Table 2.")
    if fold:
        flags.DEFINE_integer("fold", defaults.fold, "Speaker-exclusive fold 0..9: fold f holds out session f//2+1.",
                             lower_bound=0, upper_bound=9)
    flags.DEFINE_integer("epochs", defaults.epochs, "Training epochs.", lower_bound=1)
    flags.DEFINE_integer("batch_size", defaults.batch_size, "Utterances per (global) batch.", lower_bound=1)
    flags.DEFINE_float("learning_rate", defaults.learning_rate, "Adam's learning rate.")
    flags.DEFINE_float("clipnorm", defaults.clipnorm, "Clip the global gradient norm to this.")
    flags.DEFINE_integer("hidden_units", model_defaults.hidden_units,
                         "BLSTM output size (both directions), GMU and attention size.", lower_bound=2)
    flags.DEFINE_float("dropout", model_defaults.dropout, "Dropout after each BLSTM and before the softmax.")
    flags.DEFINE_float("l2", model_defaults.l2, "L2 coefficient on every kernel.")
    flags.DEFINE_string("data", None, "A prepared TFRecord folder (tfrecords/<corpus>/<encoder>). "
                        "Default: the demo corpus, prepared first if needed.")
    flags.DEFINE_integer("seed", defaults.seed, "Seed for weights, dropout and shuffling.")
    flags.DEFINE_string("output", defaults.output, "Runs go to <output>/<model>/fold-<k>/.")
    flags.DEFINE_string("saved_models", defaults.saved_models,
                        "The best model is exported to <saved_models>/<model>/fold-<k>/.")
    flags.DEFINE_boolean("overwrite", False, "Train again even if the run has results.")

    views = MultiViewConfig()
    flags.DEFINE_enum("multiview", "none", ["none", "joint", "frozen", "teacher"],
                      "Multi-view learning (paper §3.4): joint (both views learn: Lc + βa·La + βm·Lm), frozen "
                      "(--teacher's model fixed: Lc + βa·La), teacher (--teacher as teacher: Lc + LKL). "
                      "Runs are named <student>.<mode>.<second view>; only the student is exported.")
    flags.DEFINE_enum("student", views.student, ["B-ACO-1", "B-ACO-1+attention"], "The acoustic view.")
    flags.DEFINE_enum("view", views.view, list(MODEL_NAMES), "joint: the second view, trained alongside.")
    flags.DEFINE_string("teacher", None, "frozen, teacher: a finished run of the same fold, e.g. runs/H-MM-4/fold-3; "
                        "'{fold}' stands for the fold (runs/H-MM-4/fold-{fold}).")
    flags.DEFINE_float("beta_a", views.beta_a, "Weight of the acoustic view's cross-entropy (Eq. 3).")
    flags.DEFINE_float("beta_m", views.beta_m, "joint: weight of the second view's cross-entropy (Eq. 4).")
    flags.DEFINE_float("beta_decay", views.beta_decay, "ρ of β = β0 / (1 + ρ·epoch); 0 keeps β constant.")
    flags.DEFINE_float("margin", views.margin, "Contrastive margin m (Eq. 2).")
    flags.DEFINE_enum("negatives", views.negatives, ["random", "similar"],
                      "Negative samples: any other class, or the acoustically similar one "
                      "(anger <-> happiness, neutral <-> sadness).")
    return flags.FLAGS


if __name__ == "__main__":
    from emokeras.cli import run_command

    run_command(main, define_flags)
