"""`Recognizer`: emotions over whole recordings from an exported model, as a pandas DataFrame.

    >>> from emokeras import Recognizer                                  # doctest: +SKIP
    >>> recognizer = Recognizer.load("saved_models/B-ACO-1/fold-3")      # doctest: +SKIP
    >>> recognizer.predict_file("interview.wav")                          # doctest: +SKIP
                                 emotion     anger  happiness   neutral   sadness
    file          start  end
    interview.wav 0.0    7.0     neutral  0.101...

Answers follow audinterface's convention: one row per segment, indexed by
`(file, start, end)` (seconds), with the predicted `emotion` and the four
class probabilities; `Recognizer.summarize` gives one row per file.

How a recording is cut (the model was trained on utterances of at most
7 s, 700 frames):
- `segmentation="window"` (default): windows of `window_seconds` every
  `hop_seconds` (`emokeras.segments.fixed_windows`); a recording no longer
  than one window is one row, `(0, duration)`.
- `segmentation="speech"`: stretches of speech found by their energy
  (`emokeras.segments.speech_segments`), silences skipped.
- `predict_file(path, segments=[(start, end), ...])`: segments you choose.

Each segment's audio is read on its own (`read_audio(path, start, end)`) and
its features computed on their own, so memory does not grow with the
recording. Segments are batched by length; the model masks padding, so a
segment's probabilities do not depend on what it is batched with.

Runtimes: an export that holds `model.onnx` (every acoustic-only model) runs
on onnxruntime by default, and TensorFlow is never imported; openSMILE then
runs in this process. `runtime="savedmodel"` uses the SavedModel through
TensorFlow, with openSMILE in worker processes (it aborts in a process that
has imported TensorFlow). Models that read words (B-LEX, B-MM-*, H-MM-*,
and the speaker-frame models) need each file's transcript with word timings,
are SavedModel-only, and read each file as one utterance, as trained.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from emokeras import alignments
from emokeras import segments as segmenting
from emokeras.features import acoustic
from emokeras.specs import METADATA, ONNX_MODEL, SIGNATURE

logger = logging.getLogger(__name__)

FRAMES_PER_SECOND = 100
TRANSCRIPT_SUFFIXES = (".TextGrid", ".ctm", ".json", ".wdseg")
RUNTIMES = ("auto", "onnx", "savedmodel")
SEGMENTATIONS = ("window", "speech")
INDEX = ["file", "start", "end"]
# Segments whose features are held at once before they are batched by length: bounded memory for any recording.
SEGMENTS_IN_FLIGHT = 256


class PredictionError(Exception):
    """One file that cannot be answered; the message names the file and the problem."""


def read_metadata(model_dir: str) -> dict:
    """`assets.extra/emokeras.json` of an exported model.

    Raises:
      FileNotFoundError: `model_dir` is not a model folder emokeras exported.
      ValueError: its metadata is not readable, or lacks what a recogniser needs.
    """
    if not os.path.isfile(os.path.join(model_dir, "saved_model.pb")):
        raise FileNotFoundError(f"{model_dir}: no saved_model.pb; expected an exported model folder such as "
                                "saved_models/<model>/fold-<k>")
    path = os.path.join(model_dir, METADATA)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{model_dir}: no {METADATA}; this SavedModel was not exported by emokeras")
    try:
        with open(path, encoding="utf-8") as f:
            metadata = json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not readable JSON ({error}); export the model again") from None
    missing = [key for key in ("inputs", "class_names") if not isinstance(metadata, dict) or key not in metadata]
    if missing:
        raise ValueError(f"{path}: no {', '.join(missing)}; export the model again")
    return metadata


def needs_transcript(metadata: dict) -> bool:
    """Whether the model reads word vectors or word spans (speaker frames, acoustic words)."""
    return bool({"word_vectors", "word_spans"} & set(metadata["inputs"]))


def find_transcript(wav_path: str, transcripts_dir: str | None = None) -> str | None:
    """`<name>.TextGrid`, `.ctm`, `.json` or `.wdseg` in `transcripts_dir`, else beside the wav; None if there is
    none."""
    stem = os.path.splitext(os.path.basename(wav_path))[0]
    folders = [transcripts_dir] if transcripts_dir else []
    folders.append(os.path.dirname(wav_path) or ".")
    for folder in folders:
        if not os.path.isdir(folder):
            continue
        found = {name.lower(): name for name in os.listdir(folder)}
        for suffix in TRANSCRIPT_SUFFIXES:
            name = found.get((stem + suffix).lower())
            if name is not None:
                return os.path.join(folder, name)
    return None


def read_transcript(path: str, utterance: str | None = None) -> tuple[list[str], list[tuple[int, int]]]:
    """Words and `[start, end)` frame spans of a word timing file (`emokeras.alignments`: the same reader as
    preparation's).

    Args:
      utterance: for a CTM holding several utterances, whose words (the wav's name).

    Raises:
      PredictionError: an unreadable file, or one with no word.
    """
    try:
        words = alignments.read_alignment(path, utterance=utterance)
        words, spans = alignments.frame_spans(words)
    except (OSError, alignments.AlignmentError) as error:
        raise PredictionError(f"{path}: {error}" if not str(error).startswith(path) else str(error)) from None
    if not words:
        raise PredictionError(f"{path}: no word in the transcript")
    return list(words), list(spans)


class OnnxRunner:
    """`model.onnx` on onnxruntime: `{name: array}` batches in, probabilities `[batch, 4]` out.

    Args:
      path: the `.onnx` file.
      threads: onnxruntime's intra-op threads (None: its default, every core).
    """

    def __init__(self, path: str, threads: int | None = None):
        # Imported here: only this runtime needs onnxruntime, and a SavedModel user need not install it.
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self._inputs = {item.name.split(":")[0]: item.name for item in self._session.get_inputs()}
        self._output = next(item.name for item in self._session.get_outputs()
                            if item.name.split(":")[0] == "probabilities")

    def __call__(self, inputs: dict) -> np.ndarray:
        return self._session.run([self._output], {self._inputs[name]: inputs[name] for name in self._inputs})[0]


class SavedModelRunner:
    """The SavedModel's serving signature through TensorFlow.

    Args:
      path: the SavedModel folder.
      threads: TensorFlow's intra-op threads (None: its default).
    """

    def __init__(self, path: str, threads: int | None = None):
        # Imported here: the ONNX runtime must not load TensorFlow (openSMILE aborts in a process that has).
        import tensorflow as tf

        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        self._tf = tf
        self._serve = tf.saved_model.load(path).signatures[SIGNATURE]

    def __call__(self, inputs: dict) -> np.ndarray:
        return self._serve(**{name: self._tf.constant(value) for name, value in inputs.items()})[
            "probabilities"].numpy()


def _frames_in_process(requests: Iterable) -> Iterable[tuple]:
    """`extract_frames_parallel`'s answers, computed here (only where TensorFlow is not loaded)."""
    for request in requests:
        yield request, *acoustic.extract_or_error(request)


def _empty_frame(class_names, with_error: bool = False) -> pd.DataFrame:
    columns = ["emotion", *class_names] + (["error"] if with_error else [])
    return pd.DataFrame(columns=columns, index=pd.MultiIndex.from_arrays([[], [], []], names=INDEX))


def class_columns(answers: pd.DataFrame) -> list[str]:
    """The probability columns of a recogniser's answers (its model's class names, in order)."""
    return [column for column in answers.columns if column not in ("emotion", "error", "segments",
                                                                    "answered_seconds")]


class Recognizer:
    """An exported emokeras model and how to cut and read recordings for it.

    Build it with `Recognizer.load`.

    Args:
      export_dir: `saved_models/<model>/fold-<k>`.
      metadata: the export's `assets.extra/emokeras.json`.
      runner: `OnnxRunner` or `SavedModelRunner`.
      segmentation: `"window"` or `"speech"`.
      window_seconds, hop_seconds: the fixed windows (window segmentation) and
        the longest segment (speech segmentation).
      batch_size: segments per model call.
      workers: openSMILE worker processes (SavedModel runtime).
      transcripts_dir: where to look first for transcripts (models that read words).
    """

    def __init__(self, export_dir: str, metadata: dict, runner, segmentation: str = "window",
                 window_seconds: float | None = None, hop_seconds: float | None = None, batch_size: int = 32,
                 workers: int = 2, transcripts_dir: str | None = None):
        if segmentation not in SEGMENTATIONS:
            raise ValueError(f"segmentation {segmentation!r}: choose one of {', '.join(SEGMENTATIONS)}")
        self.export_dir = export_dir
        self.metadata = metadata
        self.max_frames = int(metadata.get("max_frames", 700))
        longest = self.max_frames / FRAMES_PER_SECOND
        self.window_seconds = longest if window_seconds is None else float(window_seconds)
        self.hop_seconds = self.window_seconds if hop_seconds is None else float(hop_seconds)
        if not 0 < self.window_seconds <= longest:
            raise ValueError(f"window_seconds {self.window_seconds:g}: the model reads at most {longest:g} s "
                             f"({self.max_frames} frames) of a segment; choose a window in (0, {longest:g}]")
        if not 0 < self.hop_seconds <= self.window_seconds:
            raise ValueError(f"hop_seconds {self.hop_seconds:g}: choose a hop in (0, {self.window_seconds:g}] "
                             "(a longer hop than the window would leave gaps)")
        self.class_names = list(metadata["class_names"])
        self.segmentation = segmentation
        self.batch_size = batch_size
        self.workers = workers
        self.transcripts_dir = transcripts_dir
        self.runtime = "onnx" if isinstance(runner, OnnxRunner) else "savedmodel"
        self._run = runner
        self._encoder = None
        if "word_vectors" in metadata["inputs"]:
            # Imported here: the encoder loads TensorFlow (Hub), which the ONNX path must never import.
            from emokeras.features.lexical import TextEncoder

            handle = metadata.get("encoder_handle")
            if not handle:
                raise FileNotFoundError(f"{export_dir}: the model reads words but its metadata names no text "
                                        "encoder (encoder_handle); export it again with this emokeras")
            self._encoder = TextEncoder(handle)

    @classmethod
    def load(cls, export_dir: str, runtime: str = "auto", threads: int | None = None, **options) -> "Recognizer":
        """Opens an export.

        Args:
          export_dir: `saved_models/<model>/fold-<k>`.
          runtime: `"auto"` (ONNX where the export has `model.onnx`, else the
            SavedModel), `"onnx"` or `"savedmodel"`.
          threads: the runtime's intra-op threads (None: its default).
          **options: the `Recognizer` arguments (segmentation, window_seconds, ...).

        Raises:
          FileNotFoundError: not an export, or `runtime="onnx"` and it has no `model.onnx`.
          ValueError: bad metadata or options.
        """
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime {runtime!r}: choose one of {', '.join(RUNTIMES)}")
        metadata = read_metadata(export_dir)
        onnx_path = os.path.join(export_dir, metadata.get("onnx") or ONNX_MODEL)
        has_onnx = bool(metadata.get("onnx")) and os.path.isfile(onnx_path)
        if runtime == "onnx" and not has_onnx:
            reason = ("it reads transcripts (words), which only the SavedModel serves" if needs_transcript(metadata)
                      else "it was exported before emokeras wrote ONNX; export it again")
            raise FileNotFoundError(f"{export_dir}: no {ONNX_MODEL}: {reason}")
        if runtime == "onnx" or (runtime == "auto" and has_onnx):
            runner = OnnxRunner(onnx_path, threads)
        else:
            runner = SavedModelRunner(export_dir, threads)
        return cls(export_dir, metadata, runner, **options)

    # Segments ---------------------------------------------------------------------------------------------

    def segments_of(self, path: str) -> list[tuple[float, float]]:
        """The `(start, end)` seconds this recogniser answers for `path` (see the module docstring).

        Raises:
          PredictionError: the file cannot be opened.
        """
        try:
            acoustic.check_audio_path(path)
        except acoustic.FeatureError as error:
            raise PredictionError(str(error)) from None
        try:
            total = segmenting.duration(path)
            if needs_transcript(self.metadata):  # one utterance, as trained
                return [(0.0, total)]
            if self.segmentation == "speech":
                return segmenting.speech_segments(path, self.window_seconds)
        except Exception as error:  # soundfile raises several types for bad files
            raise PredictionError(f"{path}: unreadable audio ({type(error).__name__}: {error})") from None
        return segmenting.fixed_windows(total, self.window_seconds, self.hop_seconds)

    # Answers ----------------------------------------------------------------------------------------------

    def predict_file(self, path: str, segments: Sequence[tuple[float, float]] | None = None) -> pd.DataFrame:
        """One row per segment of `path`.

        A segment that cannot be answered (all silence, say) keeps its row,
        with NaN probabilities, no emotion and the reason in `error`.

        Raises:
          PredictionError: the file cannot be answered at all, naming it and the problem.
        """
        answers = self._predict([(os.fspath(path), segments)])
        if "error" in answers and answers["error"].notna().all():
            raise PredictionError("; ".join(answers["error"]))
        return answers

    def predict_files(self, paths: Iterable[str]) -> pd.DataFrame:
        """One row per segment of each file, in order; a file that fails gets one row with its `error`."""
        return self._predict([(os.fspath(path), None) for path in paths])

    def predict_signal(self, signal: np.ndarray, sampling_rate: int, name: str = "<signal>") -> pd.DataFrame:
        """One row per window of a signal in memory (`[samples]` or `[channels, samples]`), indexed under `name`.

        Raises:
          PredictionError: a signal that fails `read_audio`'s checks, naming `name` and the problem.
        """
        if needs_transcript(self.metadata):
            raise PredictionError(f"{name}: the model {self.metadata.get('model')} reads words; give a file and its "
                                  "transcript to predict_file")
        try:
            signal = acoustic.prepared_signal(signal, sampling_rate, name)
        except acoustic.FeatureError as error:
            raise PredictionError(str(error)) from None
        total = signal.shape[0] / acoustic.SAMPLE_RATE
        rows, pieces = [], []
        for start, end in segmenting.fixed_windows(total, self.window_seconds, self.hop_seconds):
            rows.append((name, start, end))
            pieces.append((signal[int(round(start * acoustic.SAMPLE_RATE)):int(round(end * acoustic.SAMPLE_RATE))],
                           f"{name} {acoustic.segment_name(start, end)}"))
        if "tensorflow" in sys.modules:  # openSMILE must run in a worker process
            worker = acoustic._Worker()
            try:
                extracted = [worker.call("signal", piece) for piece in pieces]
            finally:
                worker.close()
        else:
            extracted = [acoustic.signal_frames_or_error(piece) for piece in pieces]
        answers = self._answer(rows, [frames for frames, _ in extracted], [error for _, error in extracted])
        if answers["error"].notna().all():
            raise PredictionError("; ".join(answers["error"]))
        return answers

    def _predict(self, files: list[tuple[str, Sequence | None]]) -> pd.DataFrame:
        """Answers for `(path, segments or None)` pairs, batching segments by length, in bounded memory."""
        requests, rows, failed = [], [], {}
        for path, chosen in files:
            try:
                found = list(chosen) if chosen is not None else self.segments_of(path)
            except PredictionError as error:
                failed[path] = str(error)
                continue
            if not found:
                failed[path] = f"{path}: no segment to answer (no speech found above the energy threshold)"
            whole = chosen is None and len(found) == 1 and found[0][0] == 0  # a short file reads as a whole
            for start, end in found:
                rows.append((path, float(start), float(end)))
                requests.append(path if whole else (path, float(start), float(end)))
        frames_of = (_frames_in_process if "tensorflow" not in sys.modules else
                     lambda items: acoustic.extract_frames_parallel(items, workers=self.workers, progress=False))
        answered = []
        for first in range(0, len(requests), SEGMENTS_IN_FLIGHT):
            extracted = list(frames_of(requests[first:first + SEGMENTS_IN_FLIGHT]))
            answered.append(self._answer(rows[first:first + SEGMENTS_IN_FLIGHT], [item[1] for item in extracted],
                                         [item[2] for item in extracted]))
        if failed:
            answered.append(pd.DataFrame(
                {"emotion": [None] * len(failed), **{name: np.nan for name in self.class_names},
                 "error": list(failed.values())},
                index=pd.MultiIndex.from_tuples([(path, 0.0, np.nan) for path in failed], names=INDEX)))
        if not answered:
            return _empty_frame(self.class_names, with_error=True)
        table = pd.concat(answered)
        order = {path: position for position, (path, _) in enumerate(files)}
        keys = [(order[path], start) for path, start, _ in table.index]
        table = table.iloc[sorted(range(len(keys)), key=keys.__getitem__)]
        table[self.class_names] = table[self.class_names].astype(float)
        return table

    def _answer(self, rows: list[tuple], frames: list, errors: list) -> pd.DataFrame:
        """Runs the model on `frames` in batches of similar length; a row's error keeps it out of the model."""
        probabilities = np.full((len(rows), len(self.class_names)), np.nan, np.float32)
        messages = list(errors)
        ready = [k for k, (features, error) in enumerate(zip(frames, errors)) if error is None]
        if needs_transcript(self.metadata):
            for k in ready:
                try:
                    probabilities[k] = self._run(self._transcript_inputs(rows[k][0], frames[k]))[0]
                except PredictionError as error:
                    messages[k] = str(error)
        else:
            ready.sort(key=lambda k: frames[k].shape[0])
            for first in range(0, len(ready), self.batch_size):
                batch = ready[first:first + self.batch_size]
                probabilities[batch] = self._run(self._acoustic_inputs([frames[k] for k in batch]))
        emotions = [None if np.isnan(p).any() else self.class_names[int(np.argmax(p))] for p in probabilities]
        table = pd.DataFrame(probabilities, columns=self.class_names,
                             index=pd.MultiIndex.from_tuples(rows, names=INDEX) if rows else
                             _empty_frame(self.class_names).index)
        table.insert(0, "emotion", emotions)
        table["error"] = messages
        return table

    def _acoustic_inputs(self, frames: list[np.ndarray]) -> dict:
        """A padded batch, as the data pipeline pads it: at most `max_frames` frames each, lengths beside."""
        frames = [f[:self.max_frames] for f in frames]
        lengths = np.array([f.shape[0] for f in frames], np.int32)
        batch = np.zeros((len(frames), int(lengths.max()), acoustic.NUM_FEATURES), np.float32)
        for row, features in enumerate(frames):
            batch[row, :features.shape[0]] = features
        return {"frames": batch, "num_frames": lengths}

    def _transcript_inputs(self, wav_path: str, frames: np.ndarray) -> dict:
        """A batch of one for a model that reads words, prepared as training prepared its inputs."""
        # Imported here: only models that read words need TensorFlow's parser (their runtime loaded it already).
        import tensorflow as tf

        from emokeras import data
        from emokeras.preparation import fit_word_spans

        transcript = find_transcript(wav_path, self.transcripts_dir)
        if transcript is None:
            raise PredictionError(f"{wav_path}: the model {self.metadata.get('model')} reads words, and no "
                                  f"transcript was found (<name>.wdseg or <name>.json beside the wav or in "
                                  "--transcripts)")
        words, spans = read_transcript(transcript, os.path.splitext(os.path.basename(wav_path))[0])
        try:
            words, spans = fit_word_spans(transcript, words, spans, frames.shape[0])
        except acoustic.FeatureError as error:  # the alignment is for other audio
            raise PredictionError(f"{wav_path}: {error}") from None
        vectors = self._encoder.encode([words])[0] if self._encoder else np.zeros((len(words), 1), np.float32)
        try:
            with data.reported_as_unreadable():
                parsed = data.parse_example({
                    "frames": tf.constant(frames),
                    "word_spans": tf.constant(np.asarray(spans, np.int32).reshape(-1, 2)),
                    "word_vectors": tf.constant(vectors), "words": tf.constant(words, tf.string),
                    "label": tf.constant(0, tf.int64), "utterance_id": tf.constant(wav_path)},
                    max_frames=self.max_frames)
        except data.UnreadableUtterance as error:  # no word in the first 7 s
            raise PredictionError(str(error)) from None
        return {name: tf.cast(parsed[name], spec["dtype"]).numpy()[np.newaxis]
                for name, spec in self.metadata["inputs"].items()}

    # Summaries --------------------------------------------------------------------------------------------

    @staticmethod
    def summarize(answers: pd.DataFrame) -> pd.DataFrame:
        """One row per file: the duration-weighted mean of its answered segments' probabilities, and its argmax.

        Each segment weighs its length in seconds, so overlapping windows
        count their shared seconds twice; a file with no answered segment gets
        NaN probabilities (and its first error, where the answers hold one).
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
        summary = pd.DataFrame([row for _, row in rows], index=pd.Index([path for path, _ in rows], name="file"))
        return summary
