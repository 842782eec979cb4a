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

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import warnings

from emokeras import cli
from emokeras.config import ModelConfig, TrainConfig

logger = logging.getLogger(__name__)

RESULTS = "results.json"
CONFIG = "config.json"
FIGURE_UTTERANCES = 4  # validation utterances drawn as the paper's Figure 3 each epoch


@contextlib.contextmanager
def dtype_policy(name: str | None):
    """Within the block, new layers compute in `name` (a Keras mixed policy: variables stay float32), or in
    float32 for None; the previous global policy comes back after."""
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name or "float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


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

    return {split: data.make_dataset(data_dir, config.fold, split, batch_size=config.batch_size, seed=config.seed,
                                     data_config=config.data_config).map(keep_inputs)
            for split in data.SPLITS}


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
    mean, variance = frame_statistics or data.frame_statistics(data_dir, config.fold, config.data_config)
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
    from emokeras import data
    from emokeras.multiview import MODES, MultiViewModel
    from emokeras.specs import ACOUSTIC_ONLY, model_spec

    views = config.multiview
    if views.mode not in MODES:
        raise ValueError(f"--multiview must be one of {', '.join(MODES)}, got {views.mode!r}")
    if model_spec(views.student).needs_transcript:
        raise ValueError(f"the student {views.student} needs a transcript; the acoustic view must need frames only "
                         f"({' or '.join(ACOUSTIC_ONLY)})")
    statistics = frame_statistics or data.frame_statistics(data_dir, config.fold, config.data_config)
    student = build_model_for(views.student, config, data_dir, statistics)
    if views.mode == "joint":
        second = build_model_for(model_spec(views.view).name, config, data_dir, statistics)
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
    from emokeras import data
    from emokeras.files import write_json
    from emokeras.specs import model_spec

    if config.multiview.mode is None:
        model_spec(config.model)
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
    with dtype_policy(config.mixed_precision), data.reported_as_unreadable(data.TRAINING_ADVICE):
        results = _train_and_export(config, data_dir, run_dir, callbacks)
    results["saved_model"] = config.export_dir()
    write_json(results_path, results)
    print(summary_line(config, results))
    return results


def _train_and_export(config: TrainConfig, data_dir: str, run_dir: str, callbacks) -> dict:
    """`run`'s work once the run folder is ready: fit (resuming from `backup/`), evaluate the best epoch, export."""
    import keras
    import tensorflow as tf

    from emokeras import data
    from emokeras.callbacks import BestEpochCheckpoint, EpochSeconds, ValidationFigures, write_hyperparameters
    from emokeras.export import export_saved_model
    from emokeras.files import write_json
    from emokeras.specs import model_spec

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
    figure_examples = (list(data.parsed_split(data_dir, config.fold, "validation", config.data_config)
                            .take(FIGURE_UTTERANCES))
                       if model_spec(config.deployable()).words else [])
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
        "model": config.deployable(), "experiment": config.experiment(),
        "fold": config.fold, "data": data_dir, "best_epoch": best.best_epoch,
        "mixed_precision": config.mixed_precision, **_preparation_facts(data_dir)})
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


def main(argv):
    cli.no_arguments(argv)
    run(cli.config_from_flags(TrainConfig))


def define_flags():
    cli.define_flags(TrainConfig)


if __name__ == "__main__":
    cli.run_command(main, define_flags)
