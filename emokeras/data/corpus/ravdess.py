"""Reader for RAVDESS's audio-only speech (pure Python: no TensorFlow, no audio decoding).

Layout read: `Actor_XX/` folders anywhere under the root (as the release's zips unpack, e.g.
`Audio_Speech_Actors_01-24/Actor_01/`), files named `MM-VV-EE-II-SS-RR-AA.wav`: modality (03 audio-only), vocal
channel (01 speech, 02 song), emotion, intensity, statement, repetition, actor. Audio-only speech is kept; songs
and audio-visual files are counted. Emotions 01 neutral, 02 calm, 03 happiness, 04 sadness, 05 anger, 06 fear,
07 disgust, 08 surprise (all eight by default, in that order). Statements 01 "Kids are talking by the door" and
02 "Dogs are sitting by the door" give the transcript; there are no word timings. Actors are the speakers (odd
male, even female); the folds are speaker-exclusive (`records.assign_speaker_folds`). Audio is 48 kHz: preparation
resamples it to 16 kHz. The release holds 1,440 such files.
"""

from __future__ import annotations

import collections
import logging
import os
import re

from emokeras.data import alignments
from emokeras.data.corpus.records import (
    OTHER_CLASS,
    Corpus,
    Utterance,
    assign_speaker_folds,
    class_choice,
    warn_skipped,
)

logger = logging.getLogger(__name__)

CODES = {"01": "neutral", "02": "calm", "03": "happiness", "04": "sadness", "05": "anger", "06": "fear",
         "07": "disgust", "08": "surprise"}
DEFAULT_CLASSES = tuple(CODES.values())
STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
RELEASE_SIZE = 1440
_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
_ACTOR_FOLDER = re.compile(r"^Actor_(\d+)$")


def read_ravdess(root: str, classes=None, speaker_folds: int = 5) -> Corpus:
    """Reads RAVDESS's audio-only speech under `root` (see the module docstring).

    Raises:
      FileNotFoundError: no `Actor_XX` folder under `root`.
    """
    classes = class_choice(classes, CODES, DEFAULT_CLASSES, "RAVDESS")
    files = []
    for folder, subfolders, names in os.walk(root):
        subfolders.sort()
        if _ACTOR_FOLDER.match(os.path.basename(folder)):
            files += [os.path.join(folder, name) for name in sorted(names) if name.lower().endswith(".wav")]
    if not files:
        raise FileNotFoundError(f"{root}: no Actor_XX folder with wav files; expected RAVDESS's "
                                "Audio_Speech_Actors_01-24 (unpacked)")
    skipped: dict[str, list[str]] = collections.defaultdict(list)
    utterances, seen = [], {}
    for path in files:
        stem = os.path.splitext(os.path.basename(path))[0]
        match = _NAME.match(stem)
        if not match:
            logger.warning("%s: not MM-VV-EE-II-SS-RR-AA.wav", path)
            skipped["unknown file name"].append(stem)
            continue
        modality, channel, emotion, _, statement, _, actor = match.groups()
        if channel == "02":
            skipped["song"].append(stem)
            continue
        if modality != "03":
            skipped["not audio-only"].append(stem)
            continue
        if stem in seen:
            logger.warning("%s: the same file as %s: kept once", path, seen[stem])
            skipped["duplicate file"].append(stem)
            continue
        seen[stem] = path
        if emotion not in CODES or statement not in STATEMENTS:
            skipped["unknown label"].append(stem)
            continue
        if CODES[emotion] not in classes:
            skipped[OTHER_CLASS].append(stem)
            continue
        utterances.append(Utterance(id=stem, audio=path, speaker=f"Actor_{actor}", group="", label=CODES[emotion],
                                    words=alignments.transcript_words(STATEMENTS[statement])))
    warn_skipped(skipped)
    if not utterances:
        raise ValueError(f"{root}: no audio-only speech file of the chosen classes")
    found = len(seen)
    utterances, folds, shards = assign_speaker_folds(utterances, speaker_folds)
    return Corpus(name="ravdess", classes=classes, folds=folds, utterances=utterances, skipped=dict(skipped),
                  shards=shards, group_kind="speakers", release_size=(found, RELEASE_SIZE))
