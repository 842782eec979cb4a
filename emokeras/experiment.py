"""One training run, as a library: `Experiment(config).run()` trains one model (or a multi-view student) on one fold,
keeps its best epoch, evaluates it on the held-out speakers and exports it. `train`, `crossval` and `tune` call it.

The run folder `<output>/<experiment>/fold-<k>/` holds:

  config.json        the resolved configuration: what identifies the run
  tensorboard/       TensorBoard logs (train and validation, per epoch; figures; hyper-parameters)
  history.csv        every epoch's losses and metrics
  best.weights.h5    the epoch with the highest validation UA (`best.json`)
  predictions.csv    the best epoch's answer on every validation and test utterance (`emokeras.predictions`)
  results.json       validation and test UA, WA, confusion matrices and split hashes, epochs, time
  state/             while training: the committed state an interrupted run resumes from (`emokeras.checkpoint`)

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

from emokeras import data, multiview, predictions, tfrecords
from emokeras.callbacks import (
    BetaSchedule,
    EpochSeconds,
    EpochSeeds,
    StopOnNonFiniteLoss,
    ValidationFigures,
    write_hyperparameters,
)
from emokeras.checkpoint import BEST, BEST_WEIGHTS, HISTORY, RunCheckpoint, TrainingState
from emokeras.config import ModelConfig, PrepareConfig, TrainConfig, identity_differences
from emokeras.files import exclusive, reported_write_errors, write_json, write_text
from emokeras.metrics import UnweightedAccuracy, WeightedAccuracy
from emokeras.models import build_model, select_inputs
from emokeras.preparation import prepare_corpus
from emokeras.serving.export import export_saved_model
from emokeras.specs import ACOUSTIC_ONLY, missing_for, model_spec, models_for

logger = logging.getLogger(__name__)

RESULTS = "results.json"
CONFIG = "config.json"
TENSORBOARD = "tensorboard"
FIGURE_UTTERANCES = 4  # validation utterances drawn as the paper's Figure 3 each epoch


class RunMismatch(ValueError):
    """The run folder holds a run of another configuration; the message names each difference."""


@contextlib.contextmanager
def dtype_policy(name: str | None):
    """Within the block, new layers compute in `name` (a Keras mixed policy: variables stay float32), or in
    float32 for None; the previous global policy comes back after."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name or "float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def resolve_data(config: TrainConfig) -> str:
    """The prepared folder to read: `config.data` (checked to be one, before anything is written), or the demo
    corpus, prepared if needed.

    Raises:
      FileNotFoundError: `config.data` holds no prepared corpus, naming it.
    """
    if config.data:
        tfrecords.read_manifest(config.data)
        return config.data
    return prepare_corpus(PrepareConfig())


def _keep_inputs(input_names, class_weights=None):
    """The batch's inputs that `input_names` lists; with `class_weights` (per class id), each utterance's weight
    as a third element."""
    weights = None if class_weights is None else tf.constant(class_weights, tf.float32)

    def keep(inputs, label):
        kept = {name: inputs[name] for name in input_names}
        return (kept, label) if weights is None else (kept, label, tf.gather(weights, label))

    return keep


def class_weights(config: TrainConfig, manifest: dict) -> list[float] | None:
    """`--class_weights balanced`: per class, n / (classes · n_class) over the fold's training split (None for
    no weights). A class absent from training weighs 0."""
    if config.class_weights is None:
        return None
    train = data.fold_of(manifest, config.fold).splits["train"]
    classes = tfrecords.class_names(manifest)
    counts = np.array([sum(manifest["counts"][group][name] for group in train) for name in classes], np.float64)
    weights = np.divide(counts.sum(), len(classes) * counts, out=np.zeros_like(counts), where=counts > 0)
    return weights.tolist()


def training_data(model, config: TrainConfig, data_dir: str, first_epoch: int) -> tuple:
    """What `fit` trains `model` on from `first_epoch`: the epochs' batches, restricted to the inputs the model
    reads (with negatives, Algorithm 1, for a `MultiViewModel`; with class weights if asked), and the batches per
    epoch."""
    manifest = tfrecords.read_manifest(data_dir)
    weights = class_weights(config, manifest)
    if isinstance(model, multiview.MultiViewModel):
        input_names = tuple(dict.fromkeys((*model.acoustic_view.input, *model.second_view.input)))
        views, classes = config.multiview, tfrecords.class_names(manifest)

        def each_epoch(dataset, epoch):
            return multiview.add_negatives(dataset.map(_keep_inputs(input_names, weights)), views.negatives,
                                           classes, seed=config.seed, epoch=epoch)
    else:
        input_names = tuple(model.input)

        def each_epoch(dataset, epoch):
            return dataset.map(_keep_inputs(input_names, weights))

    return data.training_epochs(data_dir, config.fold, config.batch_size, config.seed, first_epoch, config.epochs,
                                config.data_config, each_epoch)


def validation_data(model, config: TrainConfig, data_dir: str):
    """The validation split's batches, with the inputs the deployable model reads (`fit`'s validation data)."""
    deployable = model.acoustic_view if isinstance(model, multiview.MultiViewModel) else model
    return data.make_dataset(data_dir, config.fold, "validation", batch_size=config.batch_size,
                             data_config=config.data_config).map(_keep_inputs(tuple(deployable.input)))


def check_data(config: TrainConfig, manifest: dict) -> None:
    """Refuses, before anything is built, a fold the corpus lacks and a model that needs what it lacks.

    Raises:
      ValueError: naming the fold or the model, what the corpus lacks, and the models that can run.
    """
    data.fold_of(manifest, config.fold)
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


def evaluate(model, config: TrainConfig, data_dir: str) -> tuple[dict, pd.DataFrame]:
    """`model`'s answer on every utterance of the evaluated splits: `({split: UA, WA and confusion matrix},
    the rows of predictions.csv)`."""
    manifest = tfrecords.read_manifest(data_dir)
    class_names = tfrecords.class_names(manifest)
    infer = tf.function(lambda inputs: model(inputs, training=False), reduce_retracing=True)
    tables, scores = [], {}
    for split in data.evaluated_splits(manifest, config.fold):
        ids, speakers, labels, probabilities = [], [], [], []
        for inputs, label in data.make_dataset(data_dir, config.fold, split, batch_size=config.batch_size,
                                               with_ids=True, data_config=config.data_config):
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


def build_model_for(name: str, config: TrainConfig, data_dir: str, frame_statistics=None):
    """Model `name` sized by `config.model_config`, normalising frames with the fold's training statistics."""
    manifest = tfrecords.read_manifest(data_dir)
    mean, variance = frame_statistics or data.frame_statistics(data_dir, config.fold, config.data_config)
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
    statistics = frame_statistics or data.frame_statistics(data_dir, config.fold, config.data_config)
    student = build_model_for(views.student, config, data_dir, statistics)
    if views.mode == "joint":
        second = build_model_for(model_spec(views.view).name, config, data_dir, statistics)
    else:
        second = load_trained(views.teacher_dir(config.fold, config.seed), data_dir, config.fold, statistics)
    model = multiview.MultiViewModel(student, second, mode=views.mode, beta_a=views.beta_a, beta_m=views.beta_m,
                                     margin=views.margin)
    model.compile(optimizer=optimizer(config))
    return model, student


def recorded_differences(path: str, config: TrainConfig) -> list[str]:
    """How `config` differs from the configuration recorded at `path` (a `config.json`) in what shapes a result,
    the data folders compared as real paths; nothing if none is recorded."""
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as handle:
        recorded = json.load(handle)
    recorded["data"] = os.path.realpath(recorded.get("data") or "")
    return identity_differences(recorded, dataclasses.replace(config, data=os.path.realpath(config.data or "")))


def summary_line(config: TrainConfig, results: dict) -> str:
    validation, test = results["validation"], results["test"]
    return (f"{config.experiment()} fold {config.fold}: validation UA {validation['unweighted_accuracy']:.4f} "
            f"WA {validation['weighted_accuracy']:.4f} | test UA {test['unweighted_accuracy']:.4f} "
            f"WA {test['weighted_accuracy']:.4f} | best epoch {results['best_epoch']}/{results['epochs']} | "
            f"{results['train_seconds']:.0f} s | {config.run_dir()}")


def preparation_facts(data_dir: str) -> dict:
    """What a recogniser needs to answer as the training data was prepared: the classes, features and text
    encoder."""
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
            check_data(config, tfrecords.read_manifest(data_dir))
            if config.overwrite:
                shutil.rmtree(self.run_dir, ignore_errors=True)
            self._check_identity(data_dir)
            results_path = os.path.join(self.run_dir, RESULTS)
            with dtype_policy(config.mixed_precision), data.reported_as_unreadable(data.TRAINING_ADVICE):
                if os.path.isfile(results_path):
                    with open(results_path, encoding="utf-8") as handle:
                        results = json.load(handle)
                    if not os.path.isfile(os.path.join(self.run_dir, predictions.PREDICTIONS)):
                        results = self._add_predictions(data_dir, results)
                    logger.info("already trained (--overwrite to train again): %s", summary_line(config, results))
                    return results
                results, rows = self._train_evaluate_export(data_dir, callbacks)
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
        """Refuses a folder whose committed epochs or results came from another configuration. A `config.json`
        with neither (a run stopped before its first epoch was committed) holds nothing to protect."""
        if not (TrainingState.read(self.run_dir) or os.path.isfile(os.path.join(self.run_dir, RESULTS))):
            return
        differences = recorded_differences(os.path.join(self.run_dir, CONFIG),
                                           dataclasses.replace(self.config, data=data_dir))
        if differences:
            raise RunMismatch(f"{self.run_dir} holds a run of another configuration ({'; '.join(differences)}); "
                              "train it again with --overwrite, or elsewhere with --output")

    def _build(self, data_dir: str):
        """The model `fit` trains and the deployable model (the same one, or a multi-view model's student)."""
        if self.config.multiview.mode is None:
            model = build_compiled_model(self.config, data_dir)
            return model, model
        return build_multiview_model(self.config, data_dir)

    def _add_predictions(self, data_dir: str, results: dict) -> dict:
        """A run finished before runs kept predictions: its best weights evaluated again, without training, for
        predictions.csv and the split hashes."""
        logger.info("%s: evaluating the best epoch again for predictions.csv (no training)", self.run_dir)
        keras.utils.set_random_seed(self.config.seed)
        model, deployable = self._build(data_dir)
        model.load_weights(os.path.join(self.run_dir, BEST_WEIGHTS))
        scores, rows = evaluate(deployable, self.config, data_dir)
        for split, values in scores.items():
            recorded = results.get(split, {}).get("unweighted_accuracy")
            if recorded is not None and abs(recorded - values["unweighted_accuracy"]) > 1e-6:
                logger.warning("%s: %s UA evaluated again is %.6f, results.json says %.6f; predictions.csv holds the "
                               "new evaluation", self.run_dir, split, values["unweighted_accuracy"], recorded)
            results[split] = {**results.get(split, {}), **values}
        self._write_results(results, rows)
        return results

    def _fresh_start(self, data_dir: str, strategy) -> None:
        """A run with no committed epoch, about to train: drop what an earlier attempt left, and record the
        configuration."""
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

    def _train_evaluate_export(self, data_dir: str, callbacks) -> tuple[dict, pd.DataFrame]:
        config = self.config
        keras.utils.set_random_seed(config.seed)
        strategy = tf.distribute.MirroredStrategy()
        checkpoint = RunCheckpoint(self.run_dir)
        with strategy.scope():
            model, deployable = self._build(data_dir)
            initial_epoch = checkpoint.restore(model)
        validation = validation_data(model, config, data_dir)
        if initial_epoch < config.epochs:
            train, steps = training_data(model, config, data_dir, initial_epoch)
            schedule = ([BetaSchedule(config.multiview.beta_a, config.multiview.beta_m, config.multiview.beta_decay)]
                        if config.multiview.mode else [])
            # Figure 3 needs words: drawn for models that read them (the first few validation utterances).
            figure_examples = (list(data.parsed_split(data_dir, config.fold, "validation", config.data_config)
                                    .take(FIGURE_UTTERANCES))
                               if model_spec(config.deployable()).words else [])
            tensorboard_dir = os.path.join(self.run_dir, TENSORBOARD)
            figures = ValidationFigures(deployable, validation, figure_examples,
                                        os.path.join(tensorboard_dir, "validation"),
                                        tfrecords.class_names(tfrecords.read_manifest(data_dir)))
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
                      callbacks=[EpochSeeds(config.seed), StopOnNonFiniteLoss(self.run_dir), EpochSeconds(), *schedule,
                                 figures, keras.callbacks.TensorBoard(tensorboard_dir, write_graph=False),
                                 checkpoint, *callbacks])
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
