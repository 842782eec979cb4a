"""emokeras.crossval.

Finished folds are reported not retrained, and the summary averages the folds' results. (The command line, which
trains the runs side by side and then reports them: tests/test_scaling.py.)
"""

import csv
import dataclasses
import json
import logging
import os

import numpy as np
import pytest

from emokeras.config import TrainConfig
from emokeras.training import cross_validation as crossval


def test_parse_seeds():
    from emokeras.cli import parse_integers

    assert parse_integers("0,1,2", "--seeds") == (0, 1, 2)
    with pytest.raises(ValueError, match="--seeds repeats 1"):
        parse_integers("1,1", "--seeds")
    with pytest.raises(ValueError, match="--seeds takes comma-separated integers"):
        parse_integers("one", "--seeds")


def test_parse_folds():
    assert crossval.parse_folds("0,3,7", 10) == (0, 3, 7)
    assert crossval.parse_folds("all", 10) == tuple(range(10))
    assert crossval.parse_folds("all", 1) == (0,)
    with pytest.raises(ValueError, match=r"--folds: 10: this corpus has folds 0-9"):
        crossval.parse_folds("3,10", 10)
    with pytest.raises(ValueError, match=r"--folds: 3: this corpus has fold 0 only"):
        crossval.parse_folds("3", 1)
    with pytest.raises(ValueError, match="--folds repeats 3"):
        crossval.parse_folds("3,3", 10)
    with pytest.raises(ValueError, match="--folds takes comma-separated integers"):
        crossval.parse_folds("three", 10)


def test_summary_rows_mean_and_sample_std():
    def results(fold, values):
        names = iter(values)
        return {"fold": fold, "best_epoch": 1, "train_seconds": 10.0 * (fold + 1),
                **{split: {"unweighted_accuracy": next(names), "weighted_accuracy": next(names)}
                   for split in ("validation", "test")}}

    rows = crossval.summary_rows([results(0, [0.5, 0.6, 0.7, 0.8]), results(1, [0.7, 0.6, 0.5, 0.4]),
                                  results(2, [0.6, 0.9, 0.6, 0.6])])
    mean, std = rows[-2], rows[-1]
    assert (mean["fold"], std["fold"]) == ("mean", "std")
    np.testing.assert_allclose([mean[c] for c in crossval.COLUMNS], [0.6, 0.7, 0.6, 0.6])
    # Sample standard deviations by hand: (0.5, 0.7, 0.6) → 0.1; (0.6, 0.6, 0.9) → sqrt(0.03).
    np.testing.assert_allclose([std[c] for c in crossval.COLUMNS], [0.1, np.sqrt(0.03), 0.1, 0.2])
    # Seconds 10, 20, 30: mean 20, sample std 10.
    assert (mean["train_seconds"], std["train_seconds"]) == pytest.approx((20.0, 10.0))
    table = crossval.markdown_table("B-ACO-1", "Acoustics", rows)
    assert "| B-ACO-1 | Acoustics | 0.6000 ± 0.1000 | 0.7000 ± 0.1732 | 0.6000 ± 0.1000 | 0.6000 ± 0.2000 | 0,1,2 |" \
        in table


def test_modality_names():
    assert crossval.modality(TrainConfig(model="B-LEX")) == "Lexical"
    assert crossval.modality(TrainConfig(model="H-MM-4")) == "Multimodal"
    assert crossval.modality(TrainConfig(model="H-ACO-1")) == "Acoustics"


def test_a_stopped_sweep_resumes_and_the_summary_averages_the_folds(b_aco_1_run, caplog):
    # A sweep stopped after its first fold: the session's B-ACO-1 run of fold 3 is finished.
    config, first = b_aco_1_run
    config = dataclasses.replace(config, onnx=False)  # the new fold's export is not under test (nor the ONNX file)
    first_path = os.path.join(config.run_dir(), "results.json")
    finished_at = os.path.getmtime(first_path)
    caplog.set_level(logging.INFO, logger="emokeras")

    table = crossval.cross_validate(config, folds=(3, 2))
    out = caplog.text
    assert "already trained" in out and out.count("already trained") == 1
    assert os.path.getmtime(first_path) == finished_at
    experiment_dir = os.path.dirname(config.run_dir())
    with open(os.path.join(experiment_dir, "fold-2", "results.json")) as f:
        second = json.load(f)
    assert second["fold"] == 2

    with open(os.path.join(experiment_dir, "summary.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [row["fold"] for row in rows] == ["3", "2", "mean", "std"]
    for column, (split, score) in zip(crossval.COLUMNS, crossval.SCORES):
        a, b = first[split][score], second[split][score]
        assert float(rows[0][column]) == pytest.approx(a)
        assert float(rows[2][column]) == pytest.approx((a + b) / 2)
        assert float(rows[3][column]) == pytest.approx(abs(a - b) / np.sqrt(2))
    with open(os.path.join(experiment_dir, "summary.md")) as f:
        assert f.read() == table
    ua = (first["test"]["unweighted_accuracy"] + second["test"]["unweighted_accuracy"]) / 2
    assert f"{ua:.4f} ± " in table and "| 3,2 |" in table


def test_seed_summary_gives_fold_means_over_seeds_and_both_spreads():
    def results(fold, seed, test_ua):
        return {"fold": fold, "seed": seed, "best_epoch": 1, "train_seconds": 10.0,
                "validation": {"unweighted_accuracy": 0.5, "weighted_accuracy": 0.5},
                "test": {"unweighted_accuracy": test_ua, "weighted_accuracy": 0.5}}

    # Test UA: fold 0 seeds (0.5, 0.7), fold 1 seeds (0.6, 0.8), fold 2 seeds (0.4, 0.6).
    runs = [results(0, 0, 0.5), results(0, 1, 0.7), results(1, 0, 0.6), results(1, 1, 0.8), results(2, 0, 0.4),
            results(2, 1, 0.6)]
    rows = crossval.seed_summary_rows(runs)
    assert [row["fold"] for row in rows] == [0, 1, 2, "mean", "fold_sd", "seed_sd"]
    np.testing.assert_allclose([row["test_ua"] for row in rows[:3]], [0.6, 0.7, 0.5])  # per-fold means over seeds
    assert rows[3]["test_ua"] == pytest.approx(0.6)
    assert rows[4]["test_ua"] == pytest.approx(0.1)  # sd of (0.6, 0.7, 0.5)
    # Per-seed means over folds: seed 0 (0.5+0.6+0.4)/3 = 0.5, seed 1 0.7; their sd is 0.1414.
    assert rows[5]["test_ua"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    table = crossval.seed_markdown_table("B-ACO-1", "Acoustics", rows, (0, 1))
    assert "| B-ACO-1 | Acoustics | 0.5000 ± 0.0000 | 0.5000 ± 0.0000 | 0.6000 ± 0.1000 | 0.5000 ± 0.0000 | 0.1414 " \
           "| 0,1,2 | 0,1 |" in table
