"""Cutting a recording into the segments a recogniser answers: fixed windows, or speech found by its energy.

The model was trained on utterances of at most 7 s (700 frames), so a long
recording is answered segment by segment, each at most that long. Both ways
of cutting return `[(start, end), ...]` in seconds, in order, covering what
they cover without gaps between consecutive windows.

This module reads audio in blocks and imports neither TensorFlow nor openSMILE.
"""

from __future__ import annotations

import math

import audiofile
import numpy as np
import soundfile

# Speech detection works on 10 ms frames, the hop of the model's features.
FRAME_SECONDS = 0.01
BLOCK_SECONDS = 60.0  # audio read at a time while looking for speech: memory stays bounded for any length


def duration(path: str) -> float:
    """The length of an audio file in seconds, read from its header."""
    return float(audiofile.duration(path))


def fixed_windows(total: float, window: float, hop: float) -> list[tuple[float, float]]:
    """Windows of `window` seconds every `hop` seconds over `[0, total)`.

    A recording no longer than one window is one segment, `(0, total)`. The
    last window ends at `total`: where the hops leave a shorter tail, the last
    window starts at `total - window` (overlapping its neighbour), so every
    segment has the full length the model was trained on and every second is
    covered.

    Args:
      total: the recording's length in seconds.
      window: each segment's length in seconds.
      hop: seconds between starts; `hop <= window` leaves no gap.

    Returns:
      `[(start, end), ...]` in seconds.
    """
    if window <= 0 or hop <= 0:
        raise ValueError(f"window ({window} s) and hop ({hop} s) must be positive")
    if hop > window:
        raise ValueError(f"a hop of {hop} s is longer than the {window} s window: it would leave gaps")
    if total <= window:
        return [(0.0, float(total))]
    starts = [float(round(k * hop, 6)) for k in range(int(math.floor((total - window) / hop + 1e-9)) + 1)]
    windows = [(start, float(round(start + window, 6))) for start in starts]
    if windows[-1][1] < total - 1e-9:
        windows.append((float(round(total - window, 6)), float(total)))
    return windows


def frame_levels(path: str) -> np.ndarray:
    """RMS level in dBFS of each 10 ms frame of `path` (channels averaged), read block by block."""
    info = soundfile.info(path)
    frame = max(1, int(round(info.samplerate * FRAME_SECONDS)))
    block = frame * int(BLOCK_SECONDS / FRAME_SECONDS)
    levels = []
    for samples in soundfile.blocks(path, blocksize=block, dtype="float32", always_2d=True):
        mono = samples.mean(axis=1)
        usable = mono.shape[0] // frame * frame
        if usable == 0:
            continue
        power = np.mean(np.square(mono[:usable].reshape(-1, frame), dtype=np.float64), axis=1)
        levels.append(10.0 * np.log10(power + 1e-12))
    return np.concatenate(levels) if levels else np.zeros(0)


def speech_segments(path: str, max_seconds: float, threshold_db: float | None = None, min_speech: float = 0.25,
                    min_pause: float = 0.3, padding: float = 0.1) -> list[tuple[float, float]]:
    """Stretches of speech in `path`, found by frame energy, each at most `max_seconds` long.

    A frame is speech when its RMS level is above `threshold_db`; by default
    12 dB above the recording's noise floor (the level that 10 % of its frames
    stay under), and never below -55 dBFS. Pauses shorter than `min_pause`
    are bridged, stretches shorter than `min_speech` dropped, each stretch
    widened by `padding` on both sides, and a stretch longer than
    `max_seconds` is cut into equal parts no longer than that.

    This is an energy detector, not a speech classifier: loud music or noise
    counts as speech. It is what a recording without a transcript needs to
    skip its silences; where a better voice-activity detector is at hand,
    give its segments to `Recognizer.predict_file(path, segments=...)`.

    Returns:
      `[(start, end), ...]` in seconds; empty if nothing is above the threshold.
    """
    levels = frame_levels(path)
    if levels.size == 0:
        return []
    if threshold_db is None:
        threshold_db = max(float(np.percentile(levels, 10)) + 12.0, -55.0)
    active = levels > threshold_db
    total = duration(path)
    stretches = []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], active.astype(np.int8), [0]])))
    for first, last in zip(edges[::2], edges[1::2]):
        start, end = first * FRAME_SECONDS, last * FRAME_SECONDS
        if stretches and start - stretches[-1][1] < min_pause:
            stretches[-1][1] = end
        else:
            stretches.append([start, end])
    segments = []
    for start, end in stretches:
        if end - start < min_speech:
            continue
        start, end = max(0.0, start - padding), min(total, end + padding)
        if segments and start < segments[-1][1]:  # padding made neighbours touch
            start = segments.pop()[0]
        segments.append((start, end))
    cut = []
    for start, end in segments:
        parts = max(1, int(math.ceil((end - start) / max_seconds - 1e-9)))
        step = (end - start) / parts
        cut += [(round(start + k * step, 6), round(start + (k + 1) * step, 6)) for k in range(parts)]
    return cut
