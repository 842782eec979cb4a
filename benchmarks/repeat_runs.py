"""One run, repeated: the epoch loss each repetition logs, and a digest of the weights each ends with.

    python benchmarks/repeat_runs.py --runs 8 --work /tmp/repeat_runs

Trains the same run `--runs` times in one process: the joint multi-view run of the interrupted-run test
(tests/test_train.py): B-ACO-1 at 8 units with dropout 0.3 beside B-LEX, seed 5, fold 3, on the demo corpus at 40
utterances per held-out speaker, for `--epochs` epochs. Prints, per repetition, the training loss logged for each
epoch (history.csv, as written) and a SHA-256 of best.weights.h5's arrays; then the distinct values of each.
Start several at once on a busy machine to see what load does to them.
"""

import argparse
import csv
import hashlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import h5py
import numpy as np

from emokeras.config import ModelConfig, MultiViewConfig, PrepareConfig, TrainConfig
from emokeras.data.preparation import prepare_corpus
from emokeras.training.experiment import Experiment


def weights_digest(path: str) -> str:
    """SHA-256 (first 12 hex digits) of every array in a Keras weights file, in name order."""
    arrays = {}
    with h5py.File(path, "r") as handle:
        handle.visititems(lambda name, item: arrays.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset)
                          else None)
    digest = hashlib.sha256()
    for name in sorted(arrays):
        digest.update(name.encode() + np.ascontiguousarray(arrays[name]).tobytes())
    return digest.hexdigest()[:12]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--work", required=True, help="a folder for the corpus and the runs")
    args = parser.parse_args()
    corpus = os.path.join(args.work, "demo")
    data_dir = prepare_corpus(PrepareConfig(root=os.path.join(corpus, "corpus"), out=os.path.join(corpus, "tfrecords"),
                                            encoder_dir=os.path.join(corpus, "encoders"),
                                            demo_utterances_per_speaker=40), wait=True)
    losses, digests = [], []
    for run in range(args.runs):
        folder = os.path.join(args.work, f"run-{os.getpid()}-{run}")
        config = TrainConfig(model="B-ACO-1", fold=3, epochs=args.epochs, batch_size=32, learning_rate=3e-3,
                             seed=5, data=data_dir, output=os.path.join(folder, "runs"),
                             saved_models=os.path.join(folder, "saved_models"), onnx=False,
                             model_config=ModelConfig(hidden_units=8, blstm_layers=1, dropout=0.3),
                             multiview=MultiViewConfig(mode="joint", view="B-LEX"))
        Experiment(config).run()
        with open(os.path.join(config.run_dir(), "history.csv")) as handle:
            losses.append(tuple(row["loss"] for row in csv.DictReader(handle)))
        digests.append(weights_digest(os.path.join(config.run_dir(), "best.weights.h5")))
        print(f"run {run}: loss by epoch {' '.join(losses[-1])}; weights {digests[-1]}", flush=True)
    histories = sorted({" ".join(history) for history in losses})
    print(f"{args.runs} runs: {len(histories)} distinct loss histories ({', '.join(histories)}); "
          f"{len(set(digests))} distinct weights ({', '.join(sorted(set(digests)))})")


if __name__ == "__main__":
    main()
