"""One training run, as a library.

`Experiment(config).run()` trains one model (or a multi-view student) on one fold, keeps its best epoch, evaluates it on
the held-out speakers and exports it. `train`, `crossval` and `tune` call it.

The run folder `<output>/<experiment>/fold-<k>/` holds:

  config.json        the resolved configuration: what identifies the run
  tensorboard/       TensorBoard logs (train and validation, per epoch; figures; hyper-parameters)
  history.csv        every epoch's losses and metrics
  best.weights.h5    the epoch with the highest validation UA (`best.json`)
  predictions.csv    the best epoch's answer on every validation and test utterance (`emokeras.training.predictions`)
  results.json       validation and test UA, WA, confusion matrices and split hashes, epochs, time
  state/             while training: the committed state an interrupted run resumes from (`training.checkpoint`)

and the deployable model goes to `<saved_models>/<experiment>/fold-<k>/` (`emokeras.serving.export`).

A run is identified by its resolved configuration: started again with settings that shape the result differently,
it is refused, naming each difference (`--overwrite` replaces it, `--output` trains elsewhere). Started again as
it was, a finished run is reported, an interrupted one resumes from its last committed epoch, and one stopped after
training (during its evaluation or export) finishes from its best weights. One process writes a run folder at a
time (`emokeras.files.exclusive`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import warnings

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from emokeras.config import PrepareConfig, TrainConfig
from emokeras.data import pipelines, tfrecords
from emokeras.data.preparation import prepare_corpus
from emokeras.files import exclusive, reported_write_errors, write_json, write_text
from emokeras.models.builders import inference_function, select_inputs
from emokeras.models.specs import model_spec
from emokeras.serving.export import export_saved_model
from emokeras.settings import identity_differences
from emokeras.training import predictions
from emokeras.training.callbacks import (
    EpochSeconds,
    ValidationFigures,
    write_hyperparameters,
)
from emokeras.training.checkpoint import BEST, BEST_WEIGHTS, HISTORY, RunCheckpoint, TrainingState
from emokeras.training.tasks import CONFIG, RESULTS, task_for

logger = logging.getLogger(__name__)

TENSORBOARD = "tensorboard"
FIGURE_UTTERANCES = 4  # validation utterances drawn as the paper's Figure 3 each epoch


class RunMismatch(ValueError):
    """The run folder holds a run of another configuration; the message names each difference."""


@contextlib.contextmanager
def dtype_policy(name: str | None):
    """Within the block, new layers compute in `name`, a Keras mixed policy (or float32 for None).

    Variables stay float32; the previous global policy comes back after.
    """
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name or "float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def resolve_data(config: TrainConfig) -> str:
    """The prepared folder to read.

    `config.data` (checked to be one, before anything is written), or the demo corpus, prepared if needed.

    Raises:
      FileNotFoundError: `config.data` holds no prepared corpus, naming it.
    """
    if config.data:
        tfrecords.read_manifest(config.data)
        return config.data
    return prepare_corpus(PrepareConfig(), wait=True)  # runs started together share one preparation


def evaluate(model, config: TrainConfig, data_dir: str) -> tuple[dict, pd.DataFrame]:
    """`model`'s answer on every utterance of the evaluated splits.

    `({split: UA, WA and confusion matrix}, the rows of predictions.csv)`.
    """
    manifest = tfrecords.read_manifest(data_dir)
    class_names = tfrecords.class_names(manifest)
    splits = {split: pipelines.make_dataset(data_dir, config.fold, split, batch_size=config.batch_size,
                                            with_ids=True, data_config=config.data_config)
              for split in pipelines.evaluated_splits(manifest, config.fold)}
    infer = inference_function(model, next(iter(splits.values())).element_spec)
    tables, scores = [], {}
    for split, batches in splits.items():
        ids, speakers, labels, probabilities = [], [], [], []
        for inputs, label in batches:
            probabilities.append(infer(select_inputs(model, inputs)).numpy())
            ids += [value.decode() for value in inputs["utterance_id"].numpy()]
            speakers += [value.decode() for value in inputs["speaker"].numpy()]
            labels.append(label.numpy())
        frame = predictions.table(split, config.fold, config.seed, class_names, ids, speakers,
                                  np.concatenate(labels), np.concatenate(probabilities))
        scores[split] = {**predictions.scores(frame, class_names),
                         "split_hash": predictions.split_hash(frame["utterance_id"], frame["label"])}
        tables.append(frame)
    return scores, pd.concat(tables, ignore_index=True)


def recorded_differences(path: str, config: TrainConfig) -> list[str]:
    """How `config` differs from the configuration recorded at `path` (a `config.json`) in what shapes a result.

    The data folders compared as real paths; nothing if none is recorded.
    """
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as handle:
        recorded = json.load(handle)
    recorded["data"] = os.path.realpath(recorded.get("data") or "")
    return identity_differences(recorded, dataclasses.replace(config, data=os.path.realpath(config.data or "")))


def summary_line(config: TrainConfig, results: dict) -> str:
    """One line of a run's validation and test UA and WA, as the commands print it."""
    validation, test = results["validation"], results["test"]
    return (f"{config.experiment()} fold {config.fold}: validation UA {validation['unweighted_accuracy']:.4f} "
            f"WA {validation['weighted_accuracy']:.4f} | test UA {test['unweighted_accuracy']:.4f} "
            f"WA {test['weighted_accuracy']:.4f} | best epoch {results['best_epoch']}/{results['epochs']} | "
            f"{results['train_seconds']:.0f} s | {config.run_dir()}")


def preparation_facts(data_dir: str) -> dict:
    """What a recogniser needs to answer as the training data was prepared: classes, features, text encoder."""
    manifest = tfrecords.read_manifest(data_dir)
    handle = manifest["encoder_handle"]
    # A local encoder's path is relative to where preparation ran, as training's is: make it absolute.
    if os.path.exists(handle):
        handle = os.path.abspath(handle)
    return {"class_names": tfrecords.class_names(manifest), "corpus": manifest["corpus"],
            "feature_set": manifest["feature_set"], "encoder_handle": handle,
            "encoder_dimension": manifest["encoder_dimension"]}


class Experiment:
    """One run of `config`: its folders, its data, and the steps of training it.

    Args:
      config: what to train (`emokeras.config.TrainConfig`).
    """

    def __init__(self, config: TrainConfig):
        if config.multiview.mode is None:
            model_spec(config.model)  # an unknown name fails here, before any work
        self.config = config
        self.run_dir = config.run_dir()
        self.export_dir = config.export_dir()

    def run(self, callbacks=()) -> dict:
        """Trains (or resumes, or finishes, or reports) the run; returns `results.json`'s content.

        Args:
          callbacks: extra Keras callbacks for `fit`, after emokeras' own (they see each epoch committed).

        Raises:
          RunMismatch: the folder holds a run of another configuration.
          FolderInUse: another process is writing the folder.
          NonFiniteLoss: training reached a NaN or infinite loss (nothing is exported).
        """
        config = self.config
        with exclusive(self.run_dir):
            data_dir = resolve_data(config)
            task = task_for(config, data_dir)  # refuses a corpus that cannot feed the run, before anything is built
            if config.overwrite:
                shutil.rmtree(self.run_dir, ignore_errors=True)
            self._check_identity(data_dir)
            results_path = os.path.join(self.run_dir, RESULTS)
            with dtype_policy(config.mixed_precision), pipelines.reported_as_unreadable(pipelines.TRAINING_ADVICE):
                if os.path.isfile(results_path):
                    with open(results_path, encoding="utf-8") as handle:
                        results = json.load(handle)
                    if not os.path.isfile(os.path.join(self.run_dir, predictions.PREDICTIONS)):
                        results = self._add_predictions(task, results)
                    logger.info("already trained (--overwrite to train again): %s", summary_line(config, results))
                    return results
                results, rows = self._train_evaluate_export(task, callbacks)
            self._write_results(results, rows)
            RunCheckpoint(self.run_dir).finish()
            logger.info("%s", summary_line(config, results))
            return results

    def _write_results(self, results: dict, rows) -> None:
        """predictions.csv, then results.json: a run is finished when results.json exists, and then has both."""
        with reported_write_errors(self.run_dir, RESULTS):
            write_text(os.path.join(self.run_dir, predictions.PREDICTIONS), predictions.to_csv(rows))
            write_json(os.path.join(self.run_dir, RESULTS), results)

    def _check_identity(self, data_dir: str) -> None:
        """Refuses a folder whose committed epochs or results came from another configuration.

        A `config.json` with neither (a run stopped before its first epoch was committed) holds nothing to protect.
        """
        if not (TrainingState.read(self.run_dir) or os.path.isfile(os.path.join(self.run_dir, RESULTS))):
            return
        differences = recorded_differences(os.path.join(self.run_dir, CONFIG),
                                           dataclasses.replace(self.config, data=data_dir))
        if differences:
            raise RunMismatch(f"{self.run_dir} holds a run of another configuration ({'; '.join(differences)}); "
                              "train it again with --overwrite, or elsewhere with --output")

    def _add_predictions(self, task, results: dict) -> dict:
        """A run finished before runs kept predictions.

        Its best weights evaluated again, without training, for predictions.csv and the split hashes.
        """
        logger.info("%s: evaluating the best epoch again for predictions.csv (no training)", self.run_dir)
        keras.utils.set_random_seed(self.config.seed)
        model, deployable = task.build()
        model.load_weights(os.path.join(self.run_dir, BEST_WEIGHTS))
        scores, rows = evaluate(deployable, self.config, task.data_dir)
        for split, values in scores.items():
            recorded = results.get(split, {}).get("unweighted_accuracy")
            if recorded is not None and abs(recorded - values["unweighted_accuracy"]) > 1e-6:
                logger.warning("%s: %s UA evaluated again is %.6f, results.json says %.6f; predictions.csv holds the "
                               "new evaluation", self.run_dir, split, values["unweighted_accuracy"], recorded)
            results[split] = {**results.get(split, {}), **values}
        self._write_results(results, rows)
        return results

    def _fresh_start(self, data_dir: str, strategy) -> None:
        """A run with no committed epoch, about to train.

        Drop what an earlier attempt left, and record the configuration.
        """
        os.makedirs(self.run_dir, exist_ok=True)
        for name in (HISTORY, BEST, BEST_WEIGHTS, predictions.PREDICTIONS):
            path = os.path.join(self.run_dir, name)
            if os.path.exists(path):
                os.remove(path)
        shutil.rmtree(os.path.join(self.run_dir, TENSORBOARD), ignore_errors=True)
        resolved = dataclasses.asdict(self.config)
        resolved.update(data=data_dir, replicas=strategy.num_replicas_in_sync,
                        devices=list(strategy.extended.worker_devices))
        write_json(os.path.join(self.run_dir, CONFIG), resolved)

    def _train_evaluate_export(self, task, callbacks) -> tuple[dict, pd.DataFrame]:
        config, data_dir = self.config, task.data_dir
        keras.utils.set_random_seed(config.seed)
        strategy = tf.distribute.MirroredStrategy()
        checkpoint = RunCheckpoint(self.run_dir)
        with strategy.scope():
            model, deployable = task.build()
            initial_epoch = checkpoint.restore(model)
        validation = task.validation_data(model)
        if initial_epoch < config.epochs:
            train, steps = task.training_data(model, initial_epoch)
            # Figure 3 needs words: drawn for models that read them (the first few validation utterances).
            figure_examples = (list(pipelines.parsed_split(data_dir, config.fold, "validation", config.data_config)
                                    .take(FIGURE_UTTERANCES))
                               if model_spec(config.deployable()).words else [])
            tensorboard_dir = os.path.join(self.run_dir, TENSORBOARD)
            figures = ValidationFigures(deployable, validation, figure_examples,
                                        os.path.join(tensorboard_dir, "validation"), task.class_names)
            if initial_epoch:
                logger.info("resuming the interrupted run at epoch %d of %d", initial_epoch + 1, config.epochs)
            else:
                self._fresh_start(data_dir, strategy)  # the first file this run writes: it starts training now
            write_hyperparameters(tensorboard_dir, config.hyperparameters(),
                                  f"{config.experiment()}/fold-{config.fold}")
            # The validation split's length is not known before its first pass, at whose end Keras warns.
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            model.fit(train, steps_per_epoch=steps, validation_data=validation, epochs=config.epochs,
                      initial_epoch=initial_epoch, verbose=2, shuffle=False,
                      callbacks=[*task.callbacks(self.run_dir), EpochSeconds(), figures,
                                 keras.callbacks.TensorBoard(tensorboard_dir, write_graph=False), checkpoint,
                                 *callbacks])
        else:
            logger.info("finishing the trained run from its best epoch (%d)", checkpoint.state.best_epoch)
        checkpoint.publish()
        state = checkpoint.state
        model.load_weights(checkpoint.best_weights)
        scores, rows = evaluate(deployable, config, data_dir)
        results = {
            "model": config.experiment(),
            "fold": config.fold,
            "seed": config.seed,
            **scores,
            "best_epoch": state.best_epoch,
            "epochs": state.epochs,
            "train_seconds": round(sum(row["epoch_seconds"] for row in state.history), 1),
            "history": state.history,
            "saved_model": self.export_dir,
        }
        # Multi-view learning exports the acoustic view alone: it needs no transcript.
        with reported_write_errors(self.export_dir, "the exported model", also=(tf.errors.ResourceExhaustedError,)):
            export_saved_model(deployable, self.export_dir, {
                "model": config.deployable(), "experiment": config.experiment(), "fold": config.fold,
                "seed": config.seed, "data": data_dir, "best_epoch": state.best_epoch,
                "mixed_precision": config.mixed_precision, "max_frames": config.data_config.max_frames,
                **preparation_facts(data_dir)}, onnx=config.onnx)
        return results, rows
