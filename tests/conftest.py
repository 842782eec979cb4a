"""Shared fixtures: a prepared demo corpus and the session's trained runs. Helpers are in `tests/helpers/`."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest

from emokeras.config import PrepareConfig
from emokeras.data.preparation import prepare_corpus

# Fixtures that train, export or start processes: a test using one is `large` (`pytest -m "not large"` leaves it).
LARGE_FIXTURES = {"b_aco_1_run", "h_mm_4_run", "two_replicas", "msp_data", "crema_data", "nan_export"}


def pytest_collection_modifyitems(items):
    for item in items:
        if LARGE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.large)


@pytest.fixture(scope="session")
def demo_config(tmp_path_factory):
    """The demo corpus at half its default size (400 utterances, 40 per held-out speaker), prepared once.

    The tests' expectations are written for this size, and it prepares in half the time.
    """
    root = tmp_path_factory.mktemp("demo")
    return PrepareConfig(root=str(root / "corpus"), out=str(root / "tfrecords"),
                         encoder_dir=str(root / "encoders"), demo_utterances_per_speaker=40)


@pytest.fixture(scope="session")
def demo_data(demo_config):
    """The prepared folder (tfrecords/demo/char-ngram-256) of `demo_config`."""
    return prepare_corpus(demo_config)


@pytest.fixture(scope="session")
def shared_runs(tmp_path_factory):
    """Where the session's shared runs live. Tests read them; a test that alters a run makes its own."""
    return tmp_path_factory.mktemp("shared")


@pytest.fixture(scope="session")
def b_aco_1_run(shared_runs, demo_data):
    """A finished small B-ACO-1 run on fold 3 (one epoch), exported with its model.onnx: `(config, results)`."""
    from emokeras.training.experiment import Experiment

    from helpers.runs import small_config

    config = small_config(shared_runs, demo_data, epochs=1, onnx=True)
    return config, Experiment(config).run()


@pytest.fixture(scope="session")
def h_mm_4_run(shared_runs, demo_data):
    """A finished small H-MM-4 run on fold 3 (two epochs).

    Exported, trained on the path a GPU takes (tests/helpers/cudnn.py): `(config, results, cuDNN branch)`.
    """
    from emokeras.training.experiment import Experiment

    from helpers.cudnn import cudnn_branch
    from helpers.runs import small_config

    config = small_config(shared_runs, demo_data, model="H-MM-4", epochs=2)
    with cudnn_branch() as branch:
        results = Experiment(config).run()
    return config, results, branch


@pytest.fixture(scope="session")
def two_replicas(demo_data):
    """The one-against-two-replica checks (tests/helpers/two_replicas.py).

    Run once in one fresh process (logical devices must be set before TensorFlow starts): `{check: "ok" or its
    failure}`.
    """
    import json
    import subprocess
    import sys

    script = os.path.join(os.path.dirname(__file__), "helpers", "two_replicas.py")
    done = subprocess.run([sys.executable, script, demo_data], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
