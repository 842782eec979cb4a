"""Shared fixtures: a prepared demo corpus and the session's trained runs. Helpers are in `tests/helpers/`.

Under pytest-xdist (`-n 2`) the worker processes share them: the first worker to need one builds it in the
session's common folder while the others wait for it, then read what it built (a run's results.json).
"""

import fcntl
import gc
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # as a command's quiet start: the in-process chief's gRPC too

import pytest

from emokeras.config import PrepareConfig


def _iterators_without_autotuning():
    """Every tf.data iterator these processes make runs without autotuning (tf.data's own debug mode does the same).

    An autotuning iterator's optimisation thread (`Model::OptimizeLoop`) can miss its iterator's deletion: the
    cancellation callback wakes it before `CancellationManager::IsCancelled()` turns true (TensorFlow 2.21 sets it
    after running the callbacks), and it sleeps out its period, up to 60 s, while the deleting thread waits for it.
    Tests of 1 to 3 s took up to 106 s so. Autotuning picks parallelism and buffer sizes, never values: the behaviour
    tested is the same. Commands the tests start are left as a user runs them.
    """
    import tensorflow as tf
    from tensorflow.python.data.ops import dataset_ops

    apply_debug_options = dataset_ops.DatasetV2._apply_debug_options  # every iterator's dataset passes through it
    fixed = tf.data.Options()
    fixed.autotune.enabled = False

    def without_autotuning(dataset):
        return apply_debug_options(dataset).with_options(fixed)

    dataset_ops.DatasetV2._apply_debug_options = without_autotuning


def pytest_configure(config):
    """TensorFlow set up for the tests, in the processes that run them.

    pytest-xdist's controller (`-n 2`) runs none: without TensorFlow (about 5 s of CPU) it starts its workers sooner.
    """
    if getattr(config.option, "numprocesses", None) and "PYTEST_XDIST_WORKER" not in os.environ:
        return
    from emokeras.cli import skip_the_collection_at_exit
    from emokeras.quiet import held_back_stderr

    with held_back_stderr():  # the lines TensorFlow writes before it reads the level
        import tensorflow as tf

    _iterators_without_autotuning()
    # Grappler's rewrites keep what a graph computes and pay off over many steps; the tests take a few steps of
    # small models, whose first step it lengthens by half (a joint H-MM-4 fit of two steps: 27 and 31 s with it, 18
    # and 21 s without). Commands the tests start run with it, as a user's do.
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    # Tracing makes and drops many short-lived Python objects, and each full collection walks TensorFlow's and Keras'
    # long-lived ones (about 0.3 s here): at the default thresholds collection took 14.4 s of the two test processes'
    # 410 s of CPU, at these 7.2 s (docs/benchmarks.md).
    gc.set_threshold(50_000, 20, 20)
    # The process ends as a finished command does: pytest-xdist's controller waits for its workers to exit.
    skip_the_collection_at_exit()


# Fixtures that train, export or start processes: a test using one is `large` (`pytest -m "not large"` leaves it).
LARGE_FIXTURES = {"b_aco_1_run", "h_mm_4_run", "two_replicas", "distributed_search", "msp_data", "crema_data",
                  "nan_export"}


# Under pytest-xdist (`--dist loadgroup`, pyproject.toml) a group of tests goes to one worker, which builds its shared
# run while the other worker runs something else: a test of another worker would wait for the build. The groups go
# out first, in this order: the first to one worker, the second (which needs no demo corpus) to the other.
WITHOUT_DEMO = "without the demo corpus"
SHARED_GROUPS = ("h_mm_4_run", WITHOUT_DEMO, "distributed_search", "two_replicas")


def _group(item) -> str | None:
    """The group of a large test: the first shared run it reads, or WITHOUT_DEMO; None for the others."""
    fixtures = set(getattr(item, "fixturenames", ()))
    if item.get_closest_marker("large") is None:
        return None
    for name in SHARED_GROUPS:
        if name in fixtures:
            return name
    return WITHOUT_DEMO if "demo_data" not in fixtures else None


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist names each test's group in its id
def pytest_collection_modifyitems(items):
    for item in items:
        if LARGE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.large)
        group = _group(item)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))

    # The shared-run groups, then the other long tests, so that no worker is left with a long one at the end.
    def order(item):
        group = _group(item)
        return (SHARED_GROUPS.index(group) if group else len(SHARED_GROUPS),
                item.get_closest_marker("large") is None)

    items.sort(key=order)


def _common_folder(tmp_path_factory):
    """The session's folder, which all pytest-xdist workers share (each worker's own folder is inside it)."""
    folder = tmp_path_factory.getbasetemp()
    return folder.parent if os.environ.get("PYTEST_XDIST_WORKER") else folder


def _built_once(output, build, lock=None) -> dict:
    """The JSON at `output`, which `build()` writes if no process has: the first process builds, the others wait.

    `lock`: the file whose lock admits one builder (default: beside `output`).
    """
    with open(f"{lock or output}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        if not os.path.isfile(output):
            build()
    with open(output, encoding="utf-8") as handle:
        return json.load(handle)


def _finished_run(config, train) -> dict:
    """The results of `config`'s run, which `train()` trains if no process has: read, not run again.

    Read rather than reported by `Experiment.run`, which would take the run folder's lock while another worker's
    test may hold it; the builders' lock lies beside the runs, not among them.
    """
    return _built_once(os.path.join(config.run_dir(), "results.json"), train,
                       lock=f"{config.output}.{config.experiment()}.fold-{config.fold}")


@pytest.fixture(scope="session")
def demo_config(tmp_path_factory):
    """The demo corpus at a quarter of its default size (200 utterances, 20 per speaker), prepared once.

    The tests' expectations are written for this size. It prepares in 16 s of wall time here against 27 s for 40 per
    speaker (`python -m emokeras.prepare --demo_utterances_per_speaker 20`, then 40).
    """
    root = _common_folder(tmp_path_factory) / "demo"
    return PrepareConfig(root=str(root / "corpus"), out=str(root / "tfrecords"),
                         encoder_dir=str(root / "encoders"), demo_utterances_per_speaker=20)


@pytest.fixture(scope="session")
def demo_data(demo_config):
    """The prepared folder (tfrecords/demo/char-ngram-256) of `demo_config`."""
    from emokeras.data.preparation import prepare_corpus

    return prepare_corpus(demo_config, wait=True)


@pytest.fixture(scope="session")
def shared_runs(tmp_path_factory):
    """Where the session's shared runs live. Tests read them; a test that alters a run makes its own."""
    folder = _common_folder(tmp_path_factory) / "shared"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def b_aco_1_run(shared_runs, demo_data):
    """A finished small B-ACO-1 run on fold 3 (one epoch), exported with its model.onnx: `(config, results)`."""
    from emokeras.training.experiment import Experiment

    from helpers.runs import small_config

    config = small_config(shared_runs, demo_data, epochs=1, onnx=True)
    return config, _finished_run(config, Experiment(config).run)


@pytest.fixture(scope="session")
def h_mm_4_run(shared_runs, demo_data):
    """A finished small H-MM-4 run on fold 3 (two epochs, two BLSTM layers in each stack), exported.

    Trained and exported on the path a GPU takes (tests/helpers/cudnn.py): `(config, results, what went through the
    cuDNN branch)`, the last as `{"lstm_calls": LSTM layers that went through it, "unmasked": those without a mask,
    "export_calls": the LSTM calls through it while the model was exported}`.
    """
    import dataclasses
    from unittest import mock

    from emokeras.training import experiment
    from emokeras.training.experiment import Experiment

    from helpers.cudnn import cudnn_branch
    from helpers.runs import SMALL, small_config

    config = small_config(shared_runs, demo_data, model="H-MM-4", epochs=2,
                          model_config=dataclasses.replace(SMALL, blstm_layers=2))
    seen = shared_runs / "h-mm-4.cudnn.json"

    def train():
        export, in_export = experiment.export_saved_model, []

        def export_watched(*args, **kwargs):
            before = len(branch.calls)
            try:
                return export(*args, **kwargs)
            finally:
                in_export.append(len(branch.calls) - before)

        with cudnn_branch() as branch, mock.patch.object(experiment, "export_saved_model", export_watched):
            Experiment(config).run()
        assert len(in_export) == 1, in_export  # the run exported once
        seen.write_text(json.dumps({"lstm_calls": len(branch.layers()), "unmasked": branch.unmasked(),
                                    "export_calls": in_export[0]}))

    return config, _finished_run(config, train), json.loads(seen.read_text())


@pytest.fixture(scope="session")
def two_replicas(tmp_path_factory, demo_data):
    """The one-against-two-replica checks (tests/helpers/two_replicas.py).

    Run once in one fresh process (logical devices must be set before TensorFlow starts): `{check: "ok" or its
    failure}`.
    """
    import subprocess
    import sys

    outcome = _common_folder(tmp_path_factory) / "two-replicas.json"

    def check():
        script = os.path.join(os.path.dirname(__file__), "helpers", "two_replicas.py")
        done = subprocess.run([sys.executable, script, demo_data], capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        outcome.write_text(done.stdout.strip().splitlines()[-1])

    return _built_once(outcome, check)


@pytest.fixture(scope="session")
def distributed_search(tmp_path_factory, demo_data):
    """The session's small distributed search (tests/helpers/search.py), one of whose workers was killed mid-trial.

    `{"tuning": its tuning folder, "code": the command's exit status, "out": stdout, "err": stderr}`. Tests that
    resume it do so in a copy.
    """
    from helpers.search import search_with_a_killed_worker

    folder = _common_folder(tmp_path_factory) / "distributed-search"
    outcome = folder / "outcome.json"

    def search():
        folder.mkdir(exist_ok=True)
        outcome.write_text(json.dumps(search_with_a_killed_worker(folder, demo_data)))

    return _built_once(str(outcome), search, lock=str(folder))
