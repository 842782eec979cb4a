"""Small corpora written in each release's real layout, quirks included, for the reader and preparation tests."""

import csv
import json
import os

import numpy as np
import soundfile

# Two words per utterance, inside 1.2 s of audio.
WORDS = (("hello", 0.20, 0.50), ("there", 0.60, 1.00))


def speech(seconds, rate=16000, pitch=150.0, seed=0):
    """A voiced tone with a little noise: audio openSMILE gives frames for."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    return (0.3 * np.sin(2 * np.pi * pitch * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))
            + 0.01 * rng.standard_normal(t.shape)).astype(np.float32)


def write_audio(path, seconds=1.2, rate=16000, channels=1, pitch=150.0, seed=0):
    """A 16-bit wav; with several channels, the same speech slightly attenuated on each."""
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    mono = speech(seconds, rate, pitch, seed)
    samples = mono if channels == 1 else np.stack([mono * (1 - 0.1 * k) for k in range(channels)], axis=1)
    soundfile.write(str(path), samples, rate, subtype="PCM_16")
    return str(path)


def textgrid(words, xmax, tier="words", short=False):
    """A Praat TextGrid (long or short text format) with one interval tier, silences as empty intervals."""
    intervals, cursor = [], 0.0
    for text, start, end in words:
        if start > cursor:
            intervals.append((cursor, start, ""))
        intervals.append((start, end, text))
        cursor = end
    if cursor < xmax:
        intervals.append((cursor, xmax, "sil"))
    if short:
        lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "0", str(xmax), "<exists>", "1",
                 '"IntervalTier"', f'"{tier}"', "0", str(xmax), str(len(intervals))]
        for start, end, text in intervals:
            lines += [str(start), str(end), f'"{text}"']
        return "\n".join(lines) + "\n"
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0", f"xmax = {xmax}",
             "tiers? <exists>", "size = 1", "item []:", "    item [1]:", '        class = "IntervalTier"',
             f'        name = "{tier}"', "        xmin = 0", f"        xmax = {xmax}",
             f"        intervals: size = {len(intervals)}"]
    for index, (start, end, text) in enumerate(intervals, start=1):
        lines += [f"        intervals [{index}]:", f"            xmin = {start}", f"            xmax = {end}",
                  f'            text = "{text}"']
    return "\n".join(lines) + "\n"


def write_csv(path, header, rows):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


# ------------------------------------------------------------------------------------------------------ MSP-Podcast

MSP_LISTING = [  # (file, EmoClass, SpkrID, Split_Set); Train also holds a surprise and a no-agreement turn
    *[(f"MSP-PODCAST_0001_{k:04d}.wav", code, "101", "Train") for k, code in enumerate("AHNSUX")],
    *[(f"MSP-PODCAST_0002_{k:04d}.wav", code, "102", "Train") for k, code in enumerate("AHNS")],
    *[(f"MSP-PODCAST_0003_{k:04d}.wav", code, "103", "Development") for k, code in enumerate("AHNS")],
    *[(f"MSP-PODCAST_0004_{k:04d}.wav", code, speaker, "Test1") for k, (code, speaker) in
      enumerate(zip("AHNS", ("104", "Unknown", "104", "Unknown")))],
    *[(f"MSP-PODCAST_0005_{k:04d}.wav", code, "105", "Test2") for k, code in enumerate("AHNS")],
    ("MSP-PODCAST_0009_0001.wav", "N", "109", "Train"),  # labelled, but its audio is not in the release
]
MSP_TEST3 = ["MSP-PODCAST_0007_0000.wav", "MSP-PODCAST_0007_0001.wav"]  # audio, no labels
MSP_STEREO = "MSP-PODCAST_0002_0001.wav"  # 44.1 kHz stereo, as one file of a real release is


def write_msp_podcast(root, older=False):
    """An MSP-Podcast release folder. `older`: labels_concensus.csv and the split called Validation."""
    root = str(root)
    rows = []
    for index, (name, code, speaker, split) in enumerate(MSP_LISTING):
        stem = os.path.splitext(name)[0]
        if not name.startswith("MSP-PODCAST_0009"):
            rate, channels = (44100, 2) if name == MSP_STEREO else (16000, 1)
            write_audio(os.path.join(root, "Audios", name), rate=rate, channels=channels, pitch=120 + 10 * index,
                        seed=index)
            os.makedirs(os.path.join(root, "ForceAligned"), exist_ok=True)
            with open(os.path.join(root, "ForceAligned", stem + ".TextGrid"), "w") as handle:
                handle.write(textgrid(WORDS, 1.2, short=index % 2 == 1))
            os.makedirs(os.path.join(root, "Transcripts"), exist_ok=True)
            with open(os.path.join(root, "Transcripts", stem + ".txt"), "w") as handle:
                handle.write("Hello, there.")
        if older and split == "Development":
            split = "Validation"
        rows.append([name, code, 3.0, 4.0, 4.0, speaker, "Female", split])
    for index, name in enumerate(MSP_TEST3):
        write_audio(os.path.join(root, "Audios", name), seed=100 + index)
    labels = "labels_concensus.csv" if older else "labels_consensus.csv"
    write_csv(os.path.join(root, "Labels", labels),
              ["FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender", "Split_Set"], rows)
    with open(os.path.join(root, "Partitions.txt"), "w") as handle:
        for name, _, _, split in MSP_LISTING:
            handle.write(f"{split}; {name}\n")
        for name in MSP_TEST3:
            handle.write(f"Test3; {name}\n")
    return root


# ---------------------------------------------------------------------------------------------------------- CREMA-D

CREMA_ACTORS = ("1001", "1002", "1003")
CREMA_EMOTIONS = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
CREMA_EMPTY = "1003_IEO_SAD_XX"  # a clip with no samples, as the release has one (1076_MTI_SAD_XX)


def write_crema_d(root):
    root = str(root)
    sentences = ("DFA", "IEO", "MTI")
    for a, actor in enumerate(CREMA_ACTORS):
        for e, emotion in enumerate(CREMA_EMOTIONS):
            stem = f"{actor}_{sentences[(a + e) % 3]}_{emotion}_{'XX' if e % 2 else 'HI'}"
            if stem == CREMA_EMPTY:
                continue
            write_audio(os.path.join(root, "AudioWAV", f"{stem}.wav"), seconds=0.8, pitch=110 + 15 * e, seed=a)
    os.makedirs(os.path.join(root, "AudioWAV"), exist_ok=True)
    soundfile.write(os.path.join(root, "AudioWAV", f"{CREMA_EMPTY}.wav"), np.zeros(0, np.float32), 16000,
                    subtype="PCM_16")
    write_csv(os.path.join(root, "VideoDemographics.csv"), ["ActorID", "Age", "Sex", "Race", "Ethnicity"],
              [[actor, 30, sex, "Caucasian", "Not Hispanic"] for actor, sex in zip(CREMA_ACTORS,
                                                                                  ("Male", "Female", "Female"))])
    return root


# ---------------------------------------------------------------------------------------------------------- RAVDESS

def write_ravdess(root):
    """Three actors' audio-only speech at 48 kHz.

    One actor's folder further down, plus a song and an audio-visual file that are not kept.
    """
    root = str(root)
    for actor in (1, 2, 3):
        folder = os.path.join(root, "Audio_Speech_Actors_01-24" if actor < 3 else os.path.join("more", "speech"),
                              f"Actor_{actor:02d}")
        for emotion in range(1, 9):
            statement = 1 + (emotion + actor) % 2
            name = f"03-01-{emotion:02d}-01-{statement:02d}-01-{actor:02d}.wav"
            write_audio(os.path.join(folder, name), seconds=0.8, rate=48000, pitch=100 + 12 * emotion, seed=actor)
    write_audio(os.path.join(root, "Audio_Song_Actors_01-24", "Actor_01", "03-02-03-01-01-01-01.wav"), seconds=0.8,
                rate=48000)
    write_audio(os.path.join(root, "Audio_Speech_Actors_01-24", "Actor_01", "01-01-03-01-01-01-01.wav"),
                seconds=0.8, rate=48000)
    return root


# --------------------------------------------------------------------------------------------------------- manifest

MANIFEST_CLASSES = ("angry", "calm", "happy")


def write_manifest_corpus(root):
    """Your own corpus as a manifest CSV.

    Four speakers (two train, one validation, one test), three classes, and word timings from an MFA TextGrid per file
    (s1), one CTM for all of s2, WhisperX JSON (s3, a numeral left untimed) and segments of one long recording with its
    TextGrid (s4); paths relative, under $data_root and absolute; a 44.1 kHz stereo file; a row whose wav is missing.
    """
    root = str(root)
    header = ["ID", "wav", "spk_id", "emo", "duration", "split", "text", "alignment", "start", "end"]
    rows, ctm_lines = [], [";; s2's words, one file for all its utterances"]
    for s, (speaker, split) in enumerate((("s1", "train"), ("s2", "train"), ("s3", "validation"),
                                         ("s4", "test"))):
        for k in range(6):
            emotion = MANIFEST_CLASSES[k % 3]
            uid = f"{speaker}_{k:02d}"
            pitch = {"angry": 220.0, "calm": 110.0, "happy": 180.0}[emotion] + 5 * k
            if speaker == "s4":
                continue  # segments of one recording, below
            wav = os.path.join("audio", speaker, f"{uid}.wav")
            stereo = uid == "s1_01"
            write_audio(os.path.join(root, wav), rate=44100 if stereo else 16000, channels=2 if stereo else 1,
                        pitch=pitch, seed=10 * s + k)
            if speaker == "s1":
                alignment = os.path.join("align", f"{uid}.TextGrid")
                with open(_mkdirs(os.path.join(root, alignment)), "w") as handle:
                    handle.write(textgrid(WORDS, 1.2, short=k % 2 == 0))
                wav = f"$data_root/{wav}"
            elif speaker == "s2":
                alignment = os.path.join("align", "s2.ctm")
                ctm_lines += [f"{uid} 1 {start:.2f} {end - start:.2f} {word}" for word, start, end in WORDS]
                wav = os.path.join(root, wav)  # absolute
            else:
                alignment = os.path.join("align", f"{uid}.json")
                with open(_mkdirs(os.path.join(root, alignment)), "w") as handle:
                    json.dump({"segments": [{"start": 0.2, "end": 1.0, "text": "hello 2 there", "words": [
                        {"word": "hello", "start": 0.2, "end": 0.5, "score": 0.9}, {"word": "2"},
                        {"word": "there", "start": 0.6, "end": 1.0, "score": 0.8}]}]}, handle)
            rows.append([uid, wav, speaker, emotion, 1.2, split, "hello there", alignment, "", ""])
    with open(_mkdirs(os.path.join(root, "align", "s2.ctm")), "w") as handle:
        handle.write("\n".join(ctm_lines) + "\n")
    # s4: one 8-s recording, six segments of 1.2 s, and its recording-level TextGrid.
    long_words, pieces = [], []
    for k in range(6):
        emotion = MANIFEST_CLASSES[k % 3]
        pitch = {"angry": 220.0, "calm": 110.0, "happy": 180.0}[emotion] + 5 * k
        pieces.append(np.concatenate([speech(1.2, pitch=pitch, seed=30 + k),
                                      np.zeros(int(0.1 * 16000), np.float32)]))
        offset = 1.3 * k
        long_words += [(word, round(offset + start, 3), round(offset + end, 3)) for word, start, end in WORDS]
        rows.append([f"s4_{k:02d}", os.path.join("audio", "s4", "session.wav"), "s4", emotion, 1.2, "test",
                     "hello there", os.path.join("align", "session.TextGrid"), round(offset, 3),
                     round(offset + 1.2, 3)])
    soundfile.write(_mkdirs(os.path.join(root, "audio", "s4", "session.wav")), np.concatenate(pieces), 16000,
             subtype="PCM_16")
    with open(os.path.join(root, "align", "session.TextGrid"), "w") as handle:
        handle.write(textgrid(long_words, 7.8))
    rows.append(["s1_99", os.path.join("audio", "s1", "missing.wav"), "s1", "happy", 1.2, "train", "hello", "", "",
                 ""])
    return write_csv(os.path.join(root, "manifest.csv"), header, rows)


def _mkdirs(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path
