"""A small distributed search started as a user starts one: `tune --workers 2`, one of whose workers is killed.

The session runs it once (`conftest.distributed_search`); tests/test_scaling.py reads how its processes ended,
tests/test_tune.py what its trials recorded and that it resumes.
"""

import glob
import json
import os
import pathlib
import shlex
import signal
import subprocess
import sys
import tempfile

from emokeras.config import MultiViewConfig
from emokeras.settings import command_line

from helpers.commands import read_until, user_environment
from helpers.runs import FIRST_SECOND, small_config


def search_config(folder, demo_data):
    """The search's run settings: a joint search of B-ACO-1 with B-LEX at 8 units, two epochs a trial.

    Each utterance's first second (`FIRST_SECOND`): the search's bookkeeping is under test, not what it learns. Two
    epochs, because Keras prints "Epoch 1/2" as a trial's first epoch begins (for one epoch it prints no such
    line), and the worker is killed then.
    """
    return small_config(pathlib.Path(folder), demo_data, epochs=2, data_config=FIRST_SECOND,
                        multiview=MultiViewConfig(mode="joint", view="B-LEX"))


def search_with_a_killed_worker(folder, demo_data) -> dict:
    """`tune --workers 2 --max_trials 2` in `folder`/tuning; worker0 is killed (SIGKILL) in its first epoch.

    Started with TF_CPP_MIN_LOG_LEVEL=3 set, as a user may have set it.

    Returns `{"tuning": the tuning folder, "code": the exit status, "out": stdout, "err": stderr}`.
    """
    tuning = os.path.join(folder, "tuning")
    flags = shlex.split(command_line(search_config(folder, demo_data), "emokeras.tune"))
    # Standard error goes to a file: a pipe left unread while stdout is read would fill and stop the search.
    with tempfile.TemporaryFile("w+") as errors:
        supervisor = subprocess.Popen([sys.executable, "-m", *flags, "--max_trials", "2", "--workers", "2",
                                       "--tuning", tuning], stdout=subprocess.PIPE, stderr=errors, text=True,
                                      env=user_environment(TF_CPP_MIN_LOG_LEVEL="3"))
        read = read_until(supervisor, "[worker0] Epoch 1/", errors)
        # Among the supervisor's own processes: another search on this machine has a worker0 too.
        victim = subprocess.run(["pgrep", "-P", str(supervisor.pid), "-f", "tuner_id worker0 --oracle_address"],
                                capture_output=True, text=True)
        pids = [int(pid) for pid in victim.stdout.split()]
        assert pids, "no worker0 process"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        out, _ = supervisor.communicate(timeout=600)
        errors.seek(0)
        return {"tuning": tuning, "code": supervisor.returncode, "out": read + out, "err": errors.read()}


def recorded_trials(tuning) -> list[dict]:
    """The `trial.json` of every trial in the tuning folder `tuning`, in the order of their folders."""
    found = []
    for path in sorted(glob.glob(os.path.join(tuning, "*", "trial_*", "trial.json"))):
        with open(path, encoding="utf-8") as handle:
            found.append(json.load(handle))
    return found
