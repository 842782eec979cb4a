"""Reader for CREMA-D as released (pure Python: no TensorFlow, no audio decoding).

Layout read: `AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav` (e.g. `1001_DFA_ANG_XX.wav`) and, where present,
`VideoDemographics.csv` (`ActorID,Age,Sex,Race,Ethnicity`). Actors are the speakers. Emotions ANG, DIS, FEA, HAP,
NEU, SAD are anger, disgust, fear, happiness, neutral, sadness (all six by default, in that order). Each of the
twelve sentence codes gives the utterance's transcript; there are no word timings, so only models that read
frames alone (B-ACO-1, B-ACO-1+attention) or words alone (B-LEX) can train on it.

No partition ships with CREMA-D: the folds are speaker-exclusive (`records.assign_speaker_folds`). The release has 7,442
clips, one of which (1076_MTI_SAD_XX.wav) holds no samples: preparation skips such a file, naming it.
"""

from __future__ import annotations

import collections
import csv
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

CODES = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happiness", "NEU": "neutral", "SAD": "sadness"}
DEFAULT_CLASSES = tuple(CODES.values())
RELEASE_SIZE = 7442
SENTENCES = {
    "IEO": "It's eleven o'clock",
    "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before",
    "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}
_NAME = re.compile(r"^(\d+)_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


def demographics(root: str) -> dict[str, str]:
    """`{actor: sex}` from VideoDemographics.csv (empty where the file is absent)."""
    path = os.path.join(root, "VideoDemographics.csv")
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return {row["ActorID"].strip(): (row.get("Sex") or "").strip() for row in csv.DictReader(handle)
                if row.get("ActorID")}


def read_crema_d(root: str, classes=None, speaker_folds: int = 5) -> Corpus:
    """Reads CREMA-D (see the module docstring) into `speaker_folds` speaker-exclusive folds.

    Raises:
      FileNotFoundError: no `AudioWAV` folder under `root`.
    """
    classes = class_choice(classes, CODES, DEFAULT_CLASSES, "CREMA-D")
    folder = os.path.join(root, "AudioWAV")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{root}: no AudioWAV folder; expected the CREMA-D release folder")
    skipped: dict[str, list[str]] = collections.defaultdict(list)
    utterances, found = [], 0
    for name in sorted(os.listdir(folder)):
        stem, suffix = os.path.splitext(name)
        if suffix.lower() != ".wav" or name.startswith("."):
            continue
        found += 1
        match = _NAME.match(stem)
        if not match or match.group(2) not in SENTENCES:
            logger.warning("%s: not <actor>_<sentence>_<emotion>_<level>.wav", os.path.join(folder, name))
            skipped["unknown file name"].append(stem)
            continue
        actor, sentence, emotion = match.group(1), match.group(2), match.group(3)
        if emotion not in CODES:
            skipped["unknown label"].append(stem)
            continue
        if CODES[emotion] not in classes:
            skipped[OTHER_CLASS].append(stem)
            continue
        utterances.append(Utterance(id=stem, audio=os.path.join(folder, name), speaker=actor, group="",
                                    label=CODES[emotion], words=alignments.transcript_words(SENTENCES[sentence])))
    warn_skipped(skipped)
    if not utterances:
        raise ValueError(f"{folder}: no clip of the chosen classes")
    utterances, folds, shards = assign_speaker_folds(utterances, speaker_folds)
    return Corpus(name="crema-d", classes=classes, folds=folds, utterances=utterances, skipped=dict(skipped),
                  shards=shards, group_kind="speakers", release_size=(found, RELEASE_SIZE))
