"""Is one system's UA really above another's? Paired tests of runs that crossval wrote (`python -m emokeras.compare`).

Each system is what `crossval` wrote for one experiment: a folder of `fold-<k>/` runs, or of `seed-<s>/fold-<k>/`
runs (`crossval --seeds`). Every run must hold `predictions.csv` (a run trained before runs kept it gets it on its
next `train`/`crossval`, by evaluation alone). The systems must cover the same folds and test the same utterances
with the same labels (each run's `split_hash`), or the comparison is refused, naming the difference.

For each system B against the first, A (with more systems, each against A, Holm-corrected):

- ΔUA: the mean over folds of (UA_B − UA_A) on the test split, each system's UA averaged over its seeds first;
- utterance level (these speakers): a 95 % interval from a paired bootstrap that resamples the test utterances
  within each fold × class cell, the same utterances for both systems (percentile; 10,000 resamples by default),
  and a two-sided p-value from a paired permutation test that swaps A's and B's answers on each utterance, all
  seeds together (`scipy.stats.permutation_test`, `permutation_type="samples"`);
- speaker level (over folds, each fold's test speakers): the exact Wilcoxon signed-rank p over the per-fold ΔUA
  (`scipy.stats.wilcoxon`), a paired-t 95 % interval, and the folds in which B beats A;
- seeds: each system's per-seed fold-mean UA and their sd; with fewer than three seeds, a line saying that a
  claim about the method needs more; and each system's own test UA (the mean over folds, seeds averaged first)
  with a t 95 % interval over folds.

Because seeds are averaged before anything else, a system's UA on a fold is `Σ_c Σ_{u∈c} x_u / (C·n_c)`, where
`x_u` is the share of its seeds that answered utterance `u` correctly: linear in `x`, which is what lets the
permutation test swap a whole utterance (every seed of both systems) at once. numpy and scipy only: no TensorFlow.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import math
import os
import re

import numpy as np
from scipy import stats

from emokeras.training.predictions import PREDICTIONS, DamagedPredictions, class_columns, read

RESULTS = "results.json"
CONFIDENCE = 0.95
RESAMPLES = 10_000
FEWEST_SEEDS = 3  # below this, seed-to-seed spread is not estimated well enough to speak of a method
TIE = 1e-9  # per-fold ΔUAs closer to 0 than this are float rounding, not a difference


class ComparisonError(ValueError):
    """Runs that cannot be compared; the message names the folder and the problem."""


@dataclasses.dataclass
class System:
    """One experiment's test answers.

    Attributes:
      folder: where its runs are.
      classes: class names, in label order.
      folds: fold numbers, sorted.
      seeds: seed numbers, sorted (every fold has each).
      utterances: per fold, the test utterance ids (sorted).
      labels: per fold, class ids `[utterances]`.
      correct: per fold, `[seeds, utterances]` bool: each seed's answer was right.
      hashes: per fold, the test split's hash.
    """

    folder: str
    classes: list
    folds: list
    seeds: list
    utterances: dict
    labels: dict
    correct: dict
    hashes: dict

    @property
    def name(self) -> str:
        """The system's name: its folder's."""
        return os.path.basename(os.path.normpath(self.folder))

    def fold_ua(self) -> np.ndarray:
        """`[seeds, folds]` UA."""
        return np.array([[_ua(self.correct[fold][index], self.labels[fold]) for fold in self.folds]
                         for index in range(len(self.seeds))])


def _ua(correct: np.ndarray, labels: np.ndarray) -> float:
    present = np.unique(labels)
    return float(np.mean([correct[labels == c].mean() for c in present]))


_RUN = re.compile(r"^(?:seed-(\d+)/)?fold-(\d+)$")


def load_system(folder: str, folds=None, seeds=None) -> System:
    """Reads every finished run under `folder` (`fold-<k>/` or `seed-<s>/fold-<k>/`) of `folds` and `seeds`.

    None keeps every fold, or every seed.

    Raises:
      ComparisonError: no finished run, a run without or with a damaged predictions.csv, classes that differ
        between runs, or a fold lacking a seed the others have.
    """
    runs = _finished_runs(folder)
    classes, utterances, labels, correct, hashes, seed_sets = None, {}, {}, {}, {}, {}
    for (fold, seed_text), path in sorted(runs.items(), key=lambda item: (item[0][0], int(item[0][1] or -1))):
        with open(os.path.join(path, RESULTS), encoding="utf-8") as handle:
            results = json.load(handle)
        seed = int(seed_text) if seed_text is not None else int(results.get("seed", 0))
        if (folds is not None and fold not in folds) or (seeds is not None and seed not in seeds):
            continue
        names, test = _test_predictions(path)
        if classes is None:
            classes = names
        elif names != classes:
            raise ComparisonError(f"{path}: classes {names}, where other runs of {folder} have {classes}")
        ids = test["utterance_id"].tolist()
        truth = test["label"].map({name: k for k, name in enumerate(classes)}).to_numpy()
        right = (test["label"] == test["predicted"]).to_numpy()
        recorded = results.get("test", {}).get("split_hash")
        if fold in utterances:
            if ids != utterances[fold] or not np.array_equal(truth, labels[fold]):
                raise ComparisonError(f"{path}: tests other utterances or labels than seed "
                                      f"{seed_sets[fold][0]} of fold {fold}")
        else:
            utterances[fold], labels[fold], hashes[fold] = ids, truth, recorded
        correct.setdefault(fold, []).append(right)
        seed_sets.setdefault(fold, []).append(seed)
    if not utterances:
        raise ComparisonError(f"{folder}: no run of the folds and seeds asked for")
    first = next(iter(seed_sets.values()))
    for fold, found in seed_sets.items():
        if sorted(found) != sorted(first):
            raise ComparisonError(f"{folder}: fold {fold} has seeds {_listed(found)}, fold {next(iter(seed_sets))} "
                                  f"has {_listed(first)}; finish the sweep, or pass --seeds")
    return System(folder, classes, sorted(utterances), sorted(first), utterances, labels,
                  {fold: np.array(values) for fold, values in correct.items()}, hashes)


def _finished_runs(folder: str) -> dict:
    """`{(fold, seed text or None): run folder}` of the finished runs under `folder`, in one layout."""
    if not os.path.isdir(folder):
        raise ComparisonError(f"{folder}: no such folder")
    runs = {}
    for path in sorted(glob.glob(os.path.join(folder, "fold-*")) + glob.glob(os.path.join(folder, "seed-*", "fold-*"))):
        match = _RUN.match(os.path.relpath(path, folder).replace(os.sep, "/"))
        if match and os.path.isfile(os.path.join(path, RESULTS)):
            runs[(int(match.group(2)), match.group(1))] = path
    if not runs:
        raise ComparisonError(f"{folder}: no finished run (fold-<k>/ or seed-<s>/fold-<k>/ with {RESULTS}); is it "
                              "what crossval wrote for one experiment?")
    if len({seed is None for _, seed in runs}) > 1:
        raise ComparisonError(f"{folder}: holds both fold-<k>/ and seed-<s>/fold-<k>/ runs; compare one layout")
    return runs


def _test_predictions(run: str) -> tuple:
    """A run's class names and its test split's predictions, by utterance id."""
    path = os.path.join(run, PREDICTIONS)
    if not os.path.isfile(path):
        raise ComparisonError(f"{run}: no {PREDICTIONS}; run the same train or crossval command again to write "
                              "it (by evaluation alone, without training)")
    try:
        rows = read(path)
    except DamagedPredictions as error:
        raise ComparisonError(str(error)) from None
    test = rows[rows["split"] == "test"].sort_values("utterance_id")
    if test.empty:
        raise ComparisonError(f"{path}: no test utterance")
    return class_columns(rows), test


def _listed(values) -> str:
    return ",".join(str(value) for value in sorted(values))


def check_comparable(systems: list[System]) -> None:
    """Raises ComparisonError unless every system has the first's classes, folds and test utterances."""
    first = systems[0]
    for other in systems[1:]:
        if other.classes != first.classes:
            raise ComparisonError(f"{other.folder} has classes {other.classes}, {first.folder} has {first.classes}: "
                                  "runs of other corpora or classes cannot be compared")
        if other.folds != first.folds:
            lacking = [(a, b) for a, b in ((first, other), (other, first)) if set(a.folds) - set(b.folds)]
            a, b = lacking[0]
            raise ComparisonError(f"{b.folder} lacks fold(s) {_listed(set(a.folds) - set(b.folds))} that "
                                  f"{a.folder} has (folds {_listed(a.folds)}); compare the folds both have with "
                                  "--folds")
        for fold in first.folds:
            if other.utterances[fold] != first.utterances[fold] or not np.array_equal(other.labels[fold],
                                                                                       first.labels[fold]):
                shared = len(set(other.utterances[fold]) & set(first.utterances[fold]))
                raise ComparisonError(f"{other.folder} and {first.folder} test different utterances or labels on "
                                      f"fold {fold} ({len(other.utterances[fold])} and {len(first.utterances[fold])}"
                                      f" utterances, {shared} in common; split hashes {other.hashes[fold]} and "
                                      f"{first.hashes[fold]})")


def _weights(system: System) -> np.ndarray:
    """Per test utterance (folds concatenated), its weight in the fold-mean UA: 1 / (folds · classes · n_class)."""
    parts = []
    for fold in system.folds:
        labels = system.labels[fold]
        present, counts = np.unique(labels, return_counts=True)
        per_class = dict(zip(present, counts))
        parts.append(np.array([1.0 / (len(system.folds) * len(present) * per_class[c]) for c in labels]))
    return np.concatenate(parts)


def _seed_share(system: System) -> np.ndarray:
    """Per test utterance (folds concatenated), the share of the system's seeds that answered it correctly."""
    return np.concatenate([system.correct[fold].mean(axis=0) for fold in system.folds])


def bootstrap_interval(a: System, b: System, resamples: int, rng: np.random.Generator) -> tuple[float, float]:
    """Percentile interval of ΔUA over resamples of the test utterances within each fold × class cell."""
    deltas = np.zeros(resamples)
    for fold in a.folds:
        labels = a.labels[fold]
        difference = b.correct[fold].mean(axis=0) - a.correct[fold].mean(axis=0)  # per utterance, seeds averaged
        present = np.unique(labels)
        for c in present:
            cell = difference[labels == c]
            # Each resample draws the cell's size from the cell, with replacement: the same draws for both systems
            # (the difference of their answers is what is drawn).
            drawn = rng.integers(0, len(cell), size=(resamples, len(cell)))
            deltas += cell[drawn].sum(axis=1) / (len(cell) * len(present) * len(a.folds))
    low, high = np.percentile(deltas, [100 * (1 - CONFIDENCE) / 2, 100 * (1 + CONFIDENCE) / 2])
    return float(low), float(high)


def permutation_p(a: System, b: System, resamples: int, rng: np.random.Generator) -> float:
    """Two-sided p of ΔUA under swapping A's and B's answers on each utterance (all seeds together)."""
    differences = _seed_share(b) - _seed_share(a)
    # Utterances both systems answer alike add 0 to ΔUA under every swap: the test needs only the others.
    differing = differences != 0
    if differing.sum() < 2:
        return 1.0  # ΔUA or its negation, each with probability 1/2 (or 0 under every swap): as extreme as seen
    weights, differences = _weights(a)[differing], differences[differing]

    def statistic(difference, axis):
        return np.sum(weights * difference, axis=axis)

    # One paired sample of B − A per utterance: scipy's "samples" permutation of a single sample flips the sign of
    # each observation independently, which is swapping A's and B's answers on that utterance.
    result = stats.permutation_test((differences,), statistic, permutation_type="samples", vectorized=True,
                                    n_resamples=resamples, alternative="two-sided", batch=1000, rng=rng)
    return float(result.pvalue)


def fold_statistics(a: System, b: System) -> dict:
    """Speaker level: per-fold ΔUA (seeds averaged), exact Wilcoxon p, paired-t interval, wins and ties."""
    deltas = b.fold_ua().mean(axis=0) - a.fold_ua().mean(axis=0)
    # Equal seed means can differ in the last bit (their seeds' UAs summed in another order); such a fold is a tie,
    # not a win and not a Wilcoxon rank. Real differences are counts over test utterances, far above 1e-9.
    deltas[np.abs(deltas) < TIE] = 0.0
    n = len(deltas)
    low, high = t_interval(deltas)
    if np.all(deltas == 0):
        p = 1.0
    elif n > 0:
        p = float(stats.wilcoxon(deltas, method="exact" if not np.any(deltas == 0) else "auto").pvalue)
    return {"p_value": p, "ci_low": low, "ci_high": high, "wins": int(np.sum(deltas > 0)),
            "ties": int(np.sum(deltas == 0)), "n": n,
            "delta_ua": [float(value) for value in deltas], "folds": list(a.folds)}


def t_interval(values: np.ndarray) -> tuple[float, float]:
    """The t interval of `values`' mean: mean ± t(0.975, n − 1) · sd / √n (NaN for fewer than two values)."""
    n = len(values)
    if n < 2:
        return math.nan, math.nan
    half = stats.t.ppf((1 + CONFIDENCE) / 2, n - 1) * np.std(values, ddof=1) / math.sqrt(n)
    return float(np.mean(values) - half), float(np.mean(values) + half)


def seed_statistics(system: System) -> dict:
    """The system's UA: each seed's fold-mean UA and their sample sd; the mean over folds and its t interval.

    The mean and the interval are over the folds' UA, each averaged over the seeds first (as ΔUA is).
    """
    ua = system.fold_ua()
    per_seed, per_fold = ua.mean(axis=1), ua.mean(axis=0)
    low, high = t_interval(per_fold)
    return {"seeds": list(system.seeds), "ua": [float(value) for value in per_seed],
            "sd": float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else math.nan,
            "mean": float(np.mean(per_fold)), "ci_low": low, "ci_high": high, "folds": len(per_fold)}


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment of `p_values` (family-wise error over the comparisons)."""
    order = np.argsort(p_values)
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def compare(folders, resamples: int = RESAMPLES, seed: int = 0, folds=None, seeds=None) -> list[dict]:
    """One comparison per system after the first, each against the first (see the module docstring)."""
    if len(folders) < 2:
        raise ComparisonError("compare needs at least two experiment folders: a baseline, then the systems")
    systems = [load_system(folder, folds, seeds) for folder in folders]
    check_comparable(systems)
    baseline = systems[0]
    comparisons = []
    for index, system in enumerate(systems[1:]):
        # One stream per comparison, from --seed: the same inputs give the same numbers, in any order.
        rng_bootstrap, rng_permutation = (np.random.default_rng([seed, index, part]) for part in (0, 1))
        low, high = bootstrap_interval(baseline, system, resamples, rng_bootstrap)
        folds = fold_statistics(baseline, system)
        comparisons.append({
            "baseline": baseline.folder, "system": system.folder, "delta_ua": float(np.mean(folds["delta_ua"])),
            "ci_low": low, "ci_high": high,
            "p_value": permutation_p(baseline, system, resamples, rng_permutation),
            "folds": folds,
            "seeds": {baseline.name: seed_statistics(baseline), system.name: seed_statistics(system)},
            "utterances": int(sum(len(baseline.utterances[fold]) for fold in baseline.folds)),
            "methods": {
                "delta_ua": "mean over folds of (UA_B - UA_A) on the test split, each system's UA averaged over "
                            "its seeds first",
                "ci": f"paired bootstrap, utterances resampled within each fold x class cell, same draws for both "
                      f"systems, percentile {CONFIDENCE:.0%} interval, {resamples} resamples",
                "p_value": f"paired permutation test, A's and B's answers swapped per utterance (all seeds "
                           f"together), two-sided, scipy.stats.permutation_test, {resamples} resamples",
                "folds": "exact Wilcoxon signed-rank over per-fold delta UA (scipy.stats.wilcoxon); paired-t "
                         f"{CONFIDENCE:.0%} interval",
                "systems": f"each system's test UA: mean over folds, seeds averaged first; t {CONFIDENCE:.0%} "
                           "interval over folds",
                "seed": seed,
            },
        })
    if len(comparisons) > 1:
        for level in ([c for c in comparisons], [c["folds"] for c in comparisons]):  # utterance, speaker level
            raw = [tested["p_value"] for tested in level]
            for tested, adjusted, value in zip(level, holm(raw), raw):
                tested["p_value_uncorrected"] = value
                tested["p_value"] = adjusted
            for comparison in comparisons:
                comparison["methods"]["correction"] = f"Holm over {len(comparisons)} comparisons with the baseline"
    return comparisons


def _points(value: float) -> str:
    return f"{100 * value:+.2f}"


def _ties(folds: dict) -> str:
    return f" ({folds['ties']} tied)" if folds["ties"] else ""


def _system_lines(name: str, seeds: dict) -> list[str]:
    values = ", ".join(f"{seed}: {value:.4f}" for seed, value in zip(seeds["seeds"], seeds["ua"]))
    spread = "" if math.isnan(seeds["sd"]) else f", sd {seeds['sd']:.4f}"
    lines = [f"{name}: test UA {seeds['mean']:.4f}, {100 * CONFIDENCE:.0f} % t-interval over {seeds['folds']} folds "
             f"[{seeds['ci_low']:.4f}, {seeds['ci_high']:.4f}]",
             f"  seeds of {name}: fold-mean UA {values}{spread}"]
    if len(seeds["seeds"]) < FEWEST_SEEDS:
        lines.append(f"    {len(seeds['seeds'])} seed(s): enough to describe these runs, not the method; a claim "
                     f"about the method needs at least {FEWEST_SEEDS}")
    return lines


def format_table(comparisons: list[dict]) -> str:
    """The comparisons as text, UA differences in points (hundredths).

    Each system's own figures come once, the baseline's first; then each system against the baseline.
    """
    lines = []
    systems = {}  # name -> its figures, in the order of the arguments
    for comparison in comparisons:
        systems.update(comparison["seeds"])
    for name, seeds in systems.items():
        lines += _system_lines(name, seeds)
    lines.append("")
    for comparison in comparisons:
        a, b = (os.path.basename(os.path.normpath(comparison[key])) for key in ("baseline", "system"))
        folds = comparison["folds"]
        corrected = " (Holm-corrected)" if "p_value_uncorrected" in comparison else ""
        lines += [
            f"{b} against {a}: ΔUA {_points(comparison['delta_ua'])} points "
            f"({comparison['utterances']} test utterances over {folds['n']} folds)",
            f"  utterance level: 95 % CI [{_points(comparison['ci_low'])}, {_points(comparison['ci_high'])}], "
            f"permutation p = {comparison['p_value']:.4f}{corrected}",
            f"  speaker level: {b} better in {folds['wins']} of {folds['n']} folds{_ties(folds)}; Wilcoxon p = "
            f"{folds['p_value']:.4f}{corrected}; paired-t 95 % CI [{_points(folds['ci_low'])}, "
            f"{_points(folds['ci_high'])}]",
            "  per fold ΔUA: " + ", ".join(f"{fold}: {_points(value)}"
                                           for fold, value in zip(folds["folds"], folds["delta_ua"])),
            "",
        ]
    methods = comparisons[0]["methods"]
    lines.append("methods: " + "; ".join(f"{key}: {value}" for key, value in methods.items()))
    return "\n".join(lines) + "\n"


def format_json(comparisons: list[dict]) -> str:
    """One object for two systems; a list of objects, one per system against the baseline, for more."""
    return json.dumps(comparisons[0] if len(comparisons) == 1 else comparisons, indent=2) + "\n"
