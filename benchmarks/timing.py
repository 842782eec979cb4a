"""Timing helpers the benchmarks share.

The fastest of repeated passes, the matmul peak, BLSTM FLOPs, and epochs timed inside one `fit`.

This shared machine's speed varies between runs (the matmul peak has read 218 and 466 GFLOP/s on different days,
and by up to 25 % between runs seconds apart): compare figures measured in one run, and give ranges over runs.
"""

import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf

from emokeras.training.callbacks import EpochSeconds


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


def interleaved_epochs(models: dict, datasets: dict, rounds: int) -> dict:
    """Epoch seconds of each model in `models` ({label: compiled model}), `rounds` epochs each, interleaved.

    Each round runs one epoch of every model (a `fit` of one epoch, timed from inside it), in turn, the order
    reversed every other round, after a warm-up round (tracing, caching). On this shared machine a drift
    in speed over minutes is larger than the effects measured here; models timed back to back within each
    round see the same machine, so compare them round by round (`round_ratios`).
    """
    seconds = {label: [] for label in models}
    for round_index in range(rounds + 1):
        order = list(models) if round_index % 2 == 0 else list(models)[::-1]
        for label in order:
            history = models[label].fit(datasets[label], epochs=1, verbose=0, callbacks=[EpochSeconds()])
            if round_index:
                seconds[label].append(history.history["epoch_seconds"][0])
    return seconds


def round_ratios(numerator: list, denominator: list) -> tuple:
    """Per-round ratios of two `interleaved_epochs` series: (median, lowest, highest)."""
    ratios = [a / b for a, b in zip(numerator, denominator, strict=True)]
    return statistics.median(ratios), min(ratios), max(ratios)
