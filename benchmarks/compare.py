"""How long `emokeras.compare` takes at IEMOCAP's size.

Two systems, 10 folds × 3 seeds, 5,531 test utterances in all, 10,000 bootstrap and permutation resamples, on one core.

    python benchmarks/compare.py [--resamples 10000] [--rounds 3]

Writes the run folders of two synthetic systems (B right on 5 % more utterances than A) into a temporary folder,
then times `compare.compare` (reading the runs included) `--rounds` times and prints each time. Pin it to one core
with `taskset -c 0` to measure on one core (numpy's BLAS is told to use one thread here).
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from emokeras.training import paired_tests, predictions  # noqa: E402

CLASSES = ("anger", "happiness", "neutral", "sadness")
UTTERANCES = 5531
FOLDS, SEEDS = 10, 3


def write_system(folder, accuracy, rng):
    sizes = np.full(FOLDS, UTTERANCES // FOLDS)
    sizes[: UTTERANCES % FOLDS] += 1
    for fold, size in enumerate(sizes):
        ids = [f"f{fold}_{k:05d}" for k in range(size)]
        labels = np.random.default_rng(fold).integers(0, 4, size)  # the same truth for both systems
        for seed in range(SEEDS):
            right = rng.random(size) < accuracy
            answers = np.where(right, labels, (labels + 1) % 4)
            probabilities = np.full((size, 4), 0.1)
            probabilities[np.arange(size), answers] = 0.7
            rows = predictions.table("test", fold, seed, CLASSES, ids, ["s"] * size, labels, probabilities)
            run = os.path.join(folder, f"seed-{seed}", f"fold-{fold}")
            os.makedirs(run)
            with open(os.path.join(run, predictions.PREDICTIONS), "w") as handle:
                handle.write(predictions.to_csv(rows))
            test = {**predictions.scores(rows, CLASSES),
                    "split_hash": predictions.split_hash(rows["utterance_id"], rows["label"])}
            with open(os.path.join(run, "results.json"), "w") as handle:
                json.dump({"fold": fold, "seed": seed, "test": test}, handle)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resamples", type=int, default=paired_tests.RESAMPLES)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        rng = np.random.default_rng(0)
        a, b = os.path.join(root, "A"), os.path.join(root, "B")
        write_system(a, 0.60, rng)
        write_system(b, 0.65, rng)
        for round_ in range(args.rounds):
            started = time.perf_counter()
            [result] = paired_tests.compare([a, b], resamples=args.resamples)
            seconds = time.perf_counter() - started
            print(f"round {round_ + 1}: {seconds:.2f} s for {FOLDS} folds x {SEEDS} seeds x {UTTERANCES} utterances, "
                  f"{args.resamples} resamples (ΔUA {100 * result['delta_ua']:+.2f} points, "
                  f"CI [{100 * result['ci_low']:+.2f}, {100 * result['ci_high']:+.2f}], p {result['p_value']:.4g})")


if __name__ == "__main__":
    main()
