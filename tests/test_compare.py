"""emokeras.compare on run folders written by hand.

Known differences give hand-computed ΔUA, a system against itself gives nothing, swapping the systems negates,
mismatched or damaged runs are refused with one line.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from emokeras.training import paired_tests, predictions

CLASSES = ["anger", "happiness", "neutral", "sadness"]


def truth(fold, size=40):
    """A fold's test utterances: `size` ids, classes in turn."""
    return [f"f{fold}_u{k:03d}" for k in range(size)], np.arange(size) % 4


def write_run(folder, fold, seed, answers, classes=CLASSES, ids=None, labels=None, layout="seeds"):
    """A finished run whose test answers are `answers` (class ids), with results.json and predictions.csv."""
    default_ids, default_labels = truth(fold, len(answers))
    ids = default_ids if ids is None else ids
    labels = default_labels if labels is None else labels
    run = os.path.join(folder, f"seed-{seed}", f"fold-{fold}") if layout == "seeds" else \
        os.path.join(folder, f"fold-{fold}")
    os.makedirs(run, exist_ok=True)
    probabilities = np.full((len(answers), len(classes)), 0.1)
    probabilities[np.arange(len(answers)), answers] = 0.7
    rows = predictions.table("test", fold, seed, classes, ids, ["spk"] * len(ids), labels, probabilities)
    with open(os.path.join(run, "predictions.csv"), "w") as handle:
        handle.write(predictions.to_csv(rows))
    test = {**predictions.scores(rows, classes), "split_hash": predictions.split_hash(rows["utterance_id"],
                                                                                       rows["label"])}
    with open(os.path.join(run, "results.json"), "w") as handle:
        json.dump({"fold": fold, "seed": seed, "test": test}, handle)
    return run


def system(folder, folds=(0, 1, 2), seeds=(0, 1, 2), flips=None, size=40):
    """Right on every utterance but those in `flips`: {(fold, seed): [utterance index, ...]} answered wrongly."""
    flips = flips or {}
    for fold in folds:
        _, labels = truth(fold, size)
        for seed in seeds:
            answers = labels.copy()
            for index in flips.get((fold, seed), []):
                answers[index] = (answers[index] + 1) % 4
            write_run(folder, fold, seed, answers)
    return str(folder)


def test_a_system_against_itself_differs_by_nothing(tmp_path):
    a = system(tmp_path / "A", flips={(0, 0): [1, 2], (1, 1): [5]})
    [result] = paired_tests.compare([a, a], resamples=500)
    assert result["delta_ua"] == 0 and (result["ci_low"], result["ci_high"]) == (0, 0)
    assert result["p_value"] == 1
    assert result["folds"]["p_value"] == 1 and result["folds"]["wins"] == 0 and result["folds"]["n"] == 3
    assert (result["folds"]["ci_low"], result["folds"]["ci_high"]) == (0, 0)


def test_flipping_known_answers_gives_the_hand_computed_difference(tmp_path):
    # 40 test utterances per fold, 10 per class. B is right everywhere; A gets utterances 0 and 4 (both anger)
    # wrong with seed 0 on fold 0, and utterance 1 (happiness) wrong with every seed on fold 2.
    a = system(tmp_path / "A", flips={(0, 0): [0, 4], (2, 0): [1], (2, 1): [1], (2, 2): [1]})
    b = system(tmp_path / "B")
    [result] = paired_tests.compare([a, b], resamples=2000)
    # Fold 0: A's seed 0 has anger recall 8/10, UA (0.8 + 3) / 4 = 0.95; seeds averaged: (0.95 + 1 + 1) / 3.
    # Fold 2: happiness recall 9/10 for every seed: UA 0.975. ΔUA = mean over folds of B - A.
    fold_deltas = [1 - (0.95 + 2) / 3, 0.0, 1 - 0.975]
    assert result["delta_ua"] == pytest.approx(np.mean(fold_deltas))
    assert result["folds"]["delta_ua"] == pytest.approx(fold_deltas)
    assert result["folds"]["wins"] == 2 and result["folds"]["n"] == 3
    # The bootstrap interval holds the difference and is never below 0: B is never wrong where A is right.
    assert 0 <= result["ci_low"] <= result["delta_ua"] <= result["ci_high"]
    # Three utterances differ: the permutation test cannot be sure with so few.
    assert 0.05 < result["p_value"] <= 1


def test_each_system_has_its_mean_and_an_interval_over_folds(tmp_path):
    # A's seed-averaged fold UAs, by hand: fold 0 (0.95 + 1 + 1) / 3, fold 1 1, fold 2 0.975 (as above).
    a = system(tmp_path / "A", flips={(0, 0): [0, 4], (2, 0): [1], (2, 1): [1], (2, 2): [1]})
    [result] = paired_tests.compare([a, system(tmp_path / "B")], resamples=200)
    folds = np.array([(0.95 + 2) / 3, 1.0, 0.975])
    half = 4.302652729911275 * folds.std(ddof=1) / np.sqrt(3)  # t(0.975, 2), from a table
    assert result["seeds"]["A"]["mean"] == pytest.approx(folds.mean())
    assert (result["seeds"]["A"]["ci_low"], result["seeds"]["A"]["ci_high"]) == pytest.approx(
        (folds.mean() - half, folds.mean() + half))
    assert (result["seeds"]["B"]["mean"], result["seeds"]["B"]["ci_low"], result["seeds"]["B"]["ci_high"]) == (1, 1, 1)
    text = paired_tests.format_table([result])
    assert f"A: test UA {folds.mean():.4f}, 95 % t-interval over 3 folds [{folds.mean() - half:.4f}, " \
           f"{folds.mean() + half:.4f}]" in text


class FoldUA:
    """A system reduced to its test UA per seed (rows) and fold (columns)."""

    def __init__(self, ua):
        self.ua, self.folds = np.array(ua), tuple(range(len(ua[0])))

    def fold_ua(self):
        return self.ua


def test_folds_on_which_the_seed_means_are_equal_are_ties():
    # Fold 0: seeds (0.5, 0.5125, 0.625) and (0.5, 0.5375, 0.6) have the same mean, 0.5458..., but their float means
    # differ by 1.1e-16. Fold 1: B better by 0.1. A tie is neither a win nor a rank: Wilcoxon drops it, and one fold
    # left gives p 1.
    a = FoldUA([[0.5, 0.6], [0.5125, 0.6], [0.625, 0.6]])
    b = FoldUA([[0.5, 0.7], [0.5375, 0.7], [0.6, 0.7]])
    assert np.mean([0.5, 0.5375, 0.6]) != np.mean([0.5, 0.5125, 0.625])
    folds = paired_tests.fold_statistics(a, b)
    assert folds["delta_ua"] == pytest.approx([0, 0.1]) and folds["delta_ua"][0] == 0
    assert folds["wins"] == 1 and folds["ties"] == 1 and folds["p_value"] == 1
    text = paired_tests.format_table([{"baseline": "A", "system": "B", "delta_ua": 0.05, "ci_low": 0, "ci_high": 0.1,
                                       "p_value": 0.5, "utterances": 80, "folds": folds, "seeds": {}, "methods": {}}])
    assert "B better in 1 of 2 folds (1 tied);" in text


def test_swapping_the_systems_negates_the_difference_and_the_interval(tmp_path):
    rng = np.random.default_rng(3)
    flips_a = {(f, s): list(rng.choice(40, 6, replace=False)) for f in range(3) for s in range(3)}
    flips_b = {(f, s): list(rng.choice(40, 12, replace=False)) for f in range(3) for s in range(3)}
    a, b = system(tmp_path / "A", flips=flips_a), system(tmp_path / "B", flips=flips_b)
    [forward] = paired_tests.compare([a, b], resamples=2000, seed=7)
    [backward] = paired_tests.compare([b, a], resamples=2000, seed=7)
    assert backward["delta_ua"] == pytest.approx(-forward["delta_ua"])
    assert (backward["ci_low"], backward["ci_high"]) == pytest.approx((-forward["ci_high"], -forward["ci_low"]))
    assert backward["folds"]["p_value"] == pytest.approx(forward["folds"]["p_value"])
    assert forward["delta_ua"] < 0 and forward["ci_high"] < 0  # B errs twice as often
    assert forward["p_value"] < 0.01
    # The same inputs and --seed give the same numbers.
    assert paired_tests.compare([a, b], resamples=2000, seed=7) == [forward]


def test_more_systems_are_each_compared_with_the_first_holm_corrected(tmp_path):
    a = system(tmp_path / "A", flips={(f, s): list(range(0, 16)) for f in range(3) for s in range(3)})
    b, c = system(tmp_path / "B"), system(tmp_path / "C", flips={(0, 0): [3]})
    results = paired_tests.compare([a, b, c], resamples=1000)
    assert [os.path.basename(r["system"]) for r in results] == ["B", "C"]
    raw = [r["p_value_uncorrected"] for r in results]
    assert [r["p_value"] for r in results] == pytest.approx(paired_tests.holm(raw))
    assert paired_tests.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert "Holm" in results[0]["methods"]["correction"]
    # Each system's own figures are printed once, however many comparisons it is in.
    text = paired_tests.format_table(results)
    for name in "ABC":
        assert text.count(f"{name}: test UA") == 1 and text.count(f"seeds of {name}:") == 1
    assert text.index("C: test UA") < text.index("B against A")


def test_json_output_has_the_contract_keys(tmp_path):
    a = system(tmp_path / "A", seeds=(0,), flips={(0, 0): [1]})
    b = system(tmp_path / "B", seeds=(0,))
    [result] = paired_tests.compare([a, b], resamples=200)
    out = json.loads(paired_tests.format_json([result]))
    assert {"delta_ua", "ci_low", "ci_high", "p_value", "folds", "seeds", "methods"} <= set(out)
    assert {"p_value", "ci_low", "ci_high", "wins", "n"} <= set(out["folds"])
    assert out["delta_ua"] == pytest.approx((1 - 0.975) / 3)  # fractions of 1, not points
    assert out["seeds"]["A"]["seeds"] == [0]
    text = paired_tests.format_table([result])
    assert "ΔUA +0.83 points" in text and "a claim about the method needs at least 3" in text
    assert "10000" not in text and "200 resamples" in text


def test_runs_that_cannot_be_compared_are_refused_naming_the_difference(tmp_path):
    a = system(tmp_path / "A")
    fewer = system(tmp_path / "fewer", folds=(0, 1))
    with pytest.raises(paired_tests.ComparisonError, match=r"fewer lacks fold\(s\) 2 that .*A has \(folds 0,1,2\)"):
        paired_tests.compare([a, fewer])
    other = system(tmp_path / "other")
    ids, labels = truth(1)
    for seed in (0, 1, 2):
        write_run(str(tmp_path / "other"), 1, seed, labels, ids=[*ids[:-1], "someone_else"])
    with pytest.raises(paired_tests.ComparisonError, match="test different utterances or labels on fold 1"):
        paired_tests.compare([a, other])
    six = tmp_path / "six"
    for fold in (0, 1, 2):
        for seed in (0, 1, 2):
            write_run(str(six), fold, seed, np.arange(40) % 4, classes=[*CLASSES, "fear", "disgust"])
    with pytest.raises(paired_tests.ComparisonError, match="has classes .*fear.*: runs of other corpora or classes"):
        paired_tests.compare([a, str(six)])
    (tmp_path / "empty").mkdir()
    with pytest.raises(paired_tests.ComparisonError, match=r"empty: no finished run"):
        paired_tests.compare([a, str(tmp_path / "empty")])
    partial = system(tmp_path / "partial", seeds=(0, 1))
    os.remove(os.path.join(partial, "seed-1", "fold-2", "results.json"))
    with pytest.raises(paired_tests.ComparisonError, match="fold 2 has seeds 0, fold 0 has 0,1"):
        paired_tests.compare([partial, a])
    # --folds and --seeds compare what both have.
    assert paired_tests.compare([a, fewer], folds=(0, 1), resamples=200)[0]["folds"]["n"] == 2
    assert paired_tests.compare([partial, a], seeds=(0,), resamples=200)[0]["delta_ua"] == 0


def test_the_command_names_a_damaged_file_in_one_line_and_exits_1(tmp_path):
    a = system(tmp_path / "A", seeds=(0,))
    b = system(tmp_path / "B", seeds=(0,))
    damaged = os.path.join(b, "seed-0", "fold-1", "predictions.csv")
    with open(damaged) as handle:
        text = handle.read()
    with open(damaged, "w") as handle:
        handle.write(text[: len(text) // 2])  # cut short, mid-row
    done = subprocess.run([sys.executable, "-m", "emokeras.compare", a, b], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "fold-1/predictions.csv" in done.stderr
    ok = subprocess.run([sys.executable, "-m", "emokeras.compare", a, a, "--format", "json", "--resamples", "200"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["delta_ua"] == 0
