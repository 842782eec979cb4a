"""Cutting a recording into the segments a recogniser answers.

Fixed windows, speech found by its energy, or the caller's own segments, each a segmenter object (`Windows`,
`SpeechStretches`, `GivenSegments`, `WholeFile`).

The model was trained on utterances of at most 7 s (700 frames), so a long
recording is answered segment by segment, each at most that long. Every
segmenter returns `Segment`s in seconds, in order; a segment that cannot be
answered carries the reason (`Segment.error`), and its row says it.

This module reads audio in blocks and imports neither TensorFlow nor openSMILE.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np
import soundfile

logger = logging.getLogger(__name__)

# Speech detection works on 10 ms frames, the hop of the model's features.
FRAME_SECONDS = 0.01
BLOCK_SECONDS = 60.0  # audio read at a time while looking for speech: memory stays bounded for any length


def duration(path: str) -> float:
    """The length of an audio file in seconds, read from its header."""
    return float(soundfile.info(path).duration)


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
    return [part for start, end in segments for part in cut(start, end, max_seconds)]


def cut(start: float, end: float, longest: float) -> list[tuple[float, float]]:
    """`[start, end)` in equal parts no longer than `longest` seconds."""
    parts = max(1, int(math.ceil((end - start) / longest - 1e-9)))
    step = (end - start) / parts
    return [(round(start + k * step, 6), round(start + (k + 1) * step, 6)) for k in range(parts)]


@dataclasses.dataclass(frozen=True)
class Segment:
    """`[start, end)` seconds of a recording, and why it cannot be answered (None if it can)."""

    start: float
    end: float
    error: str | None = None


class Windows:
    """Windows of `window` seconds every `hop` seconds, the last ending at the recording's end (`fixed_windows`)."""

    def __init__(self, window: float, hop: float):
        self.window, self.hop = window, hop

    def segments(self, path: str, total: float) -> list[Segment]:
        """The windows over `[0, total)` seconds."""
        return [Segment(start, end) for start, end in fixed_windows(total, self.window, self.hop)]


class SpeechStretches:
    """Stretches of speech found by their energy, each at most `longest` seconds (`speech_segments`)."""

    def __init__(self, longest: float):
        self.longest = longest

    def segments(self, path: str, total: float) -> list[Segment]:
        """The stretches of speech in the recording at `path`."""
        return [Segment(start, end) for start, end in speech_segments(path, self.longest)]


class WholeFile:
    """The recording as one utterance (models that read a transcript: as they were trained)."""

    def segments(self, path: str, total: float) -> list[Segment]:
        """The whole recording, `[0, total)`."""
        return [Segment(0.0, total)]


class GivenSegments:
    """The caller's `(start, end)` segments, checked against the recording.

    A segment whose start is not before its end, or is negative, or not finite, or after the recording's end,
    is answered with an error row saying so. One ending past the recording is clipped to its end (and logged), so
    its row and its weight in a summary are the audio actually read. One longer than `longest` (the seconds the
    model reads) is answered in equal parts no longer than that, as long speech stretches are.
    """

    def __init__(self, given, longest: float):
        self.given, self.longest = list(given), longest

    def segments(self, path: str, total: float) -> list[Segment]:
        """The caller's segments, each checked against `total` seconds (error rows for those that cannot be read)."""
        found = []
        for item in self.given:
            try:
                start, end = (float(value) for value in item)
            except (TypeError, ValueError):
                found.append(Segment(math.nan, math.nan, f"segment {item!r}: not a (start, end) pair of seconds"))
                continue
            problem = self._problem(start, end, total)
            if problem:
                found.append(Segment(start, end, f"segment {start!r} to {end!r} s: {problem}"))
                continue
            if end > total:
                logger.warning("%s: segment %r to %r s ends past the file's end (%.2f s): answered to %.2f s",
                               path, start, end, total, total)
                end = total
            found += [Segment(a, b) for a, b in cut(start, end, self.longest)]
        return found

    @staticmethod
    def _problem(start: float, end: float, total: float) -> str | None:
        if not (math.isfinite(start) and math.isfinite(end)):
            return "not a finite number"
        if start < 0:
            return "a negative start"
        if end <= start:
            return "its end is not after its start"
        if start >= total:
            return f"starts after the file's end ({total:.2f} s)"
        return None
