"""Reader for your own corpus, listed in a CSV manifest in SpeechBrain's convention (pure Python: no TensorFlow).

    ID,wav,spk_id,emo,split,text,alignment,start,end
    s01_001,audio/s01_001.wav,s01,angry,train,I told you twice,align/s01_001.TextGrid,,
    s01_002,audio/session1.wav,s01,neutral,validation,,align/session1.ctm,12.5,17.25

Required columns: `ID` (unique), `wav` (or `file_name`), `spk_id`, `emo`. Optional: `duration` (read, not
needed), `split` (`train`, `validation`, `test`: then one fold, those three; without it, speaker-exclusive folds),
`text` (the transcript), `alignment` (a file of word timings: MFA TextGrid, CTM, WhisperX or emokeras JSON,
`.wdseg`; see `emokeras.data.alignments`), `start` and `end` (the utterance is that segment of a longer recording, in
seconds). Paths are relative to the CSV's folder (a leading `$data_root` stands for it too), or absolute.
Alignment times count from the start of the wav; for a segment, the words inside it are kept, timed from its
start. For a CTM holding many utterances, the lines of the row's ID (else of the wav's name) are read.

The classes are the distinct `emo` values, sorted, unless `--classes` names them (and their order). A missing
required column, an unknown split, a duplicate ID, a segment that ends before it starts, or a listed class without
utterances is one error naming the column or the row, before any work. A row whose wav is missing is skipped and
named; so is one whose alignment cannot be read (file and line named), or, where the manifest has alignments, one
without.
"""

from __future__ import annotations

import collections
import csv
import logging
import math
import os

from emokeras.data import alignments
from emokeras.data.corpus.records import (
    OTHER_CLASS,
    SPLITS,
    Corpus,
    Fold,
    Utterance,
    assign_speaker_folds,
    warn_skipped,
)

logger = logging.getLogger(__name__)

REQUIRED = ("ID", "spk_id", "emo")
AUDIO_COLUMNS = ("wav", "file_name")
DATA_ROOT = "$data_root"


def _resolve(path: str, folder: str) -> str:
    if path.startswith(DATA_ROOT):
        path = folder + path[len(DATA_ROOT):]
    return path if os.path.isabs(path) else os.path.join(folder, path)


def _seconds(value: str, column: str, where: str) -> float | None:
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{where}: {column} {value!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{where}: {column} {value!r} must be a finite number of seconds, not negative")
    return seconds


def read_manifest(path: str, classes=None, speaker_folds: int = 5, word_timings: bool = True) -> Corpus:
    """Reads a manifest CSV (see the module docstring).

    Raises:
      FileNotFoundError: no such CSV.
      ValueError: a problem in the manifest itself, naming the column or the row.
    """
    header, rows, audio_column = _read_rows(path)
    has_split = "split" in header
    _check_rows(path, rows, audio_column, has_split)
    classes = _chosen_classes(path, classes, sorted({row["emo"] for row, _ in rows}))
    if has_split:
        present = {row["split"] for row, _ in rows if row["emo"] in classes}
        absent = [split for split in SPLITS if split not in present]
        if absent:
            raise ValueError(f"{path}: the split column has no {', '.join(absent)} utterance of the chosen classes; "
                             "a fold trains on train, keeps the epoch best on validation and tests on test")

    skipped: dict[str, list[str]] = collections.defaultdict(list)
    utterances, ctm_files = [], {}
    folder = os.path.dirname(os.path.abspath(path))
    timed = word_timings and "alignment" in header
    for row, number in rows:
        if row["emo"] not in classes:
            skipped[OTHER_CLASS].append(row["ID"])
            continue
        audio = _resolve(row[audio_column], folder)
        if not os.path.isfile(audio):
            logger.warning("%s:%d: %s: no audio at %s", path, number, row["ID"], audio)
            skipped["no audio"].append(row["ID"])
            continue
        start, end = _seconds(row.get("start"), "start", ""), _seconds(row.get("end"), "end", "")
        words = alignments.transcript_words(row["text"]) if row.get("text") else None
        spans, source = None, None
        if timed:
            source = _resolve(row["alignment"], folder) if row["alignment"] else None
            problem, words, spans = _timed_words(f"{path}:{number}", row, source, audio, start, end, ctm_files)
            if problem:
                skipped[problem].append(row["ID"])
                continue
        group = row["split"] if has_split else ""
        utterances.append(Utterance(id=row["ID"], audio=audio, speaker=row["spk_id"] or "Unknown", group=group,
                                    label=row["emo"], words=words or None, spans=spans, start=start, end=end,
                                    alignment=source))
    warn_skipped(skipped)
    if not utterances:
        raise ValueError(f"{path}: no utterance could be read")
    if has_split:
        utterances.sort(key=lambda u: SPLITS.index(u.group))  # stable: each shard keeps the manifest's order
        folds = (Fold("0", {split: (split,) for split in SPLITS}),)
        shards = tuple((split, (split,)) for split in SPLITS)
        kind = "split"
    else:
        utterances, folds, shards = assign_speaker_folds(utterances, speaker_folds)
        kind = "speakers"
    return Corpus(name="manifest", classes=classes, folds=folds, utterances=utterances, skipped=dict(skipped),
                  shards=shards, group_kind=kind)


def _read_rows(path: str) -> tuple[list[str], list[tuple[dict, int]], str]:
    """The CSV's header, its rows with their line numbers, and the audio column; refuses a missing column."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such manifest (a CSV with ID, wav, spk_id, emo)")
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip() for name in reader.fieldnames or []]
        rows = [({key.strip(): (value or "").strip() for key, value in row.items() if key is not None}, number)
                for number, row in enumerate(reader, start=2)]
    missing = [column for column in REQUIRED if column not in header]
    audio_column = next((column for column in AUDIO_COLUMNS if column in header), None)
    if audio_column is None:
        missing.insert(1, "wav (or file_name)")
    if missing:
        raise ValueError(f"{path}: no column {', '.join(missing)}; a manifest needs ID, wav (or file_name), spk_id "
                         f"and emo (its header: {', '.join(header)})")
    return header, rows, audio_column


def _check_rows(path: str, rows, audio_column: str, has_split: bool) -> None:
    """Refuses the first row without an ID, audio or emotion, a repeated ID, an unknown split or a bad segment."""
    first_line: dict[str, int] = {}
    for row, number in rows:
        where = f"{path}:{number}"
        if not row["ID"]:
            raise ValueError(f"{where}: no ID")
        if row["ID"] in first_line:
            raise ValueError(f"{where}: ID {row['ID']!r} is also on line {first_line[row['ID']]}; IDs must be "
                             "unique")
        first_line[row["ID"]] = number
        for column in (audio_column, "emo"):
            if not row[column]:
                raise ValueError(f"{where}: no {column}")
        if has_split and row["split"] not in SPLITS:
            raise ValueError(f"{where}: split {row['split']!r} is not one of {', '.join(SPLITS)}")
        start, end = _seconds(row.get("start"), "start", where), _seconds(row.get("end"), "end", where)
        if start is not None and end is not None and end <= start:
            raise ValueError(f"{where}: the segment ends at {end} s, not after its start at {start} s")


def _chosen_classes(path: str, classes, emotions: list[str]) -> tuple[str, ...]:
    """`classes` checked against the manifest's `emotions`, or all of them."""
    if not classes:
        return tuple(emotions)
    unknown = [name for name in classes if name not in emotions]
    if unknown:
        raise ValueError(f"--classes: no utterance of {', '.join(unknown)} in {path} (its emo values: "
                         f"{', '.join(emotions)})")
    if len(set(classes)) != len(classes):
        raise ValueError(f"--classes names a class twice: {','.join(classes)}")
    return tuple(classes)


def _timed_words(where: str, row: dict, source: str | None, audio: str, start, end, ctm_files: dict) -> tuple:
    """`(None, words, spans)` of a row's timed words in its segment, or `(why it is skipped, None, None)`."""
    if source is None:
        return "no alignment", None, None
    try:
        timed_words = _alignment(source, row["ID"], os.path.splitext(os.path.basename(audio))[0], row["spk_id"],
                                 ctm_files)
    except (alignments.AlignmentError, OSError) as error:
        logger.warning("%s: %s: %s", where, row["ID"], error)
        return "unreadable alignment", None, None
    if start is not None or end is not None:
        timed_words = alignments.segment(timed_words, start or 0.0, end)
    if not any(word.timed for word in timed_words):
        return "no words", None, None
    return (None, tuple(word.text for word in timed_words),
            tuple((word.start, word.end) if word.timed else None for word in timed_words))


def _alignment(path: str, utterance: str, recording: str, speaker: str, ctm_files: dict) -> list:
    if path.lower().endswith(".ctm"):  # one file may serve many rows: read it once
        if path not in ctm_files:
            if not os.path.isfile(path):
                raise FileNotFoundError(f"{path}: no such word timing file")
            ctm_files[path] = alignments.read_ctm(path)
        return alignments.ctm_words(ctm_files[path], path, utterance, recording)
    return alignments.read_alignment(path, speaker=speaker)
