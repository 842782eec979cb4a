"""Word timings from the formats forced aligners and recognisers write.

Read by one module for preparation and prediction alike (pure Python: no TensorFlow, no audio).

    >>> words = read_alignment("utterance.TextGrid")                  # doctest: +SKIP
    >>> words[0]                                                       # doctest: +SKIP
    Word(text='oh', start=0.12, end=0.35, line=14)

Formats, told apart by the file's suffix:

- **MFA TextGrid** (`.TextGrid`), Praat's long and short text formats, UTF-8 or UTF-16: the tier `words`, or
  `<speaker> - words` as MFA writes for several speakers (the speaker's own, or the only one).
- **NIST CTM** (`.ctm`): `<file> <channel> <start> <duration> <word> [<confidence>]` per line, `;;` comments;
  one file may hold many utterances, told apart by `<file>`.
- **WhisperX JSON** (`.json` with `segments`): `segments[].words[]` with `word`, `start`, `end`. WhisperX leaves
  some words without times (numerals such as "1990", symbols): such a word stays in the transcript, with no time
  of its own (`Word.start` and `end` None), and `frame_spans` gives it the stretch between its timed neighbours.
- **emokeras JSON** (`.json` with `words`): `{"words": [{"word": "oh", "start": 0.12, "end": 0.35}, ...]}`.
- **IEMOCAP `.wdseg`**: Sphinx's `SFrm EFrm SegAScr Word` in inclusive 10 ms frames, a summary line at the end.

Times are seconds from the start of the recording. Silence and noise tokens (`""`, `sil`, `sp`, `spn`, `<eps>`,
`<s>`, `</s>`, `<sil>`, `++BREATH++`, ...) are not words; words are lower-cased and a pronunciation variant
(`WORD(2)`) is folded. A file that cannot be read, or a word that ends before it starts, raises `AlignmentError`
naming the file and the line (or the JSON entry).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re

FRAMES_PER_SECOND = 100
SUFFIXES = (".textgrid", ".ctm", ".json", ".wdseg")
SILENCE = frozenset({"", "sil", "sp", "spn", "<eps>"})
_VARIANT = re.compile(r"\(\d+\)$")
_PUNCTUATION = ".,;:!?\"“”‘’«»()[]{}—–-…"
# Seconds are rounded to this before they become frames, so that 0.03 s (3.0000000000000004 frames) is frame 3.
_ROUNDING = 1e-6


class AlignmentError(ValueError):
    """A word timing file that cannot be used; the message names the file and the line or entry."""


@dataclasses.dataclass(frozen=True)
class Word:
    """One spoken word.

    Its text, its start and end in seconds (None for a word given without times), and where the file says so (`line`: a
    line number, or a JSON entry such as `segments[2].words[4]`).
    """

    text: str
    start: float | None
    end: float | None
    line: int | str | None = None

    @property
    def timed(self) -> bool:
        """Whether the word has both a start and an end."""
        return self.start is not None and self.end is not None


def is_silence(token: str) -> bool:
    """Silence, sentence boundaries and noise markers are not words."""
    token = token.strip()
    return token.lower() in SILENCE or token.startswith("<") or (token.startswith("++") and token.endswith("++"))


def normalise(token: str) -> str:
    """A transcript token as the encoder sees it: lower case, without a pronunciation variant (`WORD(2)`)."""
    return _VARIANT.sub("", token.strip()).lower()


def transcript_words(text: str) -> tuple[str, ...]:
    """The words of a plain transcript, as the encoder sees them.

    Split at spaces, punctuation around each word stripped (not inside it: "don't"), lower-cased, silence and noise
    tokens dropped.
    """
    words = []
    for token in text.split():
        if is_silence(token):
            continue
        word = normalise(token.strip(_PUNCTUATION))
        if word:
            words.append(word)
    return tuple(words)


def _word(path: str, text: str, start, end, line) -> Word | None:
    """A checked `Word` (None for silence)."""
    if is_silence(text):
        return None
    if start is not None and end is not None:
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0:
            raise AlignmentError(f"{path}:{line}: {text!r} has times {start} to {end} s")
        if end < start:
            raise AlignmentError(f"{path}:{line}: {text!r} ends at {end} s, before its start at {start} s")
    return Word(normalise(text), start, end, line)


# ---------------------------------------------------------------------------------------------------------- TextGrid

_TEXTGRID_TOKEN = re.compile(r'"((?:[^"]|"")*)"|(<exists>|<absent>)|(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|\[[^\]]*\]')


def _textgrid_tokens(path: str) -> list[tuple[object, int]]:
    """The values of a TextGrid in order, with their line numbers: strings, numbers and <exists>.

    The long format's labels (`xmin =`, `item [1]:`) carry no value, so both formats give the same stream.
    """
    with open(path, "rb") as handle:
        raw = handle.read()
    encoding = "utf-16" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as error:
        raise AlignmentError(f"{path}: not a text file in UTF-8 or UTF-16 ({error})") from None
    tokens = []
    for match in _TEXTGRID_TOKEN.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        if match.group(1) is not None:
            tokens.append((match.group(1).replace('""', '"'), line))
        elif match.group(2) is not None:
            tokens.append((match.group(2), line))
        elif match.group(3) is not None:
            tokens.append((float(match.group(3)), line))
    return tokens


def read_textgrid_tiers(path: str) -> dict[str, list[tuple[float, float, str, int]]]:
    """Every interval tier of a TextGrid: `{name: [(start, end, text, line), ...]}`."""
    tokens = _textgrid_tokens(path)
    position = 0

    def take(kind, what):
        nonlocal position
        if position >= len(tokens):
            raise AlignmentError(f"{path}: ends where {what} was expected (a TextGrid cut short?)")
        value, line = tokens[position]
        if not isinstance(value, kind):
            raise AlignmentError(f"{path}:{line}: expected {what}, found {value!r}")
        position += 1
        return value, line

    if len(tokens) < 2 or tokens[0][0] != "ooTextFile" or tokens[1][0] != "TextGrid":
        raise AlignmentError(f"{path}: not a Praat TextGrid (no 'ooTextFile' / 'TextGrid' header)")
    position = 2
    take(float, "the grid's start")
    take(float, "the grid's end")
    exists, line = take(str, "<exists>")
    if exists != "<exists>":
        return {}
    count, _ = take(float, "the number of tiers")
    tiers = {}
    for _ in range(int(count)):
        kind, line = take(str, "a tier class")
        name, _ = take(str, "a tier name")
        take(float, "the tier's start")
        take(float, "the tier's end")
        size, _ = take(float, "the tier's size")
        if kind == "IntervalTier":
            intervals = []
            for _ in range(int(size)):
                start, line = take(float, "an interval's start")
                end, _ = take(float, "an interval's end")
                text, _ = take(str, "an interval's text")
                intervals.append((start, end, text, line))
            tiers[name] = intervals
        elif kind == "TextTier":
            for _ in range(int(size)):
                take(float, "a point's time")
                take(str, "a point's mark")
        else:
            raise AlignmentError(f"{path}:{line}: unknown tier class {kind!r}")
    return tiers


def read_textgrid(path: str, speaker: str | None = None) -> list[Word]:
    """The words of a TextGrid's `words` tier (or `<speaker> - words`).

    Raises:
      AlignmentError: no such tier, several and none the speaker's, or a malformed file.
    """
    tiers = read_textgrid_tiers(path)
    candidates = [name for name in tiers if name.strip().lower() == "words"
                  or name.strip().lower().endswith(" - words")]
    chosen = None
    if "words" in tiers:
        chosen = "words"
    elif speaker is not None and f"{speaker} - words" in tiers:
        chosen = f"{speaker} - words"
    elif len(candidates) == 1:
        chosen = candidates[0]
    if chosen is None:
        raise AlignmentError(f"{path}: no 'words' tier to read (tiers: {', '.join(map(repr, tiers)) or 'none'})"
                             + (f"; several speakers' word tiers and none named {speaker!r}" if candidates else ""))
    words = [_word(path, text, start, end, line) for start, end, text, line in tiers[chosen]]
    return [word for word in words if word is not None]


# -------------------------------------------------------------------------------------------------------------- CTM

def read_ctm(path: str) -> dict[str, list[Word]]:
    """Every utterance of a CTM file: `{file id: [Word, ...]}`, words in time order.

    Raises:
      AlignmentError: a line that is not `<file> <channel> <start> <duration> <word> [<confidence>]`.
    """
    utterances: dict[str, list[Word]] = {}
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            stripped = line.strip()
            if not stripped or stripped.startswith(";;"):
                continue
            fields = stripped.split()
            if len(fields) not in (5, 6):
                raise AlignmentError(f"{path}:{number}: expected '<file> <channel> <start> <duration> <word> "
                                     f"[<confidence>]', got {stripped!r}")
            try:
                start, duration = float(fields[2]), float(fields[3])
            except ValueError:
                raise AlignmentError(f"{path}:{number}: start and duration must be numbers: {stripped!r}") from None
            if duration < 0:
                raise AlignmentError(f"{path}:{number}: {fields[4]!r} has a negative duration ({duration} s)")
            word = _word(path, fields[4], start, start + duration, number)
            utterances.setdefault(fields[0], [])
            if word is not None:
                utterances[fields[0]].append(word)
    for words in utterances.values():
        words.sort(key=lambda word: word.start)
    return utterances


def ctm_words(utterances: dict[str, list[Word]], path: str, *keys: str) -> list[Word]:
    """The words of the first of `keys` (an utterance id, a recording's name) that the CTM holds.

    The only utterance of a CTM that holds one.

    Raises:
      AlignmentError: none of `keys` is in the file, naming them.
    """
    for key in keys:
        if key in utterances:
            return utterances[key]
    if len(utterances) == 1:
        return next(iter(utterances.values()))
    raise AlignmentError(f"{path}: no line for {' or '.join(map(repr, keys))} (it holds {len(utterances)} other "
                         "utterances)")


# ------------------------------------------------------------------------------------------------------------- JSON

def read_json(path: str) -> list[Word]:
    """The words of a WhisperX result (`segments[].words[]`) or of emokeras' `{"words": [...]}`.

    Raises:
      AlignmentError: neither form, or an entry without a word or with times that cannot be read.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            content = json.load(handle)
    except (OSError, ValueError) as error:
        raise AlignmentError(f"{path}: not readable JSON ({error})") from None
    if isinstance(content, dict) and isinstance(content.get("segments"), list):
        entries = [(f"segments[{s}].words[{w}]", entry)
                   for s, segment in enumerate(content["segments"])
                   for w, entry in enumerate((segment or {}).get("words") or [])]
        untimed_allowed = True
    elif isinstance(content, dict) and isinstance(content.get("words"), list):
        entries = [(f"words[{w}]", entry) for w, entry in enumerate(content["words"])]
        untimed_allowed = False
    else:
        raise AlignmentError(f'{path}: neither WhisperX\'s {{"segments": [{{"words": [...]}}]}} nor '
                             f'{{"words": [{{"word": ..., "start": s, "end": s}}]}}')
    words = []
    for where, entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("word"), str):
            raise AlignmentError(f"{path}: {where} has no 'word': {entry!r}")
        start, end = entry.get("start"), entry.get("end")
        if start is None or end is None:
            if not untimed_allowed:
                raise AlignmentError(f"{path}: {where} ({entry['word']!r}) needs 'start' and 'end' in seconds")
            start = end = None
        else:
            try:
                start, end = float(start), float(end)
            except (TypeError, ValueError):
                raise AlignmentError(f"{path}: {where} ({entry['word']!r}): start and end must be numbers") from None
        word = _word(path, entry["word"], start, end, where)
        if word is not None:
            words.append(word)
    return words


# ------------------------------------------------------------------------------------------------------------ wdseg

def read_wdseg(path: str) -> list[Word]:
    """A Sphinx `.wdseg` (IEMOCAP's forced alignment): inclusive 10 ms frames `SFrm EFrm SegAScr Word`.

    Raises:
      AlignmentError: naming the file and line of a row that cannot be read.
    """
    words = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields or fields[0] == "SFrm" or fields[0].startswith("Total"):
                continue
            if len(fields) != 4:
                raise AlignmentError(f"{path}:{number}: expected 'SFrm EFrm SegAScr Word', got {line.strip()!r}")
            try:
                start, end = int(fields[0]), int(fields[1])
            except ValueError:
                raise AlignmentError(f"{path}:{number}: frame numbers are not integers: {line.strip()!r}") from None
            if end < start:
                raise AlignmentError(f"{path}:{number}: end frame {end} before start frame {start}")
            word = _word(path, fields[3], start / FRAMES_PER_SECOND, (end + 1) / FRAMES_PER_SECOND, number)
            if word is not None:
                words.append(word)
    return words


# ------------------------------------------------------------------------------------------------------------ common

def read_alignment(path: str, utterance: str | None = None, speaker: str | None = None) -> list[Word]:
    """The words of a word timing file, by its suffix (see the module docstring).

    Args:
      path: a `.TextGrid`, `.ctm`, `.json` (WhisperX) or `.wdseg` file.
      utterance: for a CTM holding many utterances, the file ids to look for (an utterance id, or a recording's
        name), in order; the CTM's only utterance if it holds one.
      speaker: for a TextGrid with several speakers' tiers, whose words.

    Raises:
      AlignmentError: an unreadable file, or one of another format.
      FileNotFoundError: no such file.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such word timing file")
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".textgrid":
        return read_textgrid(path, speaker)
    if suffix == ".ctm":
        keys = [utterance] if isinstance(utterance, str) else list(utterance or [])
        return ctm_words(read_ctm(path), path, *keys)
    if suffix == ".json":
        return read_json(path)
    if suffix == ".wdseg":
        return read_wdseg(path)
    raise AlignmentError(f"{path}: unknown word timing format {suffix!r}; emokeras reads "
                         f"{', '.join(SUFFIXES)}")


def segment(words: list[Word], start: float, end: float | None) -> list[Word]:
    """The words of a recording that lie in its segment `[start, end)`, timed from the segment's start.

    A word without times is kept where its timed neighbours are.
    """
    kept, inside = [], False
    for word in words:
        if word.timed:
            inside = word.end > start and (end is None or word.start < end)
            if inside:
                kept.append(dataclasses.replace(word, start=max(word.start - start, 0.0),
                                                end=(word.end if end is None else min(word.end, end)) - start))
        elif inside:
            kept.append(word)
    return kept


def frame_spans(words: list[Word]) -> tuple[tuple[str, ...], tuple[tuple[int, int], ...]]:
    """Words and their `[start, end)` frame spans at 100 frames/s.

    `[floor(start·100), ceil(end·100))`, at least one frame each. A word without times is given the frames between its
    timed neighbours (the end of the one before, the start of the one after), where it was said.

    Raises:
      AlignmentError: no word has times.
    """
    if words and not any(word.timed for word in words):
        raise AlignmentError("no word has times")
    frames = [(math.floor(w.start * FRAMES_PER_SECOND + _ROUNDING), math.ceil(w.end * FRAMES_PER_SECOND - _ROUNDING))
              if w.timed else None for w in words]
    spans = []
    for index, span in enumerate(frames):
        if span is None:
            before = next((s[1] for s in reversed(frames[:index]) if s is not None), None)
            after = next((s[0] for s in frames[index + 1:] if s is not None), None)
            start = before if before is not None else max(after - 1, 0)
            end = after if after is not None else start + 1
            span = (start, end)
        start, end = span
        spans.append((start, max(end, start + 1)))
    return tuple(word.text for word in words), tuple(spans)


# An alignment may run past the last openSMILE frame by up to one analysis window plus rounding (the last 60 ms
# window ends at the audio's end); further than this, the alignment does not belong to the audio.
TOLERANCE_FRAMES = 10


def fit_to_frames(name: str, words, spans, num_frames: int, tolerance: int = TOLERANCE_FRAMES):
    """Fits word spans to the frames openSMILE produced.

    Spans ending up to `tolerance` frames past the last frame are clipped to
    it (words then starting at or past it are dropped); an alignment reaching
    further is for other audio.

    Raises:
      AlignmentError: the alignment runs past the audio's end, or no word is left; naming `name`.
    """
    last_end = max(end for _, end in spans)
    if last_end > num_frames + tolerance:
        raise AlignmentError(f"{name}: alignment ends at frame {last_end}, past the audio's end "
                             f"({num_frames} frames)")
    kept = [(word, (start, min(end, num_frames))) for word, (start, end) in zip(words, spans) if start < num_frames]
    if not kept:
        raise AlignmentError(f"{name}: no aligned word lies inside the audio's {num_frames} frames")
    return [word for word, _ in kept], [span for _, span in kept]
