"""The model's inputs from frames, as training's pipeline made them.

Padded batches of frames (models that read audio alone), or one utterance with its transcript's words, spans and word
vectors (models that read words).

Transcripts are read by `emokeras.data.alignments`, the reader preparation uses: `<name>.TextGrid`, `.ctm`, `.json` or
`.wdseg`, found in a transcripts folder or beside the wav.
"""

from __future__ import annotations

import os

import numpy as np

from emokeras.data import alignments
from emokeras.data.features.acoustic import NUM_FEATURES

TRANSCRIPT_SUFFIXES = (".TextGrid", ".ctm", ".json", ".wdseg")


class TranscriptError(ValueError):
    """A file's transcript is missing or cannot be used; the message names the file and the problem."""


def acoustic_batch(frames: list[np.ndarray], max_frames: int) -> dict:
    """A padded batch, as the data pipeline pads it: at most `max_frames` frames each, lengths beside."""
    frames = [f[:max_frames] for f in frames]
    lengths = np.array([f.shape[0] for f in frames], np.int32)
    batch = np.zeros((len(frames), int(lengths.max()), NUM_FEATURES), np.float32)
    for row, features in enumerate(frames):
        batch[row, :features.shape[0]] = features
    return {"frames": batch, "num_frames": lengths}


def find_transcript(wav_path: str, transcripts_dir: str | None = None) -> str | None:
    """`<name>.TextGrid`, `.ctm`, `.json` or `.wdseg` in `transcripts_dir`, else beside the wav, or None."""
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
    """Words and `[start, end)` frame spans of a word timing file.

    Args:
      path: the word timing file (`emokeras.data.alignments.read_alignment`).
      utterance: for a CTM holding several utterances, whose words (the wav's name).

    Raises:
      TranscriptError: an unreadable file, or one with no word.
    """
    try:
        words, spans = alignments.frame_spans(alignments.read_alignment(path, utterance=utterance))
    except (OSError, alignments.AlignmentError) as error:
        raise TranscriptError(str(error) if str(error).startswith(path) else f"{path}: {error}") from None
    if not words:
        raise TranscriptError(f"{path}: no word in the transcript")
    return list(words), list(spans)


class TranscriptInputs:
    """A batch of one for a model that reads words.

    Its transcript found and read, its words encoded by the text encoder it was trained with, truncated and clipped as
    training's pipeline does.

    Args:
      metadata: the export's metadata (inputs, encoder handle, max_frames, model).
      transcripts_dir: where to look first for transcripts.
    """

    def __init__(self, metadata: dict, transcripts_dir: str | None = None):
        # Imported here: the encoder loads TensorFlow (Hub), which the ONNX path must never import.
        from emokeras.data.features.lexical import TextEncoder

        self.metadata, self.transcripts_dir = metadata, transcripts_dir
        self._encoder = None
        if "word_vectors" in metadata["inputs"]:
            handle = metadata.get("encoder_handle")
            if not handle:
                raise FileNotFoundError("the model reads words but its metadata names no text encoder "
                                        "(encoder_handle); export it again with this emokeras")
            self._encoder = TextEncoder(handle)

    def __call__(self, wav_path: str, frames: np.ndarray) -> dict:
        """The inputs for `wav_path`, whose frames are `frames`.

        Raises:
          TranscriptError: no transcript, an unreadable one, one for other audio, or no word in the frames read.
        """
        # Imported here: only models that read words need TensorFlow's parser (their runtime loaded it already).
        import tensorflow as tf

        from emokeras.data import pipelines

        transcript = find_transcript(wav_path, self.transcripts_dir)
        if transcript is None:
            raise TranscriptError(f"{wav_path}: the model {self.metadata.get('model')} reads words, and no "
                                  f"transcript was found (<name> with {', '.join(TRANSCRIPT_SUFFIXES)} beside the "
                                  "wav or in --transcripts)")
        words, spans = read_transcript(transcript, os.path.splitext(os.path.basename(wav_path))[0])
        try:
            words, spans = alignments.fit_to_frames(transcript, words, spans, frames.shape[0])
        except alignments.AlignmentError as error:  # the alignment is for other audio
            raise TranscriptError(f"{wav_path}: {error}") from None
        vectors = self._encoder.encode([words])[0] if self._encoder else np.zeros((len(words), 1), np.float32)
        try:
            with pipelines.reported_as_unreadable():
                parsed = pipelines.parse_example({
                    "frames": tf.constant(frames),
                    "word_spans": tf.constant(np.asarray(spans, np.int32).reshape(-1, 2)),
                    "word_vectors": tf.constant(vectors), "words": tf.constant(words, tf.string),
                    "label": tf.constant(0, tf.int64), "utterance_id": tf.constant(wav_path)},
                    max_frames=int(self.metadata.get("max_frames", 700)))
        except pipelines.UnreadableUtterance as error:  # no word in the first 7 s
            raise TranscriptError(str(error)) from None
        return {name: tf.cast(parsed[name], spec["dtype"]).numpy()[np.newaxis]
                for name, spec in self.metadata["inputs"].items()}
