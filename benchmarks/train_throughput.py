"""Training throughput: emokeras' pipeline and models against a plain Keras baseline and the matmul peak.

Prints figures; asserts nothing. Goals (issue 3): B-ACO-1 through emokeras'
pipeline trains >= 1.5x the useful (unpadded) frames/s of the baseline a user
would write (Sequential BLSTMs, every utterance padded to 700 frames, `fit` on
numpy arrays), and reaches >= 50 % of the machine's float32 matmul peak.

    python benchmarks/train_throughput.py [--data_dir DIR] [--epochs 2] [--hidden_units 256] [--models B-ACO-1,H-MM-4]

Useful frames are the utterances' real frames (at most 700 each), counted once
per epoch. Achieved FLOP/s counts the BLSTM matrix products only (they are
nearly all the work): per frame and direction, forward `2·4u·(d + u)` for
input size `d` and `u` units, and training is taken as 3x forward.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

from emokeras import data, models
from emokeras.callbacks import EpochSeconds
from emokeras.config import ModelConfig, TrainConfig
from emokeras.prepare import PrepareConfig, prepare
from emokeras.train import build_compiled_model


def best_seconds(function, calls, repeats: int) -> float:
    """Seconds of the fastest of `repeats` passes of `function(*arguments)` over `calls`, after a warm-up pass.

    The fastest, because this shared machine's speed varies by up to 25 % between runs of a few seconds;
    the warm-up pass traces and caches. Each pass waits for its last result.
    """
    best = float("inf")
    for attempt in range(repeats + 1):
        started = time.perf_counter()
        for arguments in calls:
            result = function(*arguments)
        [value.numpy() for value in tf.nest.flatten(result)]
        if attempt:
            best = min(best, time.perf_counter() - started)
    return best


def matmul_peak(size=2048, repeats=10, windows=5) -> float:
    """float32 FLOP/s of a large square matmul on this machine: the best of `windows` runs of `repeats` products."""
    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))

    @tf.function
    def product(a, b):
        return tf.matmul(a, b)

    return 2 * size**3 * repeats / best_seconds(product, [(a, b)] * repeats, windows)


def blstm_training_flops_per_frame(input_size: int, hidden_units: int, layers: int) -> float:
    units = hidden_units // 2
    flops, size = 0.0, input_size
    for _ in range(layers):
        flops += 2 * (2 * 4 * units * (size + units))  # two directions
        size = hidden_units
    return 3 * flops


def timed_epochs(model, dataset, epochs, **fit_kwargs) -> float:
    """Seconds of the fastest of `epochs` epochs of one `fit`, after a warm-up epoch (tracing, caching).

    Epochs are timed from inside `fit`, as a 30-epoch run spends them; the
    one-off set-up of a `fit` call is not training throughput.
    """
    history = model.fit(dataset, epochs=epochs + 1, verbose=0, callbacks=[EpochSeconds()], **fit_kwargs)
    return min(history.history["epoch_seconds"][1:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=None, help="a prepared folder (default: prepare the demo corpus)")
    parser.add_argument("--fold", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per model (the fastest counts)")
    parser.add_argument("--hidden_units", type=int, default=ModelConfig().hidden_units,
                        help="BLSTM output size, both directions (the paper's reading: 256)")
    parser.add_argument("--models", default="B-ACO-1,H-MM-4", help="emokeras models to time")
    args = parser.parse_args()
    data_dir = args.data_dir or prepare(PrepareConfig())

    peak = matmul_peak()
    print(f"matmul peak (float32, 2048x2048, {os.cpu_count()} cores): {peak / 1e9:.1f} GFLOP/s")

    frames, labels = [], []
    for example in data.parsed_split(data_dir, args.fold, "train").as_numpy_iterator():
        frames.append(example["frames"])
        labels.append(example["label"])
    useful_frames = sum(len(f) for f in frames)
    print(f"fold {args.fold} training split: {len(frames)} utterances, {useful_frames} frames "
          f"(mean {useful_frames / len(frames):.0f}, padded to 700: {700 * len(frames)})")
    config = ModelConfig(hidden_units=args.hidden_units)
    per_frame = blstm_training_flops_per_frame(frames[0].shape[1], config.hidden_units, config.blstm_layers)

    def report(label, seconds):
        rate = useful_frames / seconds
        print(f"  {label}: {seconds:.2f} s/epoch, {rate:,.0f} useful frames/s, "
              f"{rate * per_frame / 1e9:.1f} GFLOP/s useful = {100 * rate * per_frame / peak:.0f} % of peak")
        return rate

    # The baseline a user would write: every utterance padded to 700 frames, numpy arrays, Sequential BLSTMs.
    padded = np.zeros((len(frames), data.MAX_FRAMES, frames[0].shape[1]), "float32")
    for row, utterance in enumerate(frames):
        padded[row, :len(utterance)] = utterance
    keras.utils.set_random_seed(0)
    baseline = keras.Sequential([keras.Input((data.MAX_FRAMES, frames[0].shape[1]))] + [
        keras.layers.Bidirectional(keras.layers.LSTM(config.hidden_units // 2, return_sequences=True))
        for _ in range(config.blstm_layers)] + [keras.layers.GlobalAveragePooling1D(),
                                                keras.layers.Dense(4, activation="softmax")])
    baseline.compile(optimizer=keras.optimizers.Adam(1e-4, global_clipnorm=5.0),
                     loss="sparse_categorical_crossentropy")
    print(f"plain Keras baseline (Sequential 2xBLSTM({config.hidden_units}), padded to 700, fit on numpy, batch 64):")
    seconds = timed_epochs(baseline, padded, args.epochs, y=np.array(labels), batch_size=64)
    baseline_rate = report("baseline", seconds)
    print(f"  (padded frames/s: {700 * len(frames) / seconds:,.0f}; "
          f"{100 * 700 * len(frames) * per_frame / seconds / peak:.0f} % of peak counting padding)")

    print(f"emokeras (bucketed tf.data pipeline, masks, hidden_units {config.hidden_units}):")
    for name in args.models.split(","):
        train_config = TrainConfig(model=name, fold=args.fold, model_config=config)
        keras.utils.set_random_seed(0)
        model = build_compiled_model(train_config, data_dir)
        dataset = data.make_dataset(data_dir, args.fold, "train").map(
            lambda inputs, label, model=model: (models.select_inputs(model, inputs), label))
        rate = report(name, timed_epochs(model, dataset, args.epochs))
        print(f"    {rate / baseline_rate:.2f}x the baseline's useful frames/s")


if __name__ == "__main__":
    main()
