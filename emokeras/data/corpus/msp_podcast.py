"""Reader for an MSP-Podcast release folder (pure Python: no TensorFlow, no audio decoding).

Layout read:

- `Labels/labels_consensus.csv` (older releases: `labels_concensus.csv`), header
  `FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set`, file names with `.wav`;
- `Partitions.txt`, lines such as `Train; MSP-PODCAST_0001_0008.wav` (where the labels lack a split, and to count
  `Test3`, whose audio has no labels);
- `Audios/<name>.wav`; `Transcripts/<stem>.txt`; `ForceAligned/<stem>.TextGrid` (a `words` tier).

Classes: EmoClass codes A anger, S sadness, H happiness, U surprise, F fear, D disgust, C contempt, N neutral; O
(other) and X (no agreement) are never kept. Default: A, H, N, S, in that order (anger, happiness, neutral,
sadness); `--classes A,S,H,U,F,D,C,N` gives the eight classes of the Odyssey 2024 challenge, in that order.

One fold, the release's partition: Train trains, Development (older releases: Validation) validates, Test1 tests,
and Test2 is evaluated beside it (`test2`). `SpkrID` may be `Unknown`: a value, as any other.

Word timings come from `ForceAligned/`; where the release holds that folder, an utterance without its TextGrid, or
with a bad one, is skipped and counted (`word_timings=False` reads transcripts alone and keeps them).
"""

from __future__ import annotations

import collections
import csv
import logging
import os

from emokeras.data import alignments
from emokeras.data.corpus.records import OTHER_CLASS, Corpus, Fold, Utterance, class_choice, warn_skipped

logger = logging.getLogger(__name__)

CODES = {"A": "anger", "S": "sadness", "H": "happiness", "U": "surprise", "F": "fear", "D": "disgust",
         "C": "contempt", "N": "neutral"}
UNCLASSED = frozenset({"O", "X"})
DEFAULT_CLASSES = ("anger", "happiness", "neutral", "sadness")
LABEL_FILES = ("labels_consensus.csv", "labels_concensus.csv")
# The release's split names → the groups of its one fold; older releases call Development "Validation".
SPLITS = {"Train": "Train", "Development": "Development", "Validation": "Development", "Test1": "Test1",
          "Test2": "Test2"}
GROUPS = ("Train", "Development", "Test1", "Test2")
UNLABELLED_SPLITS = ("Test3",)
REQUIRED = ("FileName", "EmoClass", "SpkrID")


def _partitions(root: str) -> dict[str, str]:
    """`{file name: split}` from Partitions.txt (empty if there is none)."""
    path = os.path.join(root, "Partitions.txt")
    found = {}
    if not os.path.isfile(path):
        return found
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            split, sep, name = line.partition(";")
            if not sep:
                logger.warning("%s:%d: not '<split>; <file>': %r", path, number, line.strip())
                continue
            found[name.strip()] = split.strip()
    return found


def _labels_path(root: str) -> str:
    """The release's labels file, the newer name first."""
    for name in LABEL_FILES:
        path = os.path.join(root, "Labels", name)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f"{root}: no Labels/{LABEL_FILES[0]} (or {LABEL_FILES[1]}); expected an "
                            "MSP-Podcast release folder")


def read_msp_podcast(root: str, classes=None, word_timings: bool = True) -> Corpus:
    """Reads an MSP-Podcast release (see the module docstring).

    Raises:
      FileNotFoundError: no labels file under `root/Labels`.
      ValueError: a labels file without the columns it needs, or a class MSP-Podcast does not have.
    """
    classes = class_choice(classes, CODES, DEFAULT_CLASSES, "MSP-Podcast")
    labels_path = _labels_path(root)
    partitions = _partitions(root)
    aligned_dir = os.path.join(root, "ForceAligned")
    use_timings = word_timings and os.path.isdir(aligned_dir)
    skipped: dict[str, list[str]] = collections.defaultdict(list)
    by_group: dict[str, list[Utterance]] = {group: [] for group in GROUPS}
    listed = set()
    with open(labels_path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in REQUIRED if column not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{labels_path}: no column {', '.join(missing)} (header: {reader.fieldnames})")
        for number, row in enumerate(reader, start=2):
            name = (row["FileName"] or "").strip()
            listed.add(name)
            stem = os.path.splitext(name)[0]
            code = (row["EmoClass"] or "").strip()
            split = SPLITS.get((row.get("Split_Set") or partitions.get(name) or "").strip())
            if split is None:
                logger.warning("%s:%d: %s has no known split (%r)", labels_path, number, name,
                               row.get("Split_Set") or partitions.get(name))
                skipped["no split"].append(stem)
                continue
            if code in UNCLASSED or (code in CODES and CODES[code] not in classes):
                skipped[OTHER_CLASS].append(stem)
                continue
            if code not in CODES:
                logger.warning("%s:%d: %s has unknown EmoClass %r", labels_path, number, name, code)
                skipped["unknown label"].append(stem)
                continue
            audio = os.path.join(root, "Audios", name)
            if not os.path.isfile(audio):
                skipped["no audio"].append(stem)
                continue
            words, spans, source = _transcript(root, stem, use_timings, skipped)
            if words is False:
                continue
            speaker = (row["SpkrID"] or "").strip() or "Unknown"
            by_group[split].append(Utterance(id=stem, audio=audio, speaker=speaker, group=split,
                                             label=CODES[code], words=words, spans=spans, alignment=source))
    unlabelled = [os.path.splitext(name)[0] for name, split in partitions.items()
                  if split in UNLABELLED_SPLITS and name not in listed]
    if unlabelled:
        skipped["Test3 (no labels)"] = unlabelled
    warn_skipped({reason: ids for reason, ids in skipped.items() if reason != "Test3 (no labels)"})
    groups = tuple(group for group in GROUPS if by_group[group])
    for needed in ("Train", "Development", "Test1"):
        if not by_group[needed]:
            raise ValueError(f"{labels_path}: no utterance of the chosen classes in {needed}; the fold trains on "
                             "Train, validates on Development and tests on Test1")
    splits = {"train": ("Train",), "validation": ("Development",), "test": ("Test1",)}
    if by_group["Test2"]:
        splits["test2"] = ("Test2",)
    return Corpus(name="msp-podcast", classes=classes, folds=(Fold("0", splits),),
                  utterances=[u for group in groups for u in by_group[group]], skipped=dict(skipped),
                  shards=tuple((group, (group,)) for group in groups), group_kind="split")


def _transcript(root: str, stem: str, use_timings: bool, skipped):
    """`(words, spans, alignment file)` of one utterance; `(False, ...)` if it is skipped (counted)."""
    if use_timings:
        path = os.path.join(root, "ForceAligned", stem + ".TextGrid")
        if not os.path.isfile(path):
            skipped["no alignment"].append(stem)
            return False, None, None
        try:
            words = alignments.read_textgrid(path)
        except (alignments.AlignmentError, OSError) as error:
            logger.warning("%s", error)
            skipped["unreadable alignment"].append(stem)
            return False, None, None
        if not words:
            skipped["no words"].append(stem)
            return False, None, None
        return tuple(w.text for w in words), tuple((w.start, w.end) for w in words), path
    path = os.path.join(root, "Transcripts", stem + ".txt")
    if not os.path.isfile(path):
        return None, None, None
    with open(path, encoding="utf-8", errors="replace") as handle:
        words = alignments.transcript_words(handle.read())
    return words or None, None, None
