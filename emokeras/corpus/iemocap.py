"""Reader for IEMOCAP_full_release as distributed (and the demo corpus, which shares its layout).

Layout read, per session `Session{1..5}/`:

- `dialog/EmoEvaluation/<dialog>.txt`: one line per utterance,
  `[start - end]<TAB>utterance_id<TAB>label<TAB>[V, A, D]`.
- `dialog/transcriptions/<dialog>.txt`: `utterance_id [start-end]: text`.
- `sentences/ForcedAlignment/<dialog>/<utterance_id>.wdseg`: Sphinx word
  segmentation, `SFrm EFrm SegAScr Word` with inclusive 10 ms frame indices.
- `sentences/wav/<dialog>/<utterance_id>.wav`.

Pure Python: no TensorFlow, no audio decoding.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import re
from typing import Iterator

from emokeras.labels import CLASS_NAMES, IEMOCAP_OTHER_LABELS, IEMOCAP_TO_CLASS

logger = logging.getLogger(__name__)

NUM_SESSIONS = 5

# `[start - end]<TAB>id<TAB>label<TAB>[V, A, D]`; the [V, A, D] part is not read, and may be missing.
_EMO_LINE = re.compile(r"^\[\s*([\d.]+)\s*-\s*([\d.]+)\s*\]\s+(\S+)\s+([^\s\[]+)(?:\s+\[.*)?\s*$")
_TRANSCRIPT_LINE = re.compile(r"^(\S+)\s+\[\s*([\d.]+)\s*-\s*([\d.]+)\s*\]:\s?(.*)$")
_UTTERANCE_ID = re.compile(r"^Ses(\d+)[FM]_.+_([FM])[0-9X]+$")
_VARIANT = re.compile(r"\(\d+\)$")


@dataclasses.dataclass(frozen=True)
class Utterance:
    """One labelled, aligned utterance.

    `word_spans` are `(start_frame, end_frame)` pairs, end exclusive, at
    100 frames/s relative to the utterance wav; `words` are lower-cased with
    pronunciation variants (`WORD(2)`) folded and non-speech tokens removed.
    """

    utterance_id: str
    session: int
    speaker: str  # e.g. "Ses01_M": from the utterance id's last part
    gender: str  # "F" or "M"
    label: int  # index into CLASS_NAMES
    wav_path: str
    words: tuple[str, ...]
    word_spans: tuple[tuple[int, int], ...]
    transcript: str = ""

    @property
    def label_name(self) -> str:
        return CLASS_NAMES[self.label]


@dataclasses.dataclass
class Corpus:
    """The utterances read, and the ids skipped per reason (for the report)."""

    utterances: list[Utterance]
    skipped: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    def __iter__(self) -> Iterator[Utterance]:
        return iter(self.utterances)

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, index):
        return self.utterances[index]


def parse_utterance_id(utterance_id: str) -> tuple[int, str, str, str]:
    """Returns `(session, speaker, gender, dialog)` for an IEMOCAP utterance id.

    The speaker is the utterance id's last part (`..._M003` is the male
    speaker), not the dialog name's letter, which names who wore the markers.
    Dialogs such as `Ses05M_script01_1b` are why nothing here slices at fixed
    positions.
    """
    match = _UTTERANCE_ID.match(utterance_id)
    if not match:
        raise ValueError(f"not an IEMOCAP utterance id: {utterance_id!r}")
    session = int(match.group(1))
    gender = match.group(2)
    dialog = utterance_id.rsplit("_", 1)[0]
    return session, f"Ses{session:02d}_{gender}", gender, dialog


def is_non_speech(token: str) -> bool:
    """Silence, sentence boundaries and noise markers are not words (ARCHITECTURE.md, Word spans)."""
    return token.startswith("<") or (token.startswith("++") and token.endswith("++"))


def normalise_word(token: str) -> str:
    """A transcript token as the encoder sees it: lower case, without a pronunciation variant (`WORD(2)`)."""
    return _VARIANT.sub("", token).lower()


def read_wdseg(path: str) -> tuple[tuple[str, ...], tuple[tuple[int, int], ...]]:
    """Reads a Sphinx `.wdseg` word segmentation into words and end-exclusive spans.

    Raises:
      ValueError: naming the file and line when a row cannot be read.
    """
    words, spans = [], []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line_number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields or fields[0] == "SFrm" or fields[0].startswith("Total"):
                continue
            if len(fields) != 4:
                raise ValueError(f"{path}:{line_number}: expected 'SFrm EFrm SegAScr Word', got {line.strip()!r}")
            try:
                start, end = int(fields[0]), int(fields[1])
            except ValueError:
                raise ValueError(f"{path}:{line_number}: frame numbers are not integers: {line.strip()!r}") from None
            if end < start:
                raise ValueError(f"{path}:{line_number}: end frame {end} before start frame {start}")
            token = fields[3]
            if is_non_speech(token):
                continue
            words.append(normalise_word(token))
            spans.append((start, end + 1))  # Sphinx end frames are inclusive
    return tuple(words), tuple(spans)


def read_emo_evaluation(path: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Returns the `(utterance_id, label)` pairs of one EmoEvaluation file, and its utterance lines (those that
    start with `[`) that cannot be read, as `<file>:<line>: <text>`."""
    pairs, unreadable = [], []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            match = _EMO_LINE.match(line)
            if match:
                pairs.append((match.group(3), match.group(4)))
            elif line.startswith("["):
                unreadable.append(f"{path}:{number}: {line.strip()!r}")
    return pairs, unreadable


def read_transcriptions(path: str) -> dict[str, str]:
    """Returns `{utterance_id: text}`; lines without the `id [start-end]: text` form are ignored."""
    texts = {}
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            match = _TRANSCRIPT_LINE.match(line.strip())
            if match:
                texts[match.group(1)] = match.group(4).strip()
    return texts


def _text_files(folder: str) -> list[str]:
    if not os.path.isdir(folder):
        return []
    # macOS copies of IEMOCAP carry `._<name>.txt` resource forks; they are not text.
    return sorted(
        os.path.join(folder, name)
        for name in os.listdir(folder)
        if name.endswith(".txt") and not name.startswith(".")
    )


def read_iemocap(root: str, sessions=tuple(range(1, NUM_SESSIONS + 1))) -> Corpus:
    """Reads the 4-class utterances of an IEMOCAP_full_release folder.

    Args:
      root: the `IEMOCAP_full_release` folder (holding `Session1` ... `Session5`).
      sessions: the sessions to read.

    Returns:
      A `Corpus`: utterances in session, dialog, id order, and the ids skipped
      per reason. Utterances without a wav or an alignment, with no words in
      their alignment, with an unreadable alignment or with an unknown label
      are skipped with a warning naming them; other IEMOCAP labels (`fru`,
      `sur`, ...) are dropped as the 4-class task does, and counted. An
      utterance listed more than once is kept once if every listing gives it
      the same label, and not at all if they disagree; either way it is
      named and counted. An utterance line that cannot be read is named by its
      file and line, and counted.

    Raises:
      FileNotFoundError: a session folder is missing (the folds need all five), or `root` holds none.
    """
    session_dirs = {s: os.path.join(root, f"Session{s}") for s in sessions}
    missing = [d for d in session_dirs.values() if not os.path.isdir(d)]
    if len(missing) == len(session_dirs):
        raise FileNotFoundError(
            f"{root}: no Session1..Session5 folders; expected the IEMOCAP_full_release folder"
        )
    if missing:
        raise FileNotFoundError(f"{', '.join(missing)}: missing; each of the ten folds holds out one session and "
                                "trains on the other four, so all five are needed")
    utterances: list[Utterance] = []
    skipped: dict[str, list[str]] = collections.defaultdict(list)
    for session_dir in session_dirs.values():
        transcripts: dict[str, str] = {}
        for path in _text_files(os.path.join(session_dir, "dialog", "transcriptions")):
            transcripts.update(read_transcriptions(path))
        listings: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)  # id → [(label, file)]
        for path in _text_files(os.path.join(session_dir, "dialog", "EmoEvaluation")):
            pairs, unreadable = read_emo_evaluation(path)
            for line in unreadable:
                logger.warning("%s: not '[start - end] id label [V, A, D]'", line)
                skipped["unreadable evaluation line"].append(line)
            for utterance_id, raw_label in pairs:
                listings[utterance_id].append((raw_label, path))
        for utterance_id, listed in listings.items():
            raw_label, path = listed[0]
            if len(listed) > 1:
                labels = sorted({label for label, _ in listed})
                where = ", ".join(sorted({os.path.basename(p) for _, p in listed}))
                if len(labels) > 1:
                    logger.warning("%s is listed %d times (%s) with different labels (%s): skipped",
                                   utterance_id, len(listed), where, ", ".join(labels))
                    skipped["conflicting duplicate labels"].append(utterance_id)
                    continue
                logger.warning("%s is listed %d times (%s): kept once", utterance_id, len(listed), where)
                skipped["duplicate listing"] += [utterance_id] * (len(listed) - 1)
            record = _read_utterance(session_dir, utterance_id, raw_label, transcripts, path, skipped)
            if record is not None:
                utterances.append(record)
    for reason, ids in skipped.items():
        if reason != "other label":
            logger.warning("skipped %d utterance(s), %s: %s", len(ids), reason, ", ".join(ids[:20])
                           + (" ..." if len(ids) > 20 else ""))
    return Corpus(utterances=utterances, skipped=dict(skipped))


def _read_utterance(session_dir, utterance_id, raw_label, transcripts, source, skipped):
    if raw_label in IEMOCAP_OTHER_LABELS:
        skipped["other label"].append(utterance_id)
        return None
    if raw_label not in IEMOCAP_TO_CLASS:
        logger.warning("%s: %s has unknown label %r", source, utterance_id, raw_label)
        skipped["unknown label"].append(utterance_id)
        return None
    try:
        session, speaker, gender, dialog = parse_utterance_id(utterance_id)
    except ValueError as error:
        logger.warning("%s: %s", source, error)
        skipped["bad utterance id"].append(utterance_id)
        return None
    if "XX" in utterance_id:  # IEMOCAP's transcript-only turns have no wav
        skipped["no wav"].append(utterance_id)
        return None
    wav_path = os.path.join(session_dir, "sentences", "wav", dialog, utterance_id + ".wav")
    if not os.path.isfile(wav_path):
        skipped["no wav"].append(utterance_id)
        return None
    wdseg_path = os.path.join(session_dir, "sentences", "ForcedAlignment", dialog, utterance_id + ".wdseg")
    if not os.path.isfile(wdseg_path):
        skipped["no alignment"].append(utterance_id)
        return None
    try:
        words, spans = read_wdseg(wdseg_path)
    except (ValueError, OSError) as error:
        logger.warning("%s", error)
        skipped["unreadable alignment"].append(utterance_id)
        return None
    if not words:
        skipped["no words"].append(utterance_id)
        return None
    return Utterance(
        utterance_id=utterance_id,
        session=session,
        speaker=speaker,
        gender=gender,
        label=IEMOCAP_TO_CLASS[raw_label],
        wav_path=wav_path,
        words=words,
        word_spans=spans,
        transcript=transcripts.get(utterance_id, ""),
    )


def count_table(utterances) -> str:
    """The paper's Table 1 view: utterances per speaker and class, with totals."""
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for utterance in utterances:
        counts[utterance.speaker][utterance.label] += 1
    header = ["speaker", "utterances", *CLASS_NAMES]
    rows = []
    total = collections.Counter()
    for speaker in sorted(counts, key=lambda s: (s[:5], s[-1] != "F")):
        row = counts[speaker]
        total.update(row)
        rows.append([speaker, sum(row.values()), *(row[i] for i in range(len(CLASS_NAMES)))])
    rows.append(["total", sum(total.values()), *(total[i] for i in range(len(CLASS_NAMES)))])
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    lines = ["  ".join(str(x).rjust(w) if i else str(x).ljust(w) for i, (x, w) in enumerate(zip(line, widths)))
             for line in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
