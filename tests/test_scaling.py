"""Scale-out: Keras Tuner searches spread over processes, cross-validation runs side by side, parallel prediction.

A search's chief and workers started by `tune --workers` with the flags that start them by hand on several machines
(it starts a worker killed mid-trial again with its id); cross-validation runs side by side on one output folder
(`crossval --jobs`); prediction over several openSMILE processes.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from emokeras.files import FolderInUse, exclusive
from emokeras.serving import recognizer as recognizer_module
from emokeras.serving.recognizer import Recognizer
from emokeras.training.supervisor import Job, Supervisor, free_port, shares, without_flags

from helpers.audio import tone, write_wav
from helpers.commands import TF_LOG_LINE, user_environment
from helpers.search import recorded_trials


def test_flags_are_removed_with_their_values():
    args = ["--fold", "3", "--workers", "2", "--tuner_id=chief", "--noonnx", "--oracle_address", "h:1", "--x"]
    assert without_flags(args, "workers", "tuner_id", "oracle_address") == ["--fold", "3", "--noonnx", "--x"]


def test_a_supervisor_started_in_the_background_still_stops_its_jobs_with_ctrl_c(tmp_path):
    # A shell starts a background command with SIGINT ignored, and its children would inherit that.
    ready = tmp_path / "ready"
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        supervisor = Supervisor()
        job = supervisor.start(Job("sleeper", [sys.executable, "-c", "import pathlib, sys, time; "
                                               "pathlib.Path(sys.argv[1]).touch(); time.sleep(60)", str(ready)]))
    finally:
        signal.signal(signal.SIGINT, previous)
    deadline = time.monotonic() + 30
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    supervisor.stop(grace=20.0)
    assert job.process.returncode == -signal.SIGINT  # Python's end for an unhandled KeyboardInterrupt, not SIGKILL


def test_cores_are_shared_out():
    cores = sorted(os.sched_getaffinity(0))
    given = shares(len(cores))
    assert sorted(core for share in given for core in share["cpus"]) == cores
    assert all(len(share["cpus"]) == 1 for share in given)
    assert len(shares(1)[0]["cpus"]) == len(cores)


def test_one_chief_holds_a_tuning_folder_and_only_its_workers_join(tmp_path, demo_data):
    from emokeras.config import MultiViewConfig, TuneConfig
    from emokeras.training import tuning

    from helpers.runs import small_config

    config = small_config(tmp_path, demo_data, epochs=1, multiview=MultiViewConfig(mode="joint", view="B-LEX"))
    project = tmp_path / "tuning" / "B-ACO-1.joint.B-LEX.fold-3"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom emokeras.files import exclusive\nfrom emokeras.training.tuning import chief_role\n"
        "with exclusive(sys.argv[1], role=chief_role('127.0.0.1:9')):\n    print('held', flush=True)\n"
        "    time.sleep(600)"), str(project)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        alone = TuneConfig(max_trials=1, directory=str(tmp_path / "tuning"))
        with pytest.raises(FolderInUse, match="is in use by the chief of a search at 127.0.0.1:9: process"):
            tuning.search_hyperparameters(config, alone)
        other = TuneConfig(max_trials=1, directory=str(tmp_path / "tuning"), tuner_id="worker0",
                           oracle_address="127.0.0.1:8", oracle_timeout=2)
        with pytest.raises(FolderInUse, match="not by the chief at 127.0.0.1:8"):
            tuning.search_hyperparameters(config, other)
        silent = TuneConfig(max_trials=1, directory=str(tmp_path / "tuning"), tuner_id="worker0",
                            oracle_address="127.0.0.1:9", oracle_timeout=2)
        started = time.monotonic()
        with pytest.raises(ConnectionError, match=r"cannot reach the chief at 127.0.0.1:9 within 2 s"):
            tuning.search_hyperparameters(config, silent)
        assert time.monotonic() - started < 30
    finally:
        holder.kill()
        holder.wait()
        for name in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
            os.environ.pop(name, None)
    absent = TuneConfig(max_trials=1, directory=str(tmp_path / "tuning"), tuner_id="worker0",
                        oracle_address="127.0.0.1:9", oracle_timeout=2)
    with pytest.raises(ConnectionError, match=r"no chief at 127.0.0.1:9 holds .* after 2 s; start the chief"):
        tuning.search_hyperparameters(config, absent)
    for name in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        os.environ.pop(name, None)
    with exclusive(str(project)):  # free again
        pass


def test_the_chief_ends_as_its_last_worker_is_told_the_search_is_over(tmp_path, monkeypatch):
    """Two workers over gRPC, one of them still training when the other is told to stop.

    (Keras Tuner's own chief looks again only every 20 s once one worker has been stopped.)
    """
    import threading

    import keras_tuner
    from keras_tuner.src.distribute import oracle_client

    from emokeras.training import tuning

    address = f"127.0.0.1:{free_port()}"
    oracle = keras_tuner.oracles.RandomSearchOracle(objective=keras_tuner.Objective("score", "max"), max_trials=2,
                                                    seed=0)
    oracle._set_project_dir(str(tmp_path), "search")
    space = keras_tuner.HyperParameters()
    space.Choice("x", [1, 2, 3])
    oracle.update_space(space)
    chief = threading.Thread(target=tuning.serve_trials, args=(oracle, address), daemon=True)
    chief.start()
    host, port = address.split(":")
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", host)
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", port)
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "worker0")
    workers = oracle_client.OracleClient(oracle)
    first, second = workers.create_trial("worker0"), workers.create_trial("worker1")

    def finish(trial):
        workers.update_trial(trial.trial_id, {"score": 1.0})
        trial.status = "COMPLETED"
        workers.end_trial(trial)

    finish(first)
    assert workers.create_trial("worker0").status == "STOPPED"  # worker1 still trains: the chief waits
    time.sleep(1.5)
    assert chief.is_alive()
    finish(second)
    assert workers.create_trial("worker1").status == "STOPPED"
    chief.join(timeout=5)
    assert not chief.is_alive()


@pytest.mark.large
def test_tune_workers_restarts_a_killed_worker_and_completes(distributed_search):
    """A chief and two workers, started as by hand on several machines (`--tuner_id`, `--oracle_address`).

    Each trial is trained once though a worker is killed mid-trial (started again with its id), and every process
    learns the end of the search.
    """
    out, err = distributed_search["out"], distributed_search["err"]
    assert distributed_search["code"] == 0, (out + err)[-4000:]
    assert "worker0 ended with signal 9: started again with its id" in err
    found = recorded_trials(distributed_search["tuning"])
    assert len(found) == 2 and all(trial["status"] == "COMPLETED" for trial in found)
    assert {trial["trial_id"] for trial in found} == {"0", "1"}
    assert "[chief] best of 2 trials" in out and "retrain it: python -m emokeras.train" in out
    for worker in ("worker0", "worker1"):
        assert re.search(rf"\[{worker}\] .*the search at .* is over", out), out[-3000:]
    # The user's TF_CPP_MIN_LOG_LEVEL=3, applied by every process to the lines TensorFlow writes before reading it.
    assert not re.search(TF_LOG_LINE, out + err, re.M), err[-3000:]


@pytest.mark.large
def test_crossval_jobs_trains_runs_in_parallel_processes_and_summarises_them(tmp_path, demo_data):
    """Two seeds of a fold trained at once, each in its `train` process, on one output folder; then the summary.

    (Processes started by hand on several machines, each with its folds, share the output folder in the same way.)
    """
    flags = ["--model", "B-ACO-1", "--epochs", "1", "--hidden_units", "8", "--blstm_layers", "1", "--noonnx",
             "--data", demo_data, "--output", str(tmp_path / "runs"), "--saved_models", str(tmp_path / "saved"),
             "--folds", "3", "--seeds", "0,1", "--jobs", "2"]
    done = subprocess.run([sys.executable, "-m", "emokeras.crossval", *flags], capture_output=True, text=True,
                          timeout=600, env=user_environment())
    assert done.returncode == 0, done.stderr[-3000:]
    assert "fold-3 seed-0: started (core" in done.stdout and "[fold-3 seed-1]" in done.stdout
    # The jobs start as quietly as the command that started them: no TensorFlow C++ line from any of them.
    assert not re.search(r"[IWE]0000 |cuda drivers|InitializeLog", done.stdout + done.stderr), done.stderr[-3000:]
    experiment = tmp_path / "runs" / "B-ACO-1"
    for seed in (0, 1):
        assert json.loads((experiment / f"seed-{seed}" / "fold-3" / "results.json").read_text())["seed"] == seed
        assert os.path.isfile(tmp_path / "saved" / "B-ACO-1" / f"seed-{seed}" / "fold-3" / "saved_model.pb")
    assert done.stdout.count("already trained") == 2  # the summary reports, it does not train
    summary = pd.read_csv(experiment / "summary.csv", dtype=str)
    assert list(summary["fold"]) == ["3", "mean", "fold_sd", "seed_sd"] and summary["seeds"][0] == "2"
    assert "| 3 | 0,1 |" in done.stdout


def test_prediction_with_two_workers_equals_one(b_aco_1_run, tmp_path):
    export = b_aco_1_run[1]["saved_model"]
    paths = [str(tmp_path / f"f{k}.wav") for k in range(5)]
    for k, path in enumerate(paths):
        write_wav(path, tone(2.0 + k, pitch=120 + 30 * k))
    answers = []
    for workers in ("1", "2"):
        done = subprocess.run([sys.executable, "-m", "emokeras.predict", "--model", export, "--format", "csv",
                               "--workers", workers, *paths], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        answers.append(done.stdout)
    assert answers[0] == answers[1]


class _LoggedFrames:
    """A frame source that logs each answer it gives; `_LoggedModel` logs each model call in the same list."""

    def __init__(self, log):
        self.log = log

    def frames(self, requests):
        for request in requests:
            self.log.append(("frames", request))
            yield request, np.zeros((300, 130), np.float32), None

    def close(self):
        pass


class _LoggedModel:
    name = "logged"

    def __init__(self, log):
        self.log = log

    def __call__(self, inputs):
        rows = len(inputs["frames"])
        self.log.append(("model", rows))
        return np.tile([[0.25, 0.75]], (rows, 1)).astype(np.float32)


def test_the_model_answers_early_segments_while_later_ones_are_extracted(tmp_path):
    # With worker processes, openSMILE extracts the next segments while this process runs the model: so the model
    # must be called on the first segments before the last ones are asked for, not once all are in.
    paths = [str(tmp_path / f"f{k}.wav") for k in range(7)]
    for path in paths:
        write_wav(path, tone(1.0))
    log = []
    metadata = {"class_names": ["calm", "angry"], "max_frames": 300, "inputs": ["frames", "num_frames"]}
    recognizer = Recognizer("export", metadata, _LoggedModel(log), batch_size=2)
    recognizer._frames = _LoggedFrames(log)
    answers = recognizer.predict_files(paths)
    assert list(answers.index.get_level_values("file")) == paths
    assert (answers["emotion"] == "angry").all()
    assert sum(count for kind, count in log if kind == "model") == len(paths)
    first_call = log.index(next(entry for entry in log if entry[0] == "model"))
    assert first_call < log.index(("frames", paths[-1]))


def test_beside_several_workers_the_onnx_model_gets_the_cores_they_leave(monkeypatch):
    metadata = {"class_names": ["calm", "angry"], "max_frames": 300, "inputs": ["frames", "num_frames"],
                "onnx": "model.onnx"}
    asked = []
    monkeypatch.setattr(recognizer_module, "read_metadata", lambda export_dir: metadata)
    monkeypatch.setattr(recognizer_module, "open_runtime",
                        lambda export_dir, metadata, runtime, threads: asked.append(threads) or _LoggedModel([]))
    monkeypatch.setattr(recognizer_module, "_cores", lambda: 8)
    for options in ({}, {"workers": 2}, {"workers": 8}, {"workers": 12}, {"workers": 2, "threads": 3}):
        Recognizer.load("export", **options).close()
    assert asked == [None, 6, 1, 1, 3]
    # TensorFlow's threads belong to the process and are set once (later, it refuses): left as they are.
    asked.clear()
    Recognizer.load("export", runtime="savedmodel", workers=2).close()
    metadata.pop("onnx")
    Recognizer.load("export", workers=2).close()
    assert asked == [None, None]
