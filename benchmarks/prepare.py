"""Preparation speed: openSMILE real-time factor with 1 and 2 workers, and tf.data throughput.

Prints figures; asserts nothing. Goals (issue 2): real-time factor <= 0.02
per core, >= 1.7x speed-up from 1 to 2 workers, >= 2,000 utterances/s from
the input pipeline.

    python benchmarks/prepare.py [--data_dir tfrecords/demo/char-ngram-256] [--files 200]
"""

import argparse
import os
import time
import wave

from emokeras.config import PrepareConfig
from emokeras.corpus import read_iemocap
from emokeras.features.acoustic import extract_frames_parallel
from emokeras.preparation import prepare_corpus


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=None, help="a prepared folder (default: prepare the demo corpus)")
    parser.add_argument("--files", type=int, default=200, help="wav files to extract per run")
    parser.add_argument("--fold", type=int, default=3)
    args = parser.parse_args()

    config = PrepareConfig()
    data_dir = args.data_dir or prepare_corpus(config)
    paths = [u.wav_path for u in read_iemocap(config.corpus_root())][: args.files]
    seconds = 0.0
    for path in paths:
        with wave.open(path) as handle:
            seconds += handle.getnframes() / handle.getframerate()
    print(f"openSMILE ComParE_2016 LLD + deltas on {len(paths)} files, {seconds:.0f} s of audio "
          f"({os.cpu_count()} cores)")
    walls = {}
    for workers in (1, 2):
        started = time.perf_counter()
        results = list(extract_frames_parallel(paths, workers=workers, progress=False))
        walls[workers] = time.perf_counter() - started
        assert all(error is None for _, _, error in results)
        print(f"  {workers} worker(s): {walls[workers]:.2f} s wall (worker start-up included), "
              f"real-time factor {walls[workers] / seconds:.4f}, per core {walls[workers] * workers / seconds:.4f}")
    print(f"  speed-up 1 -> 2 workers: {walls[1] / walls[2]:.2f}x")

    from emokeras import data

    dataset = data.make_dataset(data_dir, args.fold, "train")
    for epoch in range(3):
        started = time.perf_counter()
        count = sum(int(label.shape[0]) for _, label in dataset)
        wall = time.perf_counter() - started
        note = " (first pass: reads and decodes TFRecords, fills the cache)" if epoch == 0 else ""
        print(f"tf.data fold {args.fold} train split, pass {epoch + 1}: {count} utterances, "
              f"{count / wall:,.0f} utterances/s{note}")


if __name__ == "__main__":
    main()
