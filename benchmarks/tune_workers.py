"""A Keras Tuner search with 1 and with 2 workers: wall time and its ratio.

Each round runs the same 4-trial search (`python -m emokeras.tune --workers N`, a chief and N workers on this
machine, cores shared out among the workers) once with 1 worker and once with 2, the order reversed every other
round, each in a fresh tuning folder; it prints every round's seconds and ratio (this shared machine's speed
drifts between runs, and a ratio measured within one round does not) and the median ratio.

Prints figures; asserts nothing. The search trains multi-view B-ACO-1 with H-MM-4 (the tuner's default) at
`--hidden_units` for `--epochs`, small enough that the trials, not the start-up, are what is timed.

    python benchmarks/tune_workers.py [--data tfrecords/demo/char-ngram-256] [--rounds 3] [--trials 4]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def search_seconds(workers: int, args, folder: str) -> float:
    """Wall seconds of one search with `workers` workers, from a fresh tuning folder under `folder`."""
    command = [sys.executable, "-m", "emokeras.tune", "--fold", "3", "--data", args.data,
               "--max_trials", str(args.trials), "--tuner", "random", "--epochs", str(args.epochs),
               "--hidden_units", str(args.hidden_units), "--workers", str(workers),
               "--tuning", os.path.join(folder, f"tuning-{workers}"), "--output", os.path.join(folder, "runs"),
               "--saved_models", os.path.join(folder, "saved_models")]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="tfrecords/demo/char-ngram-256", help="a prepared TFRecord folder")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--hidden_units", type=int, default=32)
    args = parser.parse_args()
    ratios = []
    for round_ in range(args.rounds):
        seconds = {}
        for workers in ((1, 2) if round_ % 2 == 0 else (2, 1)):
            with tempfile.TemporaryDirectory() as folder:
                seconds[workers] = search_seconds(workers, args, folder)
        ratios.append(seconds[1] / seconds[2])
        print(f"round {round_ + 1}: 1 worker {seconds[1]:.1f} s, 2 workers {seconds[2]:.1f} s, "
              f"ratio {ratios[-1]:.2f}", flush=True)
    print(f"{args.trials}-trial search, 1 -> 2 workers: median ratio {statistics.median(ratios):.2f} "
          f"(range {min(ratios):.2f}-{max(ratios):.2f} over {args.rounds} rounds)")


if __name__ == "__main__":
    main()
