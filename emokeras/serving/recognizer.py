"""`Recognizer`: emotions over whole recordings from an exported model, as a pandas DataFrame.

    >>> from emokeras import Recognizer                                  # doctest: +SKIP
    >>> recognizer = Recognizer.load("saved_models/B-ACO-1/fold-3")      # doctest: +SKIP
    >>> recognizer.predict_file("interview.wav")                          # doctest: +SKIP
                                 emotion     anger  happiness   neutral   sadness
    file          start  end
    interview.wav 0.0    7.0     neutral  0.101...

Answers follow audinterface's convention: one row per segment, indexed by `(file, start, end)` (seconds), with
the predicted `emotion`, one probability column per class of the model (its export's class names) and `error`;
`Recognizer.summarize` gives one row per file.

A recogniser is made of parts, each with one job:
- a segmenter (`emokeras.serving.segments`) cuts each recording: `Windows` (default), `SpeechStretches`, or the
  caller's `GivenSegments`; models that read words take a file whole (`WholeFile`), as trained;
- a frame source (`emokeras.serving.frames.FrameSource`) runs openSMILE in this process or in worker processes;
- the model's inputs are built as training's pipeline built them (`emokeras.serving.inputs`);
- a runtime (`emokeras.serving.runtimes`) runs `model.onnx` on onnxruntime (no TensorFlow) or the SavedModel.

Each segment's audio is read on its own, so memory does not grow with the recording. Segments are batched by
length; the model masks padding, so a segment's probabilities do not depend on what it is batched with.

A segment or file that cannot be answered keeps its row, with NaN probabilities, no emotion and the reason in
`error`: unreadable or silent audio, a caller's segment that is not one (start not before end, negative, not
finite, after the file's end), a missing transcript, a model that answers NaN. `predict_file` raises
`PredictionError` when none of a file's segments could be answered.
"""

from __future__ import annotations

import contextlib
import logging
import math
import numbers
import os
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from emokeras.data.features import acoustic
from emokeras.serving import segments as segmenting
from emokeras.serving.frames import FrameSource
from emokeras.serving.inputs import TranscriptError, TranscriptInputs, acoustic_batch
from emokeras.serving.runtimes import RUNTIMES, needs_transcript, open_runtime, read_metadata, uses_tensorflow

logger = logging.getLogger(__name__)

FRAMES_PER_SECOND = 100
SEGMENTATIONS = ("window", "speech")
INDEX = ["file", "start", "end"]
# Segments are batched by length within groups of this many model calls: memory stays bounded for any recording,
# and with worker processes the next group's features are extracted while the model answers this one.
BATCHES_PER_GROUP = 2
NAN_ANSWER = "the model answered NaN (was it trained to a non-finite loss?)"
# A 2-D signal's channels are its shorter axis; past this many, it is not a layout emokeras can tell.
MAX_CHANNELS = 64

__all__ = ["PredictionError", "Recognizer", "class_columns", "read_metadata", "RUNTIMES", "SEGMENTATIONS"]


class PredictionError(Exception):
    """One file that cannot be answered; the message names the file and the problem."""


def class_columns(answers: pd.DataFrame) -> list[str]:
    """The probability columns of a recogniser's answers (its model's class names, in order)."""
    return [column for column in answers.columns if column not in ("emotion", "error", "segments",
                                                                    "answered_seconds")]


def _cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _positive_integer(name: str, value) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _seconds(name: str, value) -> float | None:
    if value is None:
        return None
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
    return float(value)


def channels_first(signal, name: str) -> np.ndarray:
    """`signal` as `[channels, samples]`, from `[samples]`, `[channels, samples]` or soundfile's `[samples, channels]`.

    A 2-D signal's channels are its shorter axis (at most 64 of them).

    Raises:
      PredictionError: any other shape, naming `name`.
    """
    signal = np.asarray(signal)
    if signal.ndim == 0:
        raise PredictionError(f"{name}: a 0-d array: a signal needs samples ([samples], [channels, samples] or "
                              "[samples, channels])")
    if signal.ndim == 1:
        return signal[np.newaxis]
    if signal.ndim != 2:
        raise PredictionError(f"{name}: a {signal.ndim}-d array {signal.shape}; give [samples], [channels, samples] "
                              "or [samples, channels]")
    rows, columns = signal.shape
    if rows == columns or min(rows, columns) > MAX_CHANNELS:
        raise PredictionError(f"{name}: {signal.shape}: cannot tell its channels from its samples (the channels "
                              f"are the shorter axis, at most {MAX_CHANNELS})")
    return signal if rows < columns else signal.T


class Recognizer:
    """An exported emokeras model and how to cut and read recordings for it. Build it with `Recognizer.load`.

    Args:
      export_dir: `saved_models/<model>/fold-<k>`.
      metadata: the export's `assets.extra/emokeras.json`.
      runtime: what runs the model (`emokeras.serving.runtimes.open_runtime`).
      segmentation: `"window"` or `"speech"`.
      window_seconds, hop_seconds: the fixed windows (window segmentation) and the longest segment (speech
        segmentation, and parts of a longer given segment).
      batch_size: segments per model call.
      workers: openSMILE worker processes (with 1 and no TensorFlow loaded, openSMILE runs in this process).
      transcripts_dir: where to look first for transcripts (models that read words).

    Raises:
      ValueError, TypeError: an argument out of its range or of the wrong type, naming it.
    """

    def __init__(self, export_dir: str, metadata: dict, runtime, segmentation: str = "window",
                 window_seconds: float | None = None, hop_seconds: float | None = None, batch_size: int = 32,
                 workers: int = 1, transcripts_dir: str | None = None):
        if segmentation not in SEGMENTATIONS:
            raise ValueError(f"segmentation {segmentation!r}: choose one of {', '.join(SEGMENTATIONS)}")
        self.export_dir = export_dir
        self.metadata = metadata
        self.class_names = list(metadata["class_names"])
        self.max_frames = int(metadata.get("max_frames", 700))
        longest = self.max_frames / FRAMES_PER_SECOND
        window_seconds = _seconds("window_seconds", window_seconds)
        hop_seconds = _seconds("hop_seconds", hop_seconds)
        self.window_seconds = longest if window_seconds is None else window_seconds
        self.hop_seconds = self.window_seconds if hop_seconds is None else hop_seconds
        if not 0 < self.window_seconds <= longest:
            raise ValueError(f"window_seconds {self.window_seconds:g}: the model reads at most {longest:g} s "
                             f"({self.max_frames} frames) of a segment; choose a window in (0, {longest:g}]")
        if not 0 < self.hop_seconds <= self.window_seconds:
            raise ValueError(f"hop_seconds {self.hop_seconds:g}: choose a hop in (0, {self.window_seconds:g}] "
                             "(a longer hop than the window would leave gaps)")
        self.segmentation = segmentation
        self.batch_size = _positive_integer("batch_size", batch_size)
        self.runtime = runtime.name
        self._run = runtime
        self._frames = FrameSource(_positive_integer("workers", workers))
        self.transcripts_dir = transcripts_dir
        self._transcripts = TranscriptInputs(metadata, transcripts_dir) if needs_transcript(metadata) else None
        if self._transcripts is not None:
            self._segmenter = segmenting.WholeFile()
        elif segmentation == "speech":
            self._segmenter = segmenting.SpeechStretches(self.window_seconds)
        else:
            self._segmenter = segmenting.Windows(self.window_seconds, self.hop_seconds)

    @classmethod
    def load(cls, export_dir: str, runtime: str = "auto", threads: int | None = None, **options) -> Recognizer:
        """Opens an export.

        Args:
          export_dir: `saved_models/<model>/fold-<k>`.
          runtime: `"auto"` (ONNX where the export has `model.onnx`, else the SavedModel), `"onnx"` or
            `"savedmodel"`.
          threads: the runtime's intra-op threads (None: its default; on ONNX with several `workers`, the cores
            they leave, at least one).
          **options: the `Recognizer` arguments (segmentation, window_seconds, batch_size, workers, ...).

        Raises:
          FileNotFoundError: not an export, or `runtime="onnx"` and it has no `model.onnx`.
          ValueError: bad metadata or options, or a damaged export (`runtimes.DamagedExport`, naming what still
            answers).
        """
        metadata = read_metadata(export_dir)
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime {runtime!r}: choose one of {', '.join(RUNTIMES)}")
        # Checked before the runtime loads: a bad option costs no model loading.
        cls._check_options(options)
        workers = options.get("workers", 1)
        if threads is None and workers > 1 and not uses_tensorflow(metadata, runtime):
            # The model answers while the workers extract: on every core its threads would contend with them.
            # (TensorFlow's threads belong to the process and cannot change once it runs: left alone.)
            threads = max(1, _cores() - workers)
        return cls(export_dir, metadata, open_runtime(export_dir, metadata, runtime, threads), **options)

    @staticmethod
    def _check_options(options: dict) -> None:
        for name in ("batch_size", "workers"):
            if name in options:
                _positive_integer(name, options[name])
        for name in ("window_seconds", "hop_seconds"):
            if name in options:
                _seconds(name, options[name])
        if "segmentation" in options and options["segmentation"] not in SEGMENTATIONS:
            raise ValueError(f"segmentation {options['segmentation']!r}: choose one of {', '.join(SEGMENTATIONS)}")

    def close(self) -> None:
        """Gives the openSMILE worker processes back, if any were started (`features.acoustic.WorkerPool`)."""
        self._frames.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # Segments ---------------------------------------------------------------------------------------------

    def _segments(self, path: str, given=None) -> tuple[list, float]:
        """The segments this recogniser answers for `path` (its own, or the caller's checked) and its duration.

        Raises:
          PredictionError: the file cannot be opened as audio.
        """
        try:
            total = float(acoustic.audio_info(path).duration)
        except acoustic.FeatureError as error:
            raise PredictionError(str(error)) from None
        if given is not None:
            if self._transcripts is not None:
                raise PredictionError(f"{path}: the model {self.metadata.get('model')} reads a transcript and takes "
                                      "each file whole; it answers no segments")
            return segmenting.GivenSegments(given, self.window_seconds).segments(path, total), total
        try:
            return self._segmenter.segments(path, total), total
        except Exception as error:  # soundfile raises several types for bad files
            raise PredictionError(f"{path}: unreadable audio ({type(error).__name__}: {error})") from None

    def segments_of(self, path: str) -> list[tuple[float, float]]:
        """The `(start, end)` seconds this recogniser answers for `path` (see the module docstring).

        Raises:
          PredictionError: the file cannot be opened.
        """
        return [(segment.start, segment.end) for segment in self._segments(path)[0]]

    # Answers ----------------------------------------------------------------------------------------------

    def predict_file(self, path: str, segments: Sequence[tuple[float, float]] | None = None) -> pd.DataFrame:
        """One row per segment of `path`.

        This recogniser's segments, or `segments` (`(start, end)` seconds; see `segments.GivenSegments` for how they are
        checked).

        Raises:
          PredictionError: no segment of the file could be answered, naming it and the problems.
        """
        if segments is not None and (isinstance(segments, (str, bytes)) or not isinstance(segments, Iterable)):
            raise TypeError(f"segments must be a list of (start, end) pairs of seconds, got {segments!r}")
        segments = None if segments is None else list(segments)
        if segments == []:
            raise PredictionError(f"{path}: no segment given (segments=[]); give (start, end) pairs, or None for "
                                  "the recogniser's own")
        answers = self._predict([(os.fspath(path), segments)])
        if answers["error"].notna().all():
            raise PredictionError("; ".join(dict.fromkeys(answers["error"])))
        return answers

    def predict_files(self, paths: Iterable[str]) -> pd.DataFrame:
        """One row per segment of each file, in order; a file that fails gets one row with its `error`.

        A path given twice is answered once.
        """
        if isinstance(paths, (str, bytes, os.PathLike)):
            raise TypeError("predict_files takes a list of paths, not one path; for one file use predict_file")
        files = []
        for path in paths:
            path = os.fspath(path)
            if path in files:
                logger.warning("%s is given twice: answered once", path)
                continue
            files.append(path)
        return self._predict([(path, None) for path in files])

    def predict_signal(self, signal: np.ndarray, sampling_rate: int, name: str = "<signal>") -> pd.DataFrame:
        """One row per window of a signal in memory, indexed under `name`.

        Args:
          signal: `[samples]`, `[channels, samples]`, or soundfile's `[samples, channels]`: a 2-D signal's
            channels are its shorter axis.
          sampling_rate: its rate in Hz, a positive whole number (at least 16,000).
          name: how the rows and messages name the signal.

        Raises:
          PredictionError: a signal that fails `read_audio`'s checks, a layout that is none of these, or a rate that
            is not a positive whole number, naming `name` and the problem.
        """
        if self._transcripts is not None:
            raise PredictionError(f"{name}: the model {self.metadata.get('model')} reads words; give a file and its "
                                  "transcript to predict_file")
        if (not isinstance(sampling_rate, numbers.Real) or isinstance(sampling_rate, bool)
                or not math.isfinite(sampling_rate) or sampling_rate <= 0 or sampling_rate != int(sampling_rate)):
            raise PredictionError(f"{name}: sampling_rate must be a positive whole number of Hz, got "
                                  f"{sampling_rate!r}")
        try:
            signal = acoustic.prepared_signal(channels_first(signal, name), int(sampling_rate), name)
        except acoustic.FeatureError as error:
            raise PredictionError(str(error)) from None
        total = signal.shape[0] / acoustic.SAMPLE_RATE
        rows, pieces = [], []
        for start, end in segmenting.fixed_windows(total, self.window_seconds, self.hop_seconds):
            rows.append((name, start, end))
            pieces.append((signal[int(round(start * acoustic.SAMPLE_RATE)):int(round(end * acoustic.SAMPLE_RATE))],
                           f"{name} {acoustic.segment_name(start, end)}"))
        extracted = self._frames.signal_frames(pieces)
        answers = self._answer(rows, [frames for frames, _ in extracted], [error for _, error in extracted])
        if answers["error"].notna().all():
            raise PredictionError("; ".join(answers["error"]))
        return answers

    def _predict(self, files: list[tuple[str, list | None]]) -> pd.DataFrame:
        """Answers for `(path, segments or None)` pairs, batching segments by length, in bounded memory."""
        requests, rows, errors, failed = [], [], [], {}
        for path, given in files:
            try:
                found, total = self._segments(path, given)
            except PredictionError as error:
                failed[path] = str(error)
                continue
            if not found:
                failed[path] = f"{path}: no segment to answer (no speech found above the energy threshold)"
            for segment in found:
                rows.append((path, segment.start, segment.end))
                whole = segment.start == 0 and segment.end == total  # the file read whole, as it was prepared
                requests.append(None if segment.error else path if whole else (path, segment.start, segment.end))
                errors.append(f"{path}: {segment.error}" if segment.error else None)
        answered = []
        group = BATCHES_PER_GROUP * self.batch_size
        # One pass over every readable segment: worker processes keep extracting ahead while the model runs.
        readable = self._frames.frames([request for request in requests if request is not None])
        with contextlib.closing(readable) as extracted:
            for first in range(0, len(requests), group):
                frames, messages = [], []
                for request, error in zip(requests[first:first + group], errors[first:first + group]):
                    if request is None:
                        frames.append(None)
                        messages.append(error)
                    else:
                        _, features, message = next(extracted)
                        frames.append(features)
                        messages.append(message)
                answered.append(self._answer(rows[first:first + group], frames, messages))
        if failed:
            answered.append(pd.DataFrame(
                {"emotion": [None] * len(failed), **{name: np.nan for name in self.class_names},
                 "error": list(failed.values())},
                index=pd.MultiIndex.from_tuples([(path, 0.0, np.nan) for path in failed], names=INDEX)))
        if not answered:
            return self._empty()
        table = pd.concat(answered)
        order = {path: position for position, (path, _) in enumerate(files)}
        positions = sorted(range(len(table)), key=lambda k: order[table.index[k][0]])  # stable: segment order kept
        table = table.iloc[positions]
        table[self.class_names] = table[self.class_names].astype(float)
        return table

    def _empty(self) -> pd.DataFrame:
        return pd.DataFrame(columns=["emotion", *self.class_names, "error"],
                            index=pd.MultiIndex.from_arrays([[], [], []], names=INDEX))

    def _answer(self, rows: list[tuple], frames: list, errors: list) -> pd.DataFrame:
        """Runs the model on `frames` in batches of similar length; a row's error keeps it out of the model."""
        probabilities = np.full((len(rows), len(self.class_names)), np.nan, np.float32)
        messages = list(errors)
        ready = [k for k, (features, error) in enumerate(zip(frames, errors)) if error is None]
        if self._transcripts is not None:
            for k in ready:
                try:
                    probabilities[k] = self._run(self._transcripts(rows[k][0], frames[k]))[0]
                except TranscriptError as error:
                    messages[k] = str(error)
        else:
            ready.sort(key=lambda k: frames[k].shape[0])
            for first in range(0, len(ready), self.batch_size):
                batch = ready[first:first + self.batch_size]
                probabilities[batch] = self._run(acoustic_batch([frames[k] for k in batch], self.max_frames))
        for k in ready:
            if messages[k] is None and not np.isfinite(probabilities[k]).all():
                path, start, end = rows[k]
                name = path if self._transcripts is not None else f"{path} {acoustic.segment_name(start, end)}"
                messages[k] = f"{name}: {NAN_ANSWER}"
                probabilities[k] = np.nan
        emotions = [None if np.isnan(p).any() else self.class_names[int(np.argmax(p))] for p in probabilities]
        table = pd.DataFrame(probabilities, columns=self.class_names,
                             index=pd.MultiIndex.from_tuples(rows, names=INDEX) if rows else self._empty().index)
        table.insert(0, "emotion", emotions)
        table["error"] = messages
        return table

    # Summaries --------------------------------------------------------------------------------------------

    @staticmethod
    def summarize(answers: pd.DataFrame) -> pd.DataFrame:
        """One row per file: the duration-weighted mean of its answered segments' probabilities, and its argmax.

        Each segment weighs the seconds of audio it read (a segment clipped at the file's end, what is left), so
        overlapping windows count their shared seconds twice; a file with no answered segment gets NaN
        probabilities (and its first error, where the answers hold one).
        """
        names = class_columns(answers)
        rows = []
        for path, group in answers.groupby(level="file", sort=False):
            answered = group[group[names].notna().all(axis=1)]
            starts = answered.index.get_level_values("start").to_numpy(float)
            ends = answered.index.get_level_values("end").to_numpy(float)
            weights = ends - starts
            if len(answered) and weights.sum() > 0:
                mean = (answered[names].to_numpy(float) * weights[:, None]).sum(0) / weights.sum()
                row = {"emotion": names[int(np.argmax(mean))], **dict(zip(names, mean))}
            else:
                row = {"emotion": None, **{name: np.nan for name in names}}
            row["segments"] = len(group)
            row["answered_seconds"] = float(weights.sum())
            if "error" in group and group["error"].notna().any() and pd.isna(row["emotion"]):
                row["error"] = group["error"].dropna().iloc[0]
            rows.append((path, row))
        return pd.DataFrame([row for _, row in rows], index=pd.Index([path for path, _ in rows], name="file"))
