"""An offline demo corpus written in the IEMOCAP_full_release layout.

`write_demo_corpus(root, seed, utterances_per_speaker)` writes five sessions,
each with a female and a male speaker, and the four file kinds IEMOCAP has:
EmoEvaluation label files, transcriptions, Sphinx `.wdseg` word alignments
and 16 kHz mono wavs. The same reader (`emokeras.data.corpus.iemocap`) reads it.

How it stands in for the paper's problem:

- **Acoustics carry arousal.** Each word is synthesised as voiced syllables
  (a harmonic source at a pitch contour, shaped by vowel formants and a
  spectral tilt, with noise-burst consonants). An utterance's arousal (anger
  ≈ happiness > neutral ≈ sadness, with per-utterance spread) raises pitch,
  pitch range, loudness and high-frequency energy and shortens syllables and
  pauses. Anger and happiness, and neutral and sadness, differ only slightly
  (harsher voice for anger, a slower, breathier voice for sadness).
- **Words carry valence.** Content words come from positive, negative and
  neutral lists, drawn per class; anger and sadness share most negative words.
- **Neither suffices.** A share of utterances is lexically uninformative
  ("yeah... of course"), and classes overlap in both modalities.

Synthesis is word by word, so the alignments are exact. Everything is drawn
from one `numpy.random.Generator` seeded by `seed`: the same seed writes the
same bytes.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import wave
import zlib

import numpy as np

SAMPLE_RATE = 16000
HOP = SAMPLE_RATE // 100  # one 10 ms frame

POSITIVE = ("great", "wonderful", "love", "amazing", "fantastic", "happy", "excited", "beautiful",
            "perfect", "awesome", "glad", "fun", "lucky", "proud")
NEGATIVE = ("terrible", "awful", "never", "wrong", "bad", "worst", "horrible", "unfair", "hard")
ANGRY = ("hate", "stupid", "ridiculous", "damn", "fault", "liar", "idiot", "shut")
SAD = ("miss", "lost", "alone", "cry", "sorry", "gone", "tired", "hurts", "lonely")
NEUTRAL = ("meeting", "tomorrow", "office", "paper", "address", "form", "line", "number", "car",
           "dinner", "weekend", "station", "window", "table", "phone", "ticket")
FUNCTION = ("i", "you", "the", "it", "that", "we", "was", "is", "to", "and", "a", "my", "so", "just",
            "about", "this", "have", "think")
# Lexically uninformative turns: the paper's "yeah... of course" case.
UNINFORMATIVE = (("yeah", "of", "course"), ("okay",), ("i", "see"), ("oh", "my", "gosh"), ("right",),
                 ("well", "sure"), ("really",), ("uh", "huh"), ("what",), ("no", "no"))

# Per class: probabilities of drawing a content word from each list.
_CONTENT = {
    # class: (POSITIVE, NEGATIVE, ANGRY, SAD, NEUTRAL)
    0: (0.06, 0.45, 0.30, 0.09, 0.10),  # anger
    1: (0.72, 0.06, 0.02, 0.02, 0.18),  # happiness
    2: (0.10, 0.06, 0.04, 0.04, 0.76),  # neutral
    3: (0.06, 0.45, 0.09, 0.30, 0.10),  # sadness
}
_LISTS = (POSITIVE, NEGATIVE, ANGRY, SAD, NEUTRAL)
# Mean arousal per class, on [0, 1]; each utterance adds Gaussian spread.
_AROUSAL = {0: 0.9, 1: 0.78, 2: 0.22, 3: 0.1}
_AROUSAL_SPREAD = 0.2
_UNINFORMATIVE_SHARE = 0.25
_IEMOCAP_LABELS = {0: ("ang",), 1: ("hap", "exc"), 2: ("neu",), 3: ("sad",)}
# A few turns carry labels the 4-class task drops, as in IEMOCAP.
_DROPPED_LABELS = ("fru", "sur", "xxx")
_DROPPED_SHARE = 0.05

# Vowel formants (Hz), adult male; female voices scale them up.
_VOWELS = {"a": (730, 1090, 2440), "e": (530, 1840, 2480), "i": (270, 2290, 3010),
           "o": (570, 840, 2410), "u": (300, 870, 2240)}
_VOWEL_LETTERS = "aeiou"


@dataclasses.dataclass(frozen=True)
class Voice:
    """A speaker's voice: base pitch (Hz), formant scale and breathiness."""

    pitch: float
    formant_scale: float
    breathiness: float


@dataclasses.dataclass
class _Turn:
    utterance_id: str
    label: str
    audio: np.ndarray
    tokens: list[tuple[int, int, str]]  # wdseg rows: inclusive frames and token
    transcript: str


def speaker_voices(rng: np.random.Generator, num_sessions: int = 5) -> dict[tuple[int, str], Voice]:
    """Two voices per session: a female (pitch 185-235 Hz) and a male (95-135 Hz)."""
    voices = {}
    for session in range(1, num_sessions + 1):
        voices[session, "F"] = Voice(float(rng.uniform(185, 235)), float(rng.uniform(1.12, 1.22)),
                                     float(rng.uniform(0.02, 0.06)))
        voices[session, "M"] = Voice(float(rng.uniform(95, 135)), float(rng.uniform(0.95, 1.05)),
                                     float(rng.uniform(0.02, 0.06)))
    return voices


def draw_words(rng: np.random.Generator, label: int) -> tuple[tuple[str, ...], bool]:
    """Draws an utterance's words for class `label`; returns (words, is_uninformative)."""
    if rng.random() < _UNINFORMATIVE_SHARE:
        return UNINFORMATIVE[rng.integers(len(UNINFORMATIVE))], True
    words = []
    for _ in range(int(rng.integers(1, 4))):
        words.extend(FUNCTION[i] for i in rng.integers(len(FUNCTION), size=int(rng.integers(0, 3))))
        source = _LISTS[rng.choice(len(_LISTS), p=_CONTENT[label])]
        words.append(source[rng.integers(len(source))])
    return tuple(words), False


def _syllables(word: str) -> list[str]:
    """The word's vowels, one per syllable (at least one): a stable sound per word."""
    vowels = [c for c in word if c in _VOWEL_LETTERS] or [_VOWEL_LETTERS[zlib.crc32(word.encode()) % 5]]
    return vowels[:4]


def _synthesise_word(rng, word, voice, arousal, label, start_pitch, end_pitch):
    """Returns float64 samples for one word: noise-burst onsets and voiced vowels."""
    syllables = _syllables(word)
    syllable_seconds = (0.19 - 0.07 * arousal) * (1.04 if label == 3 else 1.0)
    pieces = []
    pitches = np.linspace(start_pitch, end_pitch, len(syllables) + 1)
    for index, vowel in enumerate(syllables):
        onset = int(SAMPLE_RATE * rng.uniform(0.025, 0.05))
        burst = rng.standard_normal(onset)
        burst = np.diff(burst, prepend=0.0) * np.hanning(onset) * 0.25  # fricative-like, high-pass
        length = int(SAMPLE_RATE * syllable_seconds * rng.uniform(0.8, 1.2))
        pitch = np.linspace(pitches[index], pitches[index + 1], length)
        pitch *= 1 + (0.004 + 0.01 * arousal) * rng.standard_normal(length).cumsum() / np.sqrt(length)
        phase = 2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE
        formants = np.array(_VOWELS[vowel]) * voice.formant_scale
        tilt = 1.5 - 0.7 * arousal - (0.04 if label == 0 else 0.0)  # flatter spectrum: more effort
        voiced = np.zeros(length)
        for harmonic in range(1, int(7000 / pitch.max()) + 1):
            frequency = harmonic * pitch
            envelope = sum(np.exp(-0.5 * ((frequency - f) / (60 + 0.08 * f)) ** 2) for f in formants)
            voiced += (0.15 + envelope) * harmonic ** -tilt * np.sin(harmonic * phase)
        voiced /= np.abs(voiced).max() + 1e-9
        breath = voice.breathiness + (0.01 if label == 3 else 0.0)
        voiced += breath * rng.standard_normal(length)
        ramp = min(length // 4, 160)
        window = np.ones(length)
        window[:ramp] = np.linspace(0, 1, ramp)
        window[-ramp:] = np.linspace(1, 0, ramp)
        pieces.extend([burst, voiced * window])
    return np.concatenate(pieces)


def synthesise_utterance(rng, words, voice, label, arousal):
    """Synthesises `words`; returns (samples, [(start_sample, end_sample)] per word)."""
    semitones = 1.5 + 5.0 * arousal  # pitch range
    base = voice.pitch * (1 + 0.3 * arousal)
    loudness = 0.12 * (1 + 2.0 * arousal)
    pause_scale = (1.6 - 0.8 * arousal) * (1.05 if label == 3 else 1.0)
    noise_floor = 0.002

    def silence(seconds):
        return noise_floor * rng.standard_normal(int(SAMPLE_RATE * seconds))

    pieces = [silence(rng.uniform(0.1, 0.25))]
    position = len(pieces[0])
    spans = []
    for index, word in enumerate(words):
        # Declining pitch over the utterance with a random accent per word.
        progress = np.array([index, index + 1]) / len(words)
        accent = rng.normal(0, 0.4 + arousal)
        start_pitch, end_pitch = base * 2 ** ((semitones * (0.5 - progress) + accent) / 12)
        samples = _synthesise_word(rng, word, voice, arousal, label, start_pitch, end_pitch)
        samples = samples * loudness * rng.uniform(0.8, 1.2)
        # Align word boundaries to 10 ms frames so the alignment is exact.
        samples = samples[: len(samples) // HOP * HOP]
        spans.append((position, position + len(samples)))
        pieces.append(samples)
        position += len(samples)
        gap = silence(rng.uniform(0.03, 0.15) * pause_scale) if index < len(words) - 1 else silence(0.15)
        gap = gap[: max(HOP, len(gap) // HOP * HOP)]
        pieces.append(gap)
        position += len(gap)
    audio = np.concatenate(pieces)
    return np.clip(audio, -0.99, 0.99), spans


def _wdseg_rows(rng, words, spans, num_samples):
    """Sphinx rows (inclusive frames): <s>, words with <sil> gaps (some breaths, some variants), </s>."""
    rows = []
    previous_end = 0
    for word, (start, end) in zip(words, spans):
        first, last = start // HOP, end // HOP - 1
        if first > previous_end:
            filler = "<s>" if not rows else ("++BREATH++" if rng.random() < 0.15 else "<sil>")
            rows.append((previous_end, first - 1, filler))
        token = word.upper() + ("(2)" if rng.random() < 0.1 else "")
        rows.append((first, last, token))
        previous_end = last + 1
    total_frames = num_samples // HOP
    if total_frames > previous_end:
        rows.append((previous_end, total_frames - 1, "</s>"))
    return rows


def _write_wav(path, samples):
    pcm = np.round(samples * 32767).astype("<i2")
    with wave.open(path, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(SAMPLE_RATE)
        handle.writeframes(pcm.tobytes())


def _transcript_text(words, uninformative):
    if uninformative and len(words) > 1:
        text = words[0] + "... " + " ".join(words[1:])
    else:
        text = " ".join(words)
    return text[0].upper() + text[1:] + "."


def write_demo_corpus(root: str, seed: int = 0, utterances_per_speaker: int = 80,
                      utterances_per_dialog: int = 10) -> str:
    """Writes the demo corpus under `root/IEMOCAP_full_release` and returns that folder.

    Args:
      root: folder to write into (created if needed).
      seed: the one seed every random choice derives from.
      utterances_per_speaker: 4-class utterances per speaker (10 speakers);
        about 5 % more turns carrying dropped labels (`fru`, `sur`, `xxx`) are
        added, as IEMOCAP has them.
      utterances_per_dialog: turns per dialog file.

    The corpus is written under a temporary folder name, with a `DEMO_CORPUS`
    stamp (seed and size), and renamed when complete, so a half-written corpus
    is never mistaken for a whole one. An existing demo corpus (one with a
    stamp) is replaced; any other folder in the way is refused.
    """
    final_root = os.path.join(root, "IEMOCAP_full_release")
    if os.path.exists(final_root) and demo_corpus_stamp(final_root) is None:
        raise FileExistsError(f"{final_root}: exists and is not a demo corpus (no DEMO_CORPUS stamp); "
                              "refusing to overwrite it")
    corpus_root = os.path.join(root, ".IEMOCAP_full_release.partial")
    shutil.rmtree(corpus_root, ignore_errors=True)
    rng = np.random.default_rng(seed)
    voices = speaker_voices(rng)
    for session in range(1, 6):
        session_dir = os.path.join(corpus_root, f"Session{session}")
        turns_by_dialog: dict[str, list[_Turn]] = {}
        # Balanced classes per speaker, in random order.
        plan = []
        for gender in ("F", "M"):
            labels = np.resize(np.arange(4), utterances_per_speaker)
            dropped = rng.random(utterances_per_speaker) < _DROPPED_SHARE
            plan.extend((gender, int(label), False) for label in labels)
            plan.extend((gender, int(labels[i]), True) for i in np.flatnonzero(dropped))
        plan = [plan[i] for i in rng.permutation(len(plan))]
        dialog_names = _dialog_names(session, -(-len(plan) // utterances_per_dialog))
        counters: dict[tuple[str, str], int] = {}
        for index, (gender, label, dropped) in enumerate(plan):
            dialog = dialog_names[index // utterances_per_dialog]
            number = counters.get((dialog, gender), 0)
            counters[dialog, gender] = number + 1
            utterance_id = f"{dialog}_{gender}{number:03d}"
            words, uninformative = draw_words(rng, label)
            arousal = float(np.clip(rng.normal(_AROUSAL[label], _AROUSAL_SPREAD), -0.2, 1.2))
            audio, spans = synthesise_utterance(rng, words, voices[session, gender], label, arousal)
            if dropped:
                raw_label = _DROPPED_LABELS[rng.integers(len(_DROPPED_LABELS))]
            else:
                choices = _IEMOCAP_LABELS[label]
                raw_label = choices[rng.integers(len(choices))]
            turn = _Turn(utterance_id, raw_label, audio,
                         _wdseg_rows(rng, words, spans, len(audio)), _transcript_text(words, uninformative))
            turns_by_dialog.setdefault(dialog, []).append(turn)
        for dialog, turns in turns_by_dialog.items():
            _write_dialog(session_dir, dialog, turns)
    _write_text(os.path.join(corpus_root, "DEMO_CORPUS"), demo_stamp(seed, utterances_per_speaker))
    shutil.rmtree(final_root, ignore_errors=True)
    os.replace(corpus_root, final_root)
    return final_root


def demo_stamp(seed: int, utterances_per_speaker: int) -> str:
    """The stamp text that identifies a demo corpus's content."""
    return f"seed={seed}\nutterances_per_speaker={utterances_per_speaker}\n"


def demo_corpus_stamp(corpus_root: str) -> str | None:
    """The stamp `write_demo_corpus` leaves when complete, or None."""
    path = os.path.join(corpus_root, "DEMO_CORPUS")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _dialog_names(session, count):
    """IEMOCAP-style dialog names, including the irregular ones (`impro05a`, `script01_1b`)."""
    names = []
    for index in range(count):
        lead = "FM"[index % 2]
        kind = index % 4
        if kind == 0:
            names.append(f"Ses{session:02d}{lead}_impro{index + 1:02d}")
        elif kind == 1:
            names.append(f"Ses{session:02d}{lead}_impro{index + 1:02d}a")
        elif kind == 2:
            names.append(f"Ses{session:02d}{lead}_script{index + 1:02d}_1b")
        else:
            names.append(f"Ses{session:02d}{lead}_script{index + 1:02d}_2")
    return names


def _write_text(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def _write_dialog(session_dir, dialog, turns):
    wav_dir = os.path.join(session_dir, "sentences", "wav", dialog)
    wdseg_dir = os.path.join(session_dir, "sentences", "ForcedAlignment", dialog)
    os.makedirs(wav_dir, exist_ok=True)
    os.makedirs(wdseg_dir, exist_ok=True)
    emo_lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
    transcript_lines = []
    clock = 2.0
    for turn in turns:
        start, end = clock, clock + len(turn.audio) / SAMPLE_RATE
        clock = end + 0.5
        _write_wav(os.path.join(wav_dir, turn.utterance_id + ".wav"), turn.audio)
        rows = ["\tSFrm\tEFrm\tSegAScr\tWord"]
        rows += [f"\t{first:>5d}\t{last:>5d}\t{-40000 - 917 * (last - first):>8d}\t{token}"
                 for first, last, token in turn.tokens]
        rows.append(f" Total score: {-40000 * len(turn.tokens)}")
        _write_text(os.path.join(wdseg_dir, turn.utterance_id + ".wdseg"), "\n".join(rows) + "\n")
        emo_lines += [f"[{start:.4f} - {end:.4f}]\t{turn.utterance_id}\t{turn.label}\t[2.5000, 2.5000, 2.5000]",
                      f"C-E1:\t{turn.label.capitalize()};\t()", ""]
        transcript_lines.append(f"{turn.utterance_id} [{start:08.4f}-{end:08.4f}]: {turn.transcript}")
    _write_text(os.path.join(session_dir, "dialog", "EmoEvaluation", dialog + ".txt"), "\n".join(emo_lines))
    _write_text(os.path.join(session_dir, "dialog", "transcriptions", dialog + ".txt"),
                       "\n".join(transcript_lines) + "\n")
