"""The records every corpus reader returns (ARCHITECTURE.md, Corpora).

Nothing after preparation knows which corpus it was. Pure Python: no TensorFlow, no audio decoding.

A reader turns a corpus on disk into a `Corpus`: its classes in label order, its folds (made of groups), its
utterances, and what it skipped, by reason. Groups are what folds are made of (an IEMOCAP speaker, an MSP-Podcast
split, a bucket of speakers); shards are how the utterances are written, each holding one or more groups.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from collections.abc import Iterator

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
# A reason that is counted but not named one by one: the corpus's own labels outside the chosen classes.
OTHER_CLASS = "other label"


@dataclasses.dataclass(frozen=True)
class Utterance:
    """One labelled utterance.

    Attributes:
      id: unique within the corpus.
      audio: its audio file.
      speaker: who speaks ("Unknown" is a value, not an absence).
      group: the group its folds take it from.
      label: its class name.
      words: the transcript's words, or None (no transcript).
      spans: per word, `(start, end)` seconds, or None for a word without times; None for no timings at all.
      start, end: the utterance's segment of `audio` in seconds (None: the whole file).
      alignment: the file its word timings came from (for messages).
    """

    id: str
    audio: str
    speaker: str
    group: str
    label: str
    words: tuple[str, ...] | None = None
    spans: tuple | None = None
    start: float | None = None
    end: float | None = None
    alignment: str | None = None

    @property
    def request(self):
        """What the feature extractor reads: the path, or `(path, start, end)` for a segment."""
        if self.start is None and self.end is None:
            return self.audio
        return (self.audio, self.start or 0.0, self.end)


@dataclasses.dataclass(frozen=True)
class Fold:
    """One fold: per split.

    The groups it reads (`train`, `validation`, `test`, and further test splits such as MSP-Podcast's `test2`).
    """

    name: str
    splits: dict

    def to_json(self) -> dict:
        """The fold as a manifest records it."""
        return {"name": self.name, **{split: list(groups) for split, groups in self.splits.items()}}

    @classmethod
    def from_json(cls, entry: dict) -> Fold:
        """The fold a manifest recorded (`to_json`)."""
        return cls(str(entry["name"]), {split: tuple(groups) for split, groups in entry.items() if split != "name"})


@dataclasses.dataclass
class Corpus:
    """What a reader read.

    Attributes:
      name: the corpus (`iemocap`, `msp-podcast`, ...).
      classes: class names in label order (label id = index).
      folds: the folds, in order (`--fold k` is the k-th).
      utterances: every utterance kept, in the order shards are written.
      skipped: per reason, the ids (or files) not kept.
      shards: `(shard name, groups)` in writing order.
      group_kind: what a group is, for the count table's header ("speaker", "split", "speakers").
      release_size: `(found, expected)` where the release has a known size, for a warning when they differ.
    """

    name: str
    classes: tuple
    folds: tuple
    utterances: list
    skipped: dict = dataclasses.field(default_factory=dict)
    shards: tuple = ()
    group_kind: str = "speaker"
    release_size: tuple | None = None

    def __iter__(self) -> Iterator[Utterance]:
        return iter(self.utterances)

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, index):
        return self.utterances[index]

    @property
    def groups(self) -> list[str]:
        """Every group, in shard order."""
        return [group for _, groups in self.shards for group in groups]

    @property
    def has_words(self) -> bool:
        """Every utterance has a transcript with at least one word (models that read words can run)."""
        return bool(self.utterances) and all(u.words for u in self.utterances)

    @property
    def has_timings(self) -> bool:
        """Every utterance has word timings (speaker-frame and word-level models can run)."""
        return self.has_words and all(u.spans is not None for u in self.utterances)

    def speakers(self) -> dict[str, list[str]]:
        """Per group, its speakers, sorted."""
        found = collections.defaultdict(set)
        for utterance in self.utterances:
            found[utterance.group].add(utterance.speaker)
        return {group: sorted(found[group]) for group in self.groups}


def class_choice(asked, codes: dict[str, str], default: tuple[str, ...], corpus: str) -> tuple[str, ...]:
    """The classes to keep, in label order: `asked` (class names or the corpus's codes), or `default`.

    Args:
      asked: what `--classes` named (names or codes, in the order wanted), or None.
      codes: the corpus's code → class name.
      default: the classes kept when none are asked for.
      corpus: the corpus's name, for messages.

    Raises:
      ValueError: a name or code the corpus does not have, or one named twice.
    """
    if not asked:
        return tuple(default)
    names = set(codes.values())
    chosen = []
    for item in asked:
        name = codes.get(item, codes.get(item.upper(), item.lower()))
        if name not in names:
            raise ValueError(f"--classes: {item!r} is not a class of {corpus}; it has "
                             + ", ".join(f"{code} ({value})" if code != value else value
                                         for code, value in codes.items()))
        if name in chosen:
            raise ValueError(f"--classes names {name} twice")
        chosen.append(name)
    return tuple(chosen)


def assign_speaker_folds(utterances: list[Utterance], count: int) -> tuple[list[Utterance], tuple, tuple]:
    """Speaker-exclusive folds for a corpus without partitions.

    Speakers are dealt into `count` groups (`speakers-0` ...): the speaker with most utterances first, each to the
    group with fewest utterances so far (ties: the lower group), speakers with equal counts by name, so the
    assignment depends on the data alone. Fold `k` tests on group `k`, validates on group `k + 1` (mod `count`)
    and trains on the rest: test and validation speakers never train.

    Returns:
      The utterances with their groups, the folds, and the shards (one per group).

    Raises:
      ValueError: fewer speakers than groups, or fewer than three groups.
    """
    if count < 3:
        raise ValueError(f"--speaker_folds {count}: at least 3 (a fold needs training, validation and test "
                         "speakers)")
    per_speaker = collections.Counter(u.speaker for u in utterances)
    if len(per_speaker) < count:
        raise ValueError(f"{len(per_speaker)} speakers cannot make {count} speaker-exclusive folds; choose "
                         f"--speaker_folds {max(3, len(per_speaker))} or fewer")
    sizes = [0] * count
    assigned = {}
    for speaker, size in sorted(per_speaker.items(), key=lambda item: (-item[1], item[0])):
        group = min(range(count), key=lambda k: (sizes[k], k))
        assigned[speaker] = group
        sizes[group] += size
    names = [f"speakers-{k}" for k in range(count)]
    regrouped = [dataclasses.replace(u, group=names[assigned[u.speaker]]) for u in utterances]
    regrouped.sort(key=lambda u: assigned[u.speaker])  # stable: each shard keeps the reader's order
    folds = tuple(Fold(str(k), {"train": tuple(names[j] for j in range(count) if j not in (k, (k + 1) % count)),
                                "validation": (names[(k + 1) % count],), "test": (names[k],)})
                  for k in range(count))
    return regrouped, folds, tuple((name, (name,)) for name in names)


def count_table(corpus: Corpus, utterances=None) -> str:
    """The paper's Table 1 view.

    Utterances per group and class, with totals (and each group's speakers, where a group holds several).
    """
    utterances = corpus.utterances if utterances is None else utterances
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    speakers: dict[str, set] = collections.defaultdict(set)
    for utterance in utterances:
        counts[utterance.group][utterance.label] += 1
        speakers[utterance.group].add(utterance.speaker)
    several = any(len(found) > 1 for found in speakers.values())
    header = [corpus.group_kind, *(["speakers"] if several else []), "utterances", *corpus.classes]
    rows, total = [], collections.Counter()
    for group in [g for g in corpus.groups if g in counts]:
        row = counts[group]
        total.update(row)
        rows.append([group, *([len(speakers[group])] if several else []), sum(row.values()),
                     *(row[name] for name in corpus.classes)])
    all_speakers = len({u.speaker for u in utterances})
    rows.append(["total", *([all_speakers] if several else []), sum(total.values()),
                 *(total[name] for name in corpus.classes)])
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    lines = ["  ".join(str(x).rjust(w) if i else str(x).ljust(w) for i, (x, w) in enumerate(zip(line, widths)))
             for line in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def warn_skipped(skipped: dict) -> None:
    """One warning per reason, naming up to 20 of what it skipped (not for labels outside the classes)."""
    for reason, ids in skipped.items():
        if reason != OTHER_CLASS and ids:
            logger.warning("skipped %d utterance(s), %s: %s", len(ids), reason, ", ".join(ids[:20])
                           + (" ..." if len(ids) > 20 else ""))
