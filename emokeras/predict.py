"""`python -m emokeras.predict --model saved_models/B-ACO-1/fold-3 a.wav b.wav`: emotions over whole recordings.

A thin command over `emokeras.Recognizer` (emokeras/serving/recognizer.py says how
recordings are cut, batched and run). Prints one row per segment (file,
start and end in seconds, the emotion and the four probabilities) and, where
a file has several segments, one summary row per file (the duration-weighted
mean of its segments' probabilities); `--format json` gives the same as one
object per file, `--format csv` the segment rows.

An acoustic-only model (B-ACO-1, or a multi-view student) needs nothing but
the audio, and runs on onnxruntime without TensorFlow when its export holds
`model.onnx`. A model that reads words or speaker frames also needs each
file's transcript with word timings, beside the wav or in `--transcripts`
under the wav's name:

  <name>.TextGrid  a Montreal Forced Aligner TextGrid (its words tier)
  <name>.ctm       NIST CTM (<file> <channel> <start> <duration> <word>), lines of <file> = <name>
  <name>.json      WhisperX's output, or {"words": [{"word": "oh", "start": 0.12, "end": 0.35}, ...]} (seconds)
  <name>.wdseg     IEMOCAP's forced alignment (Sphinx: SFrm EFrm SegAScr Word, 10 ms frames)

A file that cannot be answered (unreadable audio, a sample rate below
16 kHz, a clip shorter than one 60 ms window, a missing or bad transcript)
gets an error naming the file and the problem; the other files still get
their answers, and the exit status is 1.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
from absl import app, flags

from emokeras import quiet
from emokeras.cli import run_command
from emokeras.files import OutputError
from emokeras.serving.recognizer import RUNTIMES, SEGMENTATIONS, Recognizer, class_columns
from emokeras.serving.runtimes import read_metadata, uses_tensorflow

FLAGS = flags.FLAGS  # absl's flag values, defined by define_flags()


def _seconds(value) -> str:
    return "" if pd.isna(value) else f"{value:.2f}"


def format_table(answers: pd.DataFrame) -> str:
    """Fixed-width rows: file, start, end, emotion, the four probabilities; `error: ...` for a row that failed.

    Files with more than one segment are summarised below, one row each.
    """
    names = class_columns(answers)
    files = answers.index.get_level_values("file")
    width = max([len("file")] + [len(path) for path in files])
    header = f"{'file':<{width}}  {'start':>8}  {'end':>8}  {'emotion':<9}  " + "  ".join(
        f"{name:>9}" for name in names)
    lines = [header]
    for (path, start, end), row in answers.iterrows():
        where = f"{path:<{width}}  {_seconds(start):>8}  {_seconds(end):>8}"
        if isinstance(row.get("error"), str):
            error = " / ".join(part.strip() for part in row["error"].splitlines() if part.strip())  # one row
            lines.append(f"{where}  error: {error.removeprefix(f'{path}: ')}")  # the file column names it
        else:
            lines.append(f"{where}  {row['emotion']:<9}  " + "  ".join(f"{row[name]:>9.4f}" for name in names))
    summary = Recognizer.summarize(answers)
    several = summary[summary["segments"] > 1]
    if len(several):
        lines += ["", "per file (duration-weighted mean of its segments):",
                  f"{'file':<{width}}  {'seconds':>8}  {'emotion':<9}  " + "  ".join(f"{n:>9}" for n in names)]
        for path, row in several.iterrows():
            if pd.isna(row["emotion"]):
                lines.append(f"{path:<{width}}  {'':>8}  no segment answered")
            else:
                lines.append(f"{path:<{width}}  {row['answered_seconds']:>8.2f}  {row['emotion']:<9}  "
                             + "  ".join(f"{row[name]:>9.4f}" for name in names))
    return "\n".join(lines) + "\n"


def _probabilities(row, names) -> dict | None:
    values = [row[name] for name in names]
    return None if any(np.isnan(values)) else {name: float(value) for name, value in zip(names, values)}


def format_json(answers: pd.DataFrame) -> str:
    """One object per file: `file`, `emotion`, `probabilities` (the summary) and its `segments`; or `error`."""
    summary = Recognizer.summarize(answers)
    names = class_columns(answers)
    listed = []
    for path, row in summary.iterrows():
        entry = {"file": path}
        if pd.isna(row["emotion"]):
            error = row.get("error")
            entry["error"] = error if isinstance(error, str) else f"{path}: no segment answered"
        else:
            entry.update(emotion=row["emotion"], probabilities=_probabilities(row, names))
        segments = []
        for (_, start, end), segment in answers.xs(path, level="file", drop_level=False).iterrows():
            if pd.isna(end):
                continue
            item = {"start": float(start), "end": float(end)}
            if isinstance(segment.get("error"), str):
                item["error"] = segment["error"]
            else:
                item.update(emotion=segment["emotion"], probabilities=_probabilities(segment, names))
            segments.append(item)
        if segments:
            entry["segments"] = segments
        listed.append(entry)
    return json.dumps(listed, indent=2) + "\n"


def _write(text: str) -> None:
    """Writes the answers to standard output.

    Raises:
      BrokenPipeError: the reader has gone (the caller ends quietly, as Unix tools do).
      OutputError: standard output cannot take them (a full disk), in one line.
    """
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as error:
        raise OutputError(f"cannot write to standard output: {error.strerror or error}") from None


def main(argv):
    """Answers the recordings of `argv` and prints or writes the table."""
    paths = argv[1:]
    if not paths:
        raise app.UsageError("give one or more wav files: python -m emokeras.predict --model DIR a.wav b.wav")
    if sys.stdout is None:
        raise OutputError("standard output is closed: nowhere to write the answers")
    if uses_tensorflow(read_metadata(FLAGS.model), FLAGS.runtime):
        quiet.start(tensorflow=True)  # loaded quietly now, rather than loudly by the runtime
    with Recognizer.load(FLAGS.model, runtime=FLAGS.runtime, segmentation=FLAGS.segmentation,
                         window_seconds=FLAGS.window_seconds, hop_seconds=FLAGS.hop_seconds,
                         batch_size=FLAGS.batch_size, workers=FLAGS.workers,
                         transcripts_dir=FLAGS.transcripts) as recognizer:
        answers = recognizer.predict_files(paths)
    if FLAGS.format == "json":
        _write(format_json(answers))
    elif FLAGS.format == "csv":
        _write(answers.to_csv())
    else:
        _write(format_table(answers))
    failed = Recognizer.summarize(answers)["emotion"].isna()
    if failed.any():
        print(f"{int(failed.sum())} of {len(failed)} files could not be answered", file=sys.stderr)
        return 1
    return 0


def define_flags():
    """Defines the command's flags."""
    flags.DEFINE_string("model", None, "An exported model folder, e.g. saved_models/B-ACO-1/fold-3.", required=True)
    flags.DEFINE_string("transcripts", None, "Where to look first for <name>.wdseg or <name>.json transcripts "
                        "(models that read words); otherwise beside each wav.")
    flags.DEFINE_enum("format", "table", ["table", "json", "csv"], "Output format.")
    flags.DEFINE_enum("runtime", "auto", list(RUNTIMES), "auto: model.onnx on onnxruntime where the export has it "
                      "(no TensorFlow), else the SavedModel.")
    flags.DEFINE_enum("segmentation", "window", list(SEGMENTATIONS), "window: fixed windows; speech: stretches of "
                      "speech found by their energy, silences skipped.")
    flags.DEFINE_float("window_seconds", None, "Segment length (and the longest speech segment); default: the "
                       "7 s the model was trained on.", lower_bound=0.06)
    flags.DEFINE_float("hop_seconds", None, "Seconds between window starts; default: the window (no overlap).",
                       lower_bound=0.01)
    flags.DEFINE_integer("batch_size", 32, "Segments per model call (batched by length; answers do not change).",
                         lower_bound=1)
    flags.DEFINE_integer("workers", 1, "openSMILE worker processes; with 1 on the ONNX runtime, openSMILE runs in "
                         "this process.", lower_bound=1)


def run():
    """Runs the command on `sys.argv`."""
    run_command(main, define_flags)


if __name__ == "__main__":
    run()
