"""emokeras.tune: two trials of a small joint search record their objective.

A finished search resumes without new trials, and the best trial comes with the command that retrains it.
"""

import dataclasses
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys

import pytest

from emokeras.config import MultiViewConfig, TuneConfig
from emokeras.settings import command_line
from emokeras.training import tuning
from emokeras.training.experiment import RunMismatch

from helpers.runs import small_config
from helpers.search import recorded_trials, search_config


def test_searched_settings_follow_the_mode():
    assert tuning.searched("joint") == ("beta_a", "beta_m", "margin", "negatives")
    assert tuning.searched("frozen") == ("beta_a", "margin", "negatives")
    assert tuning.searched("teacher") == ("margin", "negatives")


def test_command_line_lists_the_flags_off_their_defaults(tmp_path, demo_data):
    config = small_config(tmp_path, demo_data, multiview=MultiViewConfig(mode="joint", view="B-LEX", beta_a=1.2))
    command = command_line(config)
    assert command.startswith("python -m emokeras.train --fold 3 --epochs 2 --learning_rate 0.003")  # no --model
    for flag in ("--hidden_units 8", "--dropout 0.1", "--multiview joint", "--view B-LEX", "--beta_a 1.2"):
        assert flag in command
    assert "--beta_m" not in command and "--batch_size" not in command  # at their defaults
    assert "--model" not in command and "--student" not in command


def test_two_trials_record_the_objective_and_a_finished_search_resumes(distributed_search, demo_data, tmp_path,
                                                                       caplog):
    """The session's distributed search (tests/helpers/search.py), resumed in a copy, in process and by the command."""
    caplog.set_level(logging.INFO, logger="emokeras")
    config = search_config(os.path.dirname(distributed_search["tuning"]), demo_data)
    shutil.copytree(distributed_search["tuning"], tmp_path / "tuning")
    space = TuneConfig(tuner="random", max_trials=2, directory=str(tmp_path / "tuning"))
    project = tmp_path / "tuning" / "B-ACO-1.joint.B-LEX.fold-3"
    recorded = recorded_trials(space.directory)
    assert len(recorded) == 2
    for trial in recorded:
        assert trial["status"] == "COMPLETED"
        assert 0.0 <= trial["score"] <= 1.0
        assert set(trial["hyperparameters"]["values"]) == {"beta_a", "beta_m", "margin", "negatives"}
        # The objective is the best epoch's validation UA, as Keras logged it (Keras Tuner keeps that epoch alone).
        [observation] = trial["metrics"]["metrics"]["val_unweighted_accuracy"]["observations"]
        assert trial["score"] == pytest.approx(observation["value"][0]) and observation["step"] in (0, 1)

    # Started again with the same budget: the two finished trials are read back, none is run (none is written).
    def trial_files_written():
        return {path: path.stat().st_mtime_ns for path in project.glob("trial_*/*")}

    written = trial_files_written()
    values, score, command = tuning.search_hyperparameters(config, space)
    assert trial_files_written() == written
    best = max(recorded, key=lambda trial: trial["score"])
    assert score == pytest.approx(best["score"]) and values == best["hyperparameters"]["values"]
    out = caplog.text
    assert f"validation UA {score:.4f}" in out and f"retrain it: {command}" in out
    for name, value in values.items():
        assert f"--{name} {value}" in command or getattr(MultiViewConfig(), name) == value

    # The command line resumes the same search and prints the same best trial.
    result = subprocess.run(
        [sys.executable, "-m", *shlex.split(command_line(config, "emokeras.tune")), "--max_trials", "2",
         "--tuning", space.directory], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "best of 2 trials" in result.stdout and f"validation UA {score:.4f}" in result.stdout
    assert trial_files_written() == written


def test_a_search_around_other_settings_is_refused(tmp_path, demo_data):
    """The tuning folder records the configuration its trials were trained around."""
    config = small_config(tmp_path, demo_data, epochs=1, multiview=MultiViewConfig(mode="joint", view="B-LEX"))
    space = TuneConfig(max_trials=1, directory=str(tmp_path / "tuning"))
    project = tmp_path / "tuning" / "B-ACO-1.joint.B-LEX.fold-3"
    project.mkdir(parents=True)
    (project / "config.json").write_text(json.dumps(dataclasses.asdict(dataclasses.replace(config, epochs=5))))
    with pytest.raises(RunMismatch, match=r"B-ACO-1.joint.B-LEX.fold-3 holds a search around another "
                                          r"configuration \(--epochs: recorded 5, asked for 1\)"):
        tuning.search_hyperparameters(config, space)
