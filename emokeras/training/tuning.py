"""Tuning, as a library: a Keras Tuner search over multi-view settings (`search_hyperparameters(config, space)`).

Searches βa ∈ {1.0, 1.2}, βm ∈ {0.3, 0.5, 1.0} (the paper's Appendix B), the contrastive margin and the negative
rule, for a multi-view run (default: B-ACO-1 trained jointly with H-MM-4), maximising the acoustic view's
validation UA. Only the settings the mode uses are searched (`emokeras.config.MODE_SETTINGS`).

The tuner's state goes to `<tuning>/<experiment>.fold-<k>/`, with the configuration it searches around in
`config.json`: a stopped search resumes when started again (finished trials are kept, and `max_trials` counts
them), and one started around other settings is refused, naming each difference. Each trial costs a training run.

A search can be spread over processes and machines with Keras Tuner's own distributed mode: a chief
(`KERASTUNER_TUNER_ID=chief`, or `--tuner_id chief`) serves the trials at `KERASTUNER_ORACLE_IP:PORT`
(`--oracle_address host:port`) and workers (any other id) train them, the tuning folder shared. The folder's lock
admits one search: its chief holds it, naming its address, and workers of that address join it; anything else is
refused. Keras Tuner has no heartbeat: a worker that dies keeps its trial until a worker of the same id comes back
and takes it over (`tune --workers N` restarts it: `emokeras.tune`). A worker gives up on a chief it cannot reach
within `--oracle_timeout` seconds.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import warnings

import keras
import keras_tuner
import tensorflow as tf

from emokeras.config import MODE_SETTINGS, TrainConfig, TuneConfig
from emokeras.data import pipelines
from emokeras.files import FolderInUse, exclusive, holder, write_json
from emokeras.settings import command_line
from emokeras.training.experiment import CONFIG, RunMismatch, dtype_policy, recorded_differences, resolve_data
from emokeras.training.tasks import MultiViewTask

logger = logging.getLogger(__name__)

OBJECTIVE = "val_unweighted_accuracy"
SEARCHED = ("beta_a", "beta_m", "margin", "negatives")  # the TuneConfig fields that hold values to search


def searched(mode: str) -> tuple[str, ...]:
    """The searched `MultiViewConfig` fields that a mode's loss uses (Eq. 3-5)."""
    return tuple(name for name in MODE_SETTINGS[mode] if name in SEARCHED)


class MultiViewHyperModel(keras_tuner.HyperModel):
    """Builds and fits one `MultiViewModel` per trial, from the trial's `tasks.MultiViewTask`.

    Args:
      config: the run to tune; its `multiview` values are replaced by each trial's.
      space: the values to choose from.
      data_dir: the prepared folder.
    """

    def __init__(self, config: TrainConfig, space: TuneConfig, data_dir: str):
        super().__init__(name=config.experiment())
        self.config, self.space, self.data_dir = config, space, data_dir
        self._frame_statistics = MultiViewTask(config, data_dir).frame_statistics  # the fold's, once for all trials

    def trial_config(self, hp) -> TrainConfig:
        """`config` with the trial's values (declaring them to `hp` on first use)."""
        values = {name: hp.Choice(name, list(getattr(self.space, name)))
                  for name in searched(self.config.multiview.mode)}
        return dataclasses.replace(self.config, multiview=dataclasses.replace(self.config.multiview, **values))

    def task(self, hp) -> MultiViewTask:
        """The multi-view task of the trial."""
        return MultiViewTask(self.trial_config(hp), self.data_dir, self._frame_statistics)

    def build(self, hp):
        """The trial's model, from the same initial weights as every other trial."""
        keras.utils.set_random_seed(self.config.seed)  # every trial starts from the same weights
        model, _ = self.task(hp).build()
        return model

    def fit(self, hp, model, *args, callbacks=None, **kwargs):
        """Fits on the fold with the trial's negatives and β, passing the tuner's callbacks through."""
        task = self.task(hp)
        train, steps = task.training_data(model, first_epoch=0)
        return model.fit(train, steps_per_epoch=steps, validation_data=task.validation_data(model),
                         epochs=task.config.epochs, verbose=2, shuffle=False,
                         callbacks=[*task.callbacks(f"trial {hp.values}"), *(callbacks or [])])


def make_tuner(config: TrainConfig, space: TuneConfig, data_dir: str):
    """The `space.tuner` tuner over `MultiViewHyperModel`, its state in `space.directory` (resumed if there)."""
    kind = {"grid": keras_tuner.GridSearch, "random": keras_tuner.RandomSearch,
            "bayesian": keras_tuner.BayesianOptimization}[space.tuner]
    tuner = kind(MultiViewHyperModel(config, space, data_dir),
                 objective=keras_tuner.Objective(OBJECTIVE, direction="max"), max_trials=space.max_trials,
                 seed=config.seed, directory=space.directory, project_name=f"{config.experiment()}.fold-{config.fold}",
                 overwrite=False, distribution_strategy=tf.distribute.MirroredStrategy())
    if isinstance(tuner.oracle, keras_tuner.Oracle):  # not a worker, whose oracle is a client of its chief's
        _resume(tuner)
    return tuner


def _resume(tuner) -> None:
    """The search in the tuner's folder read back whoever ran it, and only its unfinished trials to train again.

    Keras Tuner reads a search back only for the tuner id that saved it (`chief.json` for a distributed search's
    chief, `tuner0.json` for a search alone): a search run alone and resumed by `--workers`, or the other way round,
    would start again from its first trial and overwrite the trials. And it saves a trial's end before it stops
    counting the trial as running, so a finished search read back holds its last trial as running and would train it
    again (Keras Tuner 1.4.8: `Oracle.end_trial` saves, then pops `ongoing_trials`; `Oracle.reload` queues those).
    """
    oracle = tuner.oracle
    if not oracle.trials and os.path.isfile(os.path.join(tuner.project_dir, "oracle.json")):
        oracle.reload()
    finished = (keras_tuner.engine.trial.TrialStatus.COMPLETED, keras_tuner.engine.trial.TrialStatus.FAILED)
    oracle._retry_queue = [trial_id for trial_id in oracle._retry_queue
                           if oracle.trials[trial_id].status not in finished]


class ChiefUnreachable(ConnectionError):
    """A worker cannot reach its search's chief; the message names the address."""


def distributed_role(space: TuneConfig) -> tuple[str, str] | None:
    """`(tuner id, chief's host:port)` of a distributed search; None for a search alone.

    Taken from the flags, or else from Keras Tuner's variables (which it then sets, as Keras Tuner reads them).

    Raises:
      ValueError: an id without an address or the other way round, or an address that is not host:port.
    """
    tuner_id = space.tuner_id or os.environ.get("KERASTUNER_TUNER_ID")
    address = space.oracle_address
    if address is None and os.environ.get("KERASTUNER_ORACLE_IP"):
        address = f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ.get('KERASTUNER_ORACLE_PORT', '')}"
    if tuner_id is None and address is None:
        return None
    if not tuner_id or not address:
        raise ValueError("a distributed search needs a tuner id and the chief's address: --tuner_id and "
                         "--oracle_address host:port (or KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP and "
                         "KERASTUNER_ORACLE_PORT)")
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--oracle_address {address!r}: expected host:port, such as 127.0.0.1:8000")
    os.environ.update(KERASTUNER_TUNER_ID=tuner_id, KERASTUNER_ORACLE_IP=host, KERASTUNER_ORACLE_PORT=port)
    return tuner_id, address


def chief_role(address: str) -> str:
    """What a chief writes in its folder's lock, so that its workers know it."""
    return f"the chief of a search at {address}"


def _join(project: str, address: str, timeout: float) -> None:
    """A worker's entry: waits (up to `timeout` s) until the chief at `address` holds the folder and answers.

    Raises:
      FolderInUse: another search holds the folder.
      ChiefUnreachable: no chief came, or it does not answer.
    """
    import grpc

    deadline = time.monotonic() + timeout
    while True:
        held = holder(project)
        if held is not None and held.startswith(chief_role(address) + ":"):
            break
        if held is not None:
            raise FolderInUse(f"{project} is in use by {held}, not by the chief at {address}; give this worker that "
                              "chief's address, or search elsewhere with --tuning")
        if time.monotonic() > deadline:
            raise ChiefUnreachable(f"no chief at {address} holds {project} after {timeout:g} s; start the chief "
                                   f"(--tuner_id chief --oracle_address {address}) first, or raise --oracle_timeout")
        time.sleep(1.0)
    try:
        grpc.channel_ready_future(grpc.insecure_channel(address)).result(timeout=max(1.0, deadline - time.monotonic()))
    except grpc.FutureTimeoutError:
        raise ChiefUnreachable(f"cannot reach the chief at {address} within {timeout:g} s; is the address one "
                               "this machine can reach?") from None


def search_hyperparameters(config: TrainConfig, space: TuneConfig) -> tuple[dict, float, str] | None:
    """Runs (or resumes) the search, alone or as a distributed search's chief or worker.

    Returns the best trial's values, its validation UA and its command line (None for a worker, once the search is
    over).

    Raises:
      RunMismatch: the tuning folder holds a search around another configuration.
      FolderInUse: another process (another search) is searching in it.
      ChiefUnreachable: a worker's chief cannot be reached.
    """
    if config.multiview.mode is None:
        config = dataclasses.replace(config, multiview=dataclasses.replace(config.multiview, mode="joint"))
    config.experiment()  # a frozen or teacher run without --teacher fails here, before any work
    role = distributed_role(space)
    project = os.path.join(space.directory, f"{config.experiment()}.fold-{config.fold}")
    if role is not None and "chief" not in role[0]:
        return _work(config, space, project, *role)
    with exclusive(project, role=chief_role(role[1]) if role else ""):
        data_dir = resolve_data(config)
        MultiViewTask(config, data_dir)  # refuses a corpus that cannot feed the search, before anything is built
        config = dataclasses.replace(config, data=data_dir)
        _check_identity(project, config)
        if role:
            logger.info("chief of the search in %s at %s: waiting for workers", project, role[1])
        tuner = _search(config, space, data_dir, chief_at=role[1] if role else None)
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


def _search(config: TrainConfig, space: TuneConfig, data_dir: str, chief_at: str | None = None):
    """Runs the trials (alone or as a worker), or serves them to workers as the chief at `chief_at`."""
    # The validation split's length is not known before its first pass, at whose end Keras warns.
    warnings.filterwarnings("ignore", message="Your input ran out of data")
    with dtype_policy(config.mixed_precision), pipelines.reported_as_unreadable(pipelines.TRAINING_ADVICE):
        tuner = make_tuner(config, space, data_dir)
        if chief_at:
            tuner.save()  # as Keras Tuner's chief does before it serves
            serve_trials(tuner.oracle, chief_at)
        else:
            tuner.search()
    return tuner


def serve_trials(oracle, address: str, poll: float = 0.5) -> None:
    """The chief of a distributed search: serves `oracle` at `address` until every worker has been told it is over.

    Keras Tuner's own server (`oracle_chief.start_server`) does the same but, once one worker has been told, looks
    again only every 20 s: the chief would outlive its last worker by up to 20 s. This one looks every `poll` s.
    """
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = oracle_chief.OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    server.add_insecure_port(address)
    server.start()
    try:
        while not (servicer.stop_triggered and oracle_chief.exit_chief(oracle)):
            time.sleep(poll)
    finally:
        server.stop(grace=None)


def _work(config: TrainConfig, space: TuneConfig, project: str, tuner_id: str, address: str) -> None:
    """A worker: joins the chief at `address`, trains the trials it hands out until the search is over."""
    import grpc
    from keras_tuner.src.distribute import oracle_client

    _join(project, address, space.oracle_timeout)
    oracle_client.TIMEOUT = space.oracle_timeout  # Keras Tuner's own wait for a silent chief is an hour
    data_dir = resolve_data(config)
    MultiViewTask(config, data_dir)
    config = dataclasses.replace(config, data=data_dir)
    _check_identity(project, config, record=False)
    logger.info("worker %s of the search at %s", tuner_id, address)
    try:
        _search(config, space, data_dir)
    except grpc.RpcError as error:
        raise ChiefUnreachable(f"lost the chief at {address} ({error.code().name}); the search's state is in "
                               f"{project}") from None
    logger.info("worker %s: the search at %s is over", tuner_id, address)
    return None


def _check_identity(project: str, config: TrainConfig, record: bool = True) -> None:
    """Records the configuration a search is around, or refuses one that differs from the recorded one.

    What counts is what shapes a trial's result, the searched settings aside. A worker (not `record`) only checks.
    """
    path = os.path.join(project, CONFIG)
    if not os.path.isfile(path) and record:
        os.makedirs(project, exist_ok=True)
        write_json(path, dataclasses.asdict(config))
        return
    differences = [line for line in recorded_differences(path, config)
                   if line.split(":")[0].lstrip("-") not in SEARCHED]
    if differences:
        raise RunMismatch(f"{project} holds a search around another configuration ({'; '.join(differences)}); "
                          "search elsewhere with --tuning, or remove the folder")

