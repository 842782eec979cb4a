"""`python -m emokeras.predict --model saved_models/B-ACO-1/fold-3 a.wav b.wav`: emotions from wav files.

For each wav: ComParE frames from openSMILE (in worker processes, as at
preparation), the exported model's serving signature, and the predicted
emotion with the four class probabilities, as a table or `--format json`.
Like training, the model reads at most the first 700 frames (7 s) and 30
words of an utterance (`emokeras.data.parse_example`).

An acoustic-only model (B-ACO-1, or a multi-view student) needs nothing but
the audio. A model that reads words or speaker frames also needs each file's
transcript with word timings, found beside the wav or in `--transcripts`
under the wav's name:

  <name>.wdseg   IEMOCAP's forced alignment (Sphinx: SFrm EFrm SegAScr Word, 10 ms frames)
  <name>.json    {"words": [{"word": "oh", "start": 0.12, "end": 0.35}, ...]}, times in seconds

Its words are encoded with the text encoder the model was trained with
(named in the SavedModel's `assets.extra/emokeras.json`).

A file that cannot be answered (unreadable audio, a sample rate below
16 kHz, a clip shorter than one 60 ms window, a missing or bad transcript)
gets an error naming the file and the problem; the other files still get
their answers, and the exit status is 1.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys

import numpy as np
from absl import flags

from emokeras.labels import CLASS_NAMES

logger = logging.getLogger(__name__)
FLAGS = flags.FLAGS  # absl's flag values, defined by define_flags()

FRAMES_PER_SECOND = 100
TRANSCRIPT_SUFFIXES = (".wdseg", ".json")


class PredictionError(Exception):
    """One file that cannot be answered; the message names the file and the problem."""


@dataclasses.dataclass
class Prediction:
    """The answer for one file: `emotion` and `probabilities` (by class name), or `error`."""

    file: str
    emotion: str | None = None
    probabilities: dict[str, float] | None = None
    error: str | None = None


def read_metadata(model_dir: str) -> dict:
    """`assets.extra/emokeras.json` of an exported model.

    Raises:
      FileNotFoundError: `model_dir` is not a SavedModel folder emokeras wrote.
      ValueError: its metadata is not readable JSON, or lacks what predict needs.
    """
    from emokeras.export import METADATA

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
    """`<name>.wdseg` or `<name>.json` in `transcripts_dir`, else beside the wav; None if there is none."""
    stem = os.path.splitext(os.path.basename(wav_path))[0]
    folders = [transcripts_dir] if transcripts_dir else []
    folders.append(os.path.dirname(wav_path))
    for folder in folders:
        for suffix in TRANSCRIPT_SUFFIXES:
            candidate = os.path.join(folder, stem + suffix)
            if os.path.isfile(candidate):
                return candidate
    return None


def read_json_transcript(path: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Words and `[start, end)` frame spans of a `{"words": [{"word", "start", "end"}, ...]}` file (seconds).

    Non-speech tokens (`<sil>`, `++breath++`) are dropped, as from a `.wdseg`.

    Raises:
      PredictionError: naming the file and the entry that cannot be read.
    """
    from emokeras.corpus.iemocap import is_non_speech, normalise_word

    try:
        with open(path, encoding="utf-8") as f:
            entries = json.load(f)["words"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise PredictionError(f"{path}: not a transcript of the form "
                              f'{{"words": [{{"word": ..., "start": s, "end": s}}]}} ({error})') from None
    words, spans = [], []
    for index, entry in enumerate(entries):
        try:
            token, start, end = str(entry["word"]), float(entry["start"]), float(entry["end"])
        except (KeyError, TypeError, ValueError):
            raise PredictionError(f"{path}: word {index} needs 'word', 'start' and 'end' (seconds): {entry!r}") \
                from None
        if end <= start or start < 0:
            raise PredictionError(f"{path}: word {index} ({token!r}) ends at {end} s, not after its start {start} s")
        if is_non_speech(token):
            continue
        first = int(round(start * FRAMES_PER_SECOND))
        words.append(normalise_word(token))
        spans.append((first, max(first + 1, int(round(end * FRAMES_PER_SECOND)))))
    return words, spans


def read_transcript(path: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Words and frame spans of a `.wdseg` or `.json` transcript.

    Raises:
      PredictionError: an unreadable transcript, or one with no word.
    """
    from emokeras.corpus.iemocap import read_wdseg

    if path.endswith(".json"):
        words, spans = read_json_transcript(path)
    else:
        try:
            words, spans = map(list, read_wdseg(path))
        except (OSError, ValueError) as error:
            raise PredictionError(str(error)) from None
    if not words:
        raise PredictionError(f"{path}: no word in the transcript")
    return words, spans


class Predictor:
    """An exported emokeras model and what it needs to read wav files.

    Args:
      model_dir: `saved_models/<model>/fold-<k>`.
      transcripts_dir: where to look for transcripts first (else beside each wav).
      workers: openSMILE worker processes.
    """

    def __init__(self, model_dir: str, transcripts_dir: str | None = None, workers: int = 2):
        from emokeras.export import load_serving

        self.metadata = read_metadata(model_dir)
        self.model_dir = model_dir
        self.transcripts_dir = transcripts_dir
        self.workers = workers
        self._serve = load_serving(model_dir)
        self._encoder = None
        if "word_vectors" in self.metadata["inputs"]:
            from emokeras.features.lexical import TextEncoder

            handle = self.metadata.get("encoder_handle")
            if not handle:
                raise FileNotFoundError(f"{model_dir}: the model reads words but its metadata names no text "
                                        "encoder (encoder_handle); export it again with this emokeras")
            self._encoder = TextEncoder(handle)

    def _inputs(self, wav_path: str, frames: np.ndarray) -> dict:
        """The serving signature's batch of one, prepared as training prepared its inputs."""
        import tensorflow as tf

        from emokeras import data
        from emokeras.features.acoustic import FeatureError
        from emokeras.preparation import fit_word_spans

        if needs_transcript(self.metadata):
            transcript = find_transcript(wav_path, self.transcripts_dir)
            if transcript is None:
                raise PredictionError(f"{wav_path}: the model {self.metadata.get('model')} reads words, and no "
                                      f"transcript was found (<name>.wdseg or <name>.json beside the wav or in "
                                      "--transcripts)")
            words, spans = read_transcript(transcript)
            try:
                words, spans = fit_word_spans(transcript, words, spans, frames.shape[0])
            except FeatureError as error:  # the alignment is for other audio
                raise PredictionError(f"{wav_path}: {error}") from None
        else:  # parse_example reads words; a model without word inputs never sees this placeholder
            words, spans = ["<none>"], [(0, frames.shape[0])]
        dimension = self._encoder.dimension if self._encoder else 1
        vectors = self._encoder.encode([words])[0] if self._encoder else np.zeros((len(words), dimension), np.float32)
        try:
            with data.reported_as_unreadable():
                parsed = data.parse_example({
                    "frames": tf.constant(frames),
                    "word_spans": tf.constant(np.asarray(spans, np.int32).reshape(-1, 2)),
                    "word_vectors": tf.constant(vectors), "words": tf.constant(words, tf.string),
                    "label": tf.constant(0, tf.int64), "utterance_id": tf.constant(wav_path)})
        except data.UnreadableUtterance as error:  # no word in the first 7 s
            raise PredictionError(str(error)) from None
        inputs = {}
        for name, spec in self.metadata["inputs"].items():
            inputs[name] = tf.cast(parsed[name], spec["dtype"])[tf.newaxis]
        return inputs

    def predict(self, wav_paths) -> list[Prediction]:
        """One `Prediction` per path, in order; a file that fails gets its error, the others their answers."""
        from emokeras.features.acoustic import extract_frames_parallel

        answers = []
        wav_paths = [os.fspath(path) for path in wav_paths]
        for path, frames, error in extract_frames_parallel(wav_paths, workers=self.workers, progress=False):
            try:
                if error is not None:
                    raise PredictionError(error)
                probabilities = self._serve(**self._inputs(path, frames))["probabilities"].numpy()[0]
            except PredictionError as failure:
                answers.append(Prediction(path, error=str(failure)))
                continue
            answers.append(Prediction(path, emotion=CLASS_NAMES[int(np.argmax(probabilities))],
                                      probabilities={name: float(p) for name, p in zip(CLASS_NAMES, probabilities)}))
        return answers


def format_table(predictions: list[Prediction]) -> str:
    """A fixed-width table: file, emotion, the four probabilities; `error: ...` for a file that failed."""
    width = max([len("file")] + [len(p.file) for p in predictions])
    lines = [f"{'file':<{width}}  {'emotion':<9}  " + "  ".join(f"{name:>9}" for name in CLASS_NAMES)]
    for prediction in predictions:
        if prediction.error is not None:
            # The file column names the file already.
            message = prediction.error.removeprefix(f"{prediction.file}: ")
            lines.append(f"{prediction.file:<{width}}  error: {message}")
        else:
            lines.append(f"{prediction.file:<{width}}  {prediction.emotion:<9}  "
                         + "  ".join(f"{prediction.probabilities[name]:>9.4f}" for name in CLASS_NAMES))
    return "\n".join(lines) + "\n"


def format_json(predictions: list[Prediction]) -> str:
    """A JSON list with one object per file: `file` and `emotion` and `probabilities`, or `file` and `error`."""
    return json.dumps([{key: value for key, value in dataclasses.asdict(p).items() if value is not None}
                       for p in predictions], indent=2) + "\n"


def main(argv):
    from absl import app

    paths = argv[1:]
    if not paths:
        raise app.UsageError("give one or more wav files: python -m emokeras.predict --model DIR a.wav b.wav")
    try:
        predictor = Predictor(FLAGS.model, FLAGS.transcripts, FLAGS.workers)
    except (FileNotFoundError, ValueError) as error:
        logger.error("%s", error)
        sys.exit(2)
    predictions = predictor.predict(paths)
    sys.stdout.write(format_json(predictions) if FLAGS.format == "json" else format_table(predictions))
    failed = [p for p in predictions if p.error is not None]
    if failed:
        print(f"{len(failed)} of {len(predictions)} files could not be answered", file=sys.stderr)
        sys.exit(1)


def define_flags():
    flags.DEFINE_string("model", None, "An exported model folder, e.g. saved_models/B-ACO-1/fold-3.", required=True)
    flags.DEFINE_string("transcripts", None, "Where to look first for <name>.wdseg or <name>.json transcripts "
                        "(models that read words); otherwise beside each wav.")
    flags.DEFINE_enum("format", "table", ["table", "json"], "Output format.")
    flags.DEFINE_integer("workers", 2, "openSMILE worker processes.", lower_bound=1)


if __name__ == "__main__":
    from emokeras.cli import run_command

    run_command(main, define_flags)
