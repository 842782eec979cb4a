"""Reader for IEMOCAP_full_release as distributed (and the demo corpus, which shares its layout).

Layout read, per session `Session{1..5}/`:

- `dialog/EmoEvaluation/<dialog>.txt`: one line per utterance,
  `[start - end]<TAB>utterance_id<TAB>label<TAB>[V, A, D]`.
- `dialog/transcriptions/<dialog>.txt`: `utterance_id [start-end]: text` (not needed: the words come from the
  alignment).
- `sentences/ForcedAlignment/<dialog>/<utterance_id>.wdseg`: Sphinx word
  segmentation, `SFrm EFrm SegAScr Word` with inclusive 10 ms frame indices.
- `sentences/wav/<dialog>/<utterance_id>.wav`.

Pure Python: no TensorFlow, no audio decoding.
"""

from __future__ import annotations

import collections
import logging
import os
import re

from emokeras.data import alignments
from emokeras.data.corpus.records import OTHER_CLASS, Corpus, Fold, Utterance, class_choice, warn_skipped

logger = logging.getLogger(__name__)

NUM_SESSIONS = 5
NUM_FOLDS = 2 * NUM_SESSIONS
# The standard 4-class IEMOCAP set (ARCHITECTURE.md, IEMOCAP quirks).
STANDARD_SIZE = 5531
# IEMOCAP's categorical labels; `exc` (excitement) is merged into happiness as in the paper and most 4-class
# IEMOCAP work.
CODES = {"ang": "anger", "hap": "happiness", "exc": "happiness", "neu": "neutral", "sad": "sadness",
         "fru": "frustration", "sur": "surprise", "fea": "fear", "dis": "disgust"}
DEFAULT_CLASSES = ("anger", "happiness", "neutral", "sadness")
# Labels without a class: "other" and no agreement.
UNCLASSED = frozenset({"oth", "xxx"})

# `[start - end]<TAB>id<TAB>label<TAB>[V, A, D]`; the [V, A, D] part is not read, and may be missing.
_EMO_LINE = re.compile(r"^\[\s*([\d.]+)\s*-\s*([\d.]+)\s*\]\s+(\S+)\s+([^\s\[]+)(?:\s+\[.*)?\s*$")
_TRANSCRIPT_LINE = re.compile(r"^(\S+)\s+\[\s*([\d.]+)\s*-\s*([\d.]+)\s*\]:\s?(.*)$")
_UTTERANCE_ID = re.compile(r"^Ses(\d+)[FM]_.+_([FM])[0-9X]+$")


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


def speakers_of(session: int) -> tuple[str, str]:
    """The female and male speaker of IEMOCAP session `session`."""
    return f"Ses{session:02d}_F", f"Ses{session:02d}_M"


def session_folds() -> tuple[Fold, ...]:
    """The ten speaker-exclusive folds.

    Fold `f` holds out session `f // 2 + 1`; for even `f` its female speaker validates and its male speaker tests, for
    odd `f` the reverse; the other four sessions train.
    """
    folds = []
    for index in range(NUM_FOLDS):
        session = index // 2 + 1
        female, male = speakers_of(session)
        validation, test = (female, male) if index % 2 == 0 else (male, female)
        train = tuple(speaker for other in range(1, NUM_SESSIONS + 1) if other != session
                      for speaker in speakers_of(other))
        folds.append(Fold(str(index), {"train": train, "validation": (validation,), "test": (test,)}))
    return tuple(folds)


def session_shards() -> tuple:
    """One shard per session, holding its two speakers (`session-<k>`)."""
    return tuple((f"session-{session}", speakers_of(session)) for session in range(1, NUM_SESSIONS + 1))


def read_emo_evaluation(path: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Returns the `(utterance_id, label)` pairs of one EmoEvaluation file, and the lines it cannot read.

    The unreadable lines are utterance lines (those that start with `[`), given as `<file>:<line>: <text>`.
    """
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


def read_iemocap(root: str, classes=None, name: str = "iemocap") -> Corpus:
    """Reads the utterances of an IEMOCAP_full_release folder whose labels are among `classes`.

    Args:
      root: the `IEMOCAP_full_release` folder (holding `Session1` ... `Session5`).
      classes: class names or IEMOCAP codes to keep, in label order; default anger, happiness (with excitement),
        neutral, sadness.
      name: the corpus's name in the records (the demo corpus shares this layout).

    Returns:
      A `Corpus` with the ten session folds: utterances in session, dialog, id order, and the ids skipped per
      reason. Utterances without a wav or an alignment, with no words in their alignment, with an unreadable
      alignment or with an unknown label are skipped with a warning naming them; labels outside the classes are
      counted. An utterance listed more than once is kept once if every listing gives it the same label, and not
      at all if they disagree; either way it is named and counted. An utterance line that cannot be read is named
      by its file and line, and counted.

    Raises:
      FileNotFoundError: a session folder is missing (the folds need all five), or `root` holds none.
      ValueError: a class IEMOCAP does not have.
    """
    classes = class_choice(classes, CODES, DEFAULT_CLASSES, "IEMOCAP")
    session_dirs = {s: os.path.join(root, f"Session{s}") for s in range(1, NUM_SESSIONS + 1)}
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
            record = _read_utterance(session_dir, utterance_id, raw_label, classes, path, skipped)
            if record is not None:
                utterances.append(record)
    warn_skipped(skipped)
    found = len(utterances) + len(skipped.get("no alignment", []))
    return Corpus(name=name, classes=classes, folds=session_folds(), utterances=utterances, skipped=dict(skipped),
                  shards=session_shards(), group_kind="speaker",
                  release_size=(found, STANDARD_SIZE) if name == "iemocap" and classes == DEFAULT_CLASSES else None)


def _read_utterance(session_dir, utterance_id, raw_label, classes, source, skipped):
    if raw_label in UNCLASSED or (raw_label in CODES and CODES[raw_label] not in classes):
        skipped[OTHER_CLASS].append(utterance_id)
        return None
    if raw_label not in CODES:
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
        words = alignments.read_wdseg(wdseg_path)
    except (alignments.AlignmentError, OSError) as error:
        logger.warning("%s", error)
        skipped["unreadable alignment"].append(utterance_id)
        return None
    if not words:
        skipped["no words"].append(utterance_id)
        return None
    return Utterance(id=utterance_id, audio=wav_path, speaker=speaker, group=speaker, label=CODES[raw_label],
                     words=tuple(word.text for word in words), spans=tuple((w.start, w.end) for w in words),
                     alignment=wdseg_path)
