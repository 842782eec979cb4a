"""Preparation: openSMILE's real-time factor with 1 and 2 workers.

What reading 48 kHz stereo audio (down-mixing and resampling to 16 kHz mono) adds to it; the peak memory of preparing a
10,000-utterance manifest corpus; and tf.data throughput.

Prints figures; asserts nothing. Goals: a real-time factor <= 0.02 per core, >= 1.7x from 1 to 2 workers;
resampling and down-mixing add at most 20 % to openSMILE's time; preparing 10,000 utterances peaks under 2 GB;
>= 2,000 utterances/s from the input pipeline.

    python benchmarks/prepare.py [--data_dir tfrecords/demo/char-ngram-256] [--files 200] [--rounds 3]
                                 [--manifest_utterances 10000] [--skip_memory]

The 16 kHz and 48 kHz comparison times the same speech written both ways, one worker each, in interleaved
rounds (the order reversed every other round), and prints every round's ratio: this shared machine's speed drifts
between runs, and a ratio measured within one round does not.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import wave

import numpy as np
import soundfile

from emokeras.config import PrepareConfig
from emokeras.data.corpus.iemocap import read_iemocap
from emokeras.data.features.acoustic import extract_frames_parallel
from emokeras.data.preparation import prepare_corpus

# The child that prepares the manifest corpus reports its own peak and its openSMILE workers' largest.
_MEMORY_PROBE = """
import resource, sys
from emokeras.config import PrepareConfig
from emokeras.data.preparation import prepare_corpus
prepare_corpus(PrepareConfig(corpus="manifest", root=sys.argv[1], out=sys.argv[2], encoder_dir=sys.argv[3]))
with open("/proc/self/status") as handle:
    peak = next(int(line.split()[1]) for line in handle if line.startswith("VmHWM"))
print("PEAK", peak, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def speech(seconds, rate, seed):
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    pitch = 100 + 80 * rng.random()
    return (0.3 * np.sin(2 * np.pi * pitch * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))
            + 0.01 * rng.standard_normal(t.shape)).astype(np.float32)


def duration(paths):
    total = 0.0
    for path in paths:
        with wave.open(path) as handle:
            total += handle.getnframes() / handle.getframerate()
    return total


def extraction_seconds(paths, workers):
    started = time.perf_counter()
    results = list(extract_frames_parallel(paths, workers=workers, progress=False))
    wall = time.perf_counter() - started
    bad = [error for _, _, error in results if error is not None]
    if bad:
        raise RuntimeError(bad[0])
    return wall


def rates(folder, files, rounds):
    """16 kHz mono against the same speech at 48 kHz stereo, one worker, interleaved rounds."""
    paths = {"16 kHz mono": [], "48 kHz stereo": []}
    for k in range(files):
        mono = speech(4.0, 16000, k)
        high = speech(4.0, 48000, k)
        for label, samples, rate in (("16 kHz mono", mono, 16000),
                                     ("48 kHz stereo", np.stack([high, 0.9 * high], axis=1), 48000)):
            path = os.path.join(folder, label.replace(" ", "-"), f"{k:04d}.wav")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            soundfile.write(path, samples, rate, subtype="PCM_16")
            paths[label].append(path)
    seconds = duration(paths["16 kHz mono"])
    print(f"\n16 kHz mono against 48 kHz stereo: {files} files, {seconds:.0f} s of audio each, 1 worker, "
          f"{rounds} interleaved rounds (after a warm-up)")
    extraction_seconds(paths["16 kHz mono"][:5], 1)
    ratios = []
    for round_ in range(rounds):
        order = list(paths) if round_ % 2 == 0 else list(reversed(paths))
        walls = {label: extraction_seconds(paths[label], 1) for label in order}
        ratios.append(walls["48 kHz stereo"] / walls["16 kHz mono"])
        print(f"  round {round_ + 1}: " + ", ".join(f"{label} {walls[label]:.2f} s ({walls[label] / seconds:.4f} s "
                                                      "per s of audio)" for label in paths)
              + f"; 48 kHz stereo / 16 kHz mono {ratios[-1]:.3f}")
    print(f"  ratio, median of rounds: {np.median(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f}); "
          "goal <= 1.20")


def memory(folder, utterances):
    """Peak memory of preparing a manifest corpus of `utterances` 2-s utterances (ten speakers, four classes)."""
    audio = os.path.join(folder, "audio")
    os.makedirs(audio)
    rows = ["ID,wav,spk_id,emo,text"]
    base = [speech(2.0, 16000, k) for k in range(20)]
    for k in range(utterances):
        path = os.path.join(audio, f"u{k:05d}.wav")
        soundfile.write(path, base[k % 20], 16000, subtype="PCM_16")
        rows.append(f"u{k:05d},audio/u{k:05d}.wav,spk{k % 10},{('anger', 'joy', 'calm', 'sad')[k % 4]},"
                    "you said it was fine")
    manifest = os.path.join(folder, "manifest.csv")
    with open(manifest, "w") as handle:
        handle.write("\n".join(rows) + "\n")
    print(f"\npreparing a manifest corpus of {utterances} utterances of 2 s ({utterances * 2 / 3600:.1f} h), "
          "2 workers ...")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, manifest, os.path.join(folder, "tfrecords"),
                           os.path.join(folder, "encoders")], capture_output=True, text=True)
    wall = time.perf_counter() - started
    line = next((line for line in done.stdout.splitlines() if line.startswith("PEAK")), None)
    if done.returncode != 0 or line is None:
        print(done.stderr[-3000:])
        raise RuntimeError("preparing the manifest corpus failed")
    _, own, child = line.split()
    own_mb, child_mb = int(own) / 1024, int(child) / 1024
    print(f"  {wall:.0f} s; peak resident memory: preparing process {own_mb:,.0f} MB, largest openSMILE worker "
          f"{child_mb:,.0f} MB; all processes at most {own_mb + 2 * child_mb:,.0f} MB (goal: at most 2,048 MB)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=None, help="a prepared folder (default: prepare the demo corpus)")
    parser.add_argument("--files", type=int, default=200, help="wav files to extract per run")
    parser.add_argument("--fold", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the 16/48 kHz comparison")
    parser.add_argument("--rate_files", type=int, default=60, help="files per format in that comparison")
    parser.add_argument("--manifest_utterances", type=int, default=10000)
    parser.add_argument("--skip_memory", action="store_true", help="leave out the 10,000-utterance corpus")
    args = parser.parse_args()

    config = PrepareConfig()
    data_dir = args.data_dir or prepare_corpus(config)
    paths = [u.audio for u in read_iemocap(config.corpus_root())][: args.files]
    seconds = duration(paths)
    print(f"openSMILE ComParE_2016 LLD + deltas on {len(paths)} files, {seconds:.0f} s of audio "
          f"({os.cpu_count()} cores)")
    walls = {}
    for workers in (1, 2):
        walls[workers] = extraction_seconds(paths, workers)
        print(f"  {workers} worker(s): {walls[workers]:.2f} s wall (worker start-up included), "
              f"real-time factor {walls[workers] / seconds:.4f}, per core {walls[workers] * workers / seconds:.4f}")
    print(f"  speed-up 1 -> 2 workers: {walls[1] / walls[2]:.2f}x")

    folder = tempfile.mkdtemp(prefix="emokeras-prepare-")
    try:
        rates(os.path.join(folder, "rates"), args.rate_files, args.rounds)
        if not args.skip_memory:
            memory(os.path.join(folder, "manifest"), args.manifest_utterances)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    from emokeras.data import pipelines

    dataset = pipelines.make_dataset(data_dir, args.fold, "train")
    print()
    for epoch in range(3):
        started = time.perf_counter()
        count = sum(int(label.shape[0]) for _, label in dataset)
        wall = time.perf_counter() - started
        note = " (first pass: reads and decodes TFRecords, fills the cache)" if epoch == 0 else ""
        print(f"tf.data fold {args.fold} train split, pass {epoch + 1}: {count} utterances, "
              f"{count / wall:,.0f} utterances/s{note}")


if __name__ == "__main__":
    main()
