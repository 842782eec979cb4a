"""Deployment figures.

The recogniser's real-time factor end to end (SavedModel against ONNX, on one core), its speed-up with two openSMILE
workers, and its peak memory on a 60-minute recording.

Prints figures; asserts nothing.

1. Memory: a fresh process answers a 60-minute recording on ONNX and reads its own peak resident memory
   (`VmHWM` in /proc/self/status; with one worker openSMILE runs in that process, so its peak is the recogniser's).
   Not `ru_maxrss`: Linux carries it over from the parent across fork and exec, so a child started by this script
   (which holds a trained model) would report this script's own peak.
2. Workers: 100 files of 5 s on ONNX, in fresh processes with `--workers 1` and `--workers 2` taking turns
   (`--rounds` rounds, the order reversed every other round, each after a warm-up call that starts its workers);
   each round's ratio compares runs seconds apart, on this shared machine whose speed drifts. Real-time factor
   per machine = seconds / seconds of audio.
3. One core: for each runtime, a fresh process pinned to one core (`os.sched_setaffinity`, which its openSMILE
   workers inherit; the runtimes get one thread) loads the export (start-up reported apart), answers a 5-s clip
   once to warm up, then times, fastest of `--repeats`: a 5-s clip, a 10-minute recording and 100 files of 5 s; on
   ONNX, openSMILE's share is timed apart.

The audio is the demo corpus's speech, concatenated and repeated to the lengths above. The export is `--model`,
or B-ACO-1 at the paper's sizes trained for one epoch on fold 3 of the demo corpus (the figures depend on the
model's sizes, not its accuracy). Goals: with 2 workers at least 1.7x faster (a real-time factor per machine
under 0.01); at most 1 GB per process for 60 minutes.

    python benchmarks/predict.py [--model saved_models/B-ACO-1/fold-3] [--repeats 3] [--rounds 3]
                                 [--steps memory,workers,core]
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import soundfile

MEASURE = r"""
import json, os, sys, time
started = time.perf_counter()
os.sched_setaffinity(0, {core})
from emokeras import Recognizer
recognizer = Recognizer.load({model!r}, runtime={runtime!r}, threads=1, workers=1)
startup = time.perf_counter() - started
clip, long, files = {clip!r}, {long!r}, {files!r}
recognizer.predict_file(clip)
def best(function):
    times = []
    for _ in range({repeats}):
        begun = time.perf_counter()
        function()
        times.append(time.perf_counter() - begun)
    return min(times)
figures = {{"startup": startup, "clip": best(lambda: recognizer.predict_file(clip)),
           "long": best(lambda: recognizer.predict_file(long)), "files": best(lambda: recognizer.predict_files(files))}}
if {runtime!r} == "onnx":  # openSMILE alone over the same windows, in this process (no TensorFlow here)
    from emokeras.data.features import acoustic
    figures["features"] = best(lambda: [acoustic.extract_file(long, start, end)
                                        for start, end in recognizer.segments_of(long)])
print(json.dumps(figures))
"""

WORKERS = r"""
import json, time
from emokeras import Recognizer
files = {files!r}
with Recognizer.load({model!r}, runtime="onnx", workers={workers}) as recognizer:
    recognizer.predict_files(files[:2])  # starts the workers
    begun = time.perf_counter()
    recognizer.predict_files(files)
    print(json.dumps({{"seconds": time.perf_counter() - begun}}))
"""

STEPS = ("memory", "workers", "core")

MEMORY = r"""
import json
from emokeras import Recognizer
answers = Recognizer.load({model!r}, runtime="onnx").predict_file({path!r})
# openSMILE runs in this process on the ONNX path: its own peak is the whole recogniser's.
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({{"rows": len(answers), "peak_kb": peak}}))
"""


def speech(corpus_root: str) -> np.ndarray:
    paths = sorted(glob.glob(os.path.join(corpus_root, "**", "Session*", "sentences", "wav", "*", "*.wav"),
                             recursive=True))
    if not paths:
        raise SystemExit(f"{corpus_root}: no Session*/sentences/wav/*/*.wav below it; prepare the demo corpus first")
    return np.concatenate([soundfile.read(path, dtype="float32")[0] for path in paths[:200]])


def write(path: str, source: np.ndarray, seconds: float) -> str:
    """`seconds` of `source` repeated, as 16-bit PCM at 16 kHz, written block by block."""
    total = int(seconds * 16000)
    with soundfile.SoundFile(path, "w", 16000, 1, subtype="PCM_16") as handle:
        written = 0
        while written < total:
            piece = source[:total - written]
            handle.write(piece)
            written += piece.shape[0]
    return path


def default_export(folder: str) -> str:
    """B-ACO-1 at the paper's sizes, one epoch on fold 3 of the demo corpus, exported into `folder`."""
    from emokeras import Experiment, TrainConfig

    config = TrainConfig(model="B-ACO-1", fold=3, epochs=1, output=os.path.join(folder, "runs"),
                         saved_models=os.path.join(folder, "saved_models"))
    return Experiment(config).run()["saved_model"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="an acoustic-only export (default: train B-ACO-1 for it)")
    parser.add_argument("--corpus", default="data/demo", help="where the demo corpus's wavs are")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--core", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the 1- and 2-worker comparison")
    parser.add_argument("--steps", default=",".join(STEPS), help=f"which of {', '.join(STEPS)} to measure")
    args = parser.parse_args()
    steps = set(args.steps.split(","))
    if not steps or steps - set(STEPS):
        parser.error(f"--steps {args.steps}: choose from {', '.join(STEPS)}")
    with tempfile.TemporaryDirectory() as folder:
        model = args.model or default_export(folder)
        source = speech(args.corpus)
        clip = write(os.path.join(folder, "clip.wav"), source, 5.0)
        long = write(os.path.join(folder, "ten_minutes.wav"), source, 600.0)
        files = [write(os.path.join(folder, f"file-{k:03d}.wav"), source[k * 16000:], 5.0) for k in range(100)]
        audio = {"clip": 5.0, "long": 600.0, "files": 500.0}
        if "memory" in steps:
            memory(model, write(os.path.join(folder, "sixty_minutes.wav"), source, 3600.0))
        if "workers" in steps:
            workers(model, files, args.rounds)
        if "core" in steps:
            one_core(model, clip, long, files, audio, args.core, args.repeats)


def memory(model: str, hour: str) -> None:
    """A 60-minute recording on ONNX in a fresh process: its peak resident memory."""
    done = subprocess.run([sys.executable, "-c", MEMORY.format(model=model, path=hour)], capture_output=True,
                          text=True)
    if done.returncode:
        print(f"  60 minutes: failed\n{done.stderr[-2000:]}")
        return
    measured = json.loads(done.stdout.splitlines()[-1])
    print(f"  60-minute recording on ONNX: {measured['rows']} segments, peak resident memory "
          f"{measured['peak_kb'] / 1024:.0f} MB")


def workers(model: str, files: list[str], rounds: int) -> None:
    """100 files with 1 and 2 workers, in fresh processes taking turns."""
    print(f"100 files of 5 s (500 s of audio) on ONNX, every core ({os.cpu_count()}); 1 and 2 openSMILE workers "
          f"taking turns, {rounds} rounds")
    ratios = []
    for round_ in range(rounds):
        seconds = {}
        for count in ((1, 2) if round_ % 2 == 0 else (2, 1)):
            done = subprocess.run([sys.executable, "-c", WORKERS.format(model=model, files=files, workers=count)],
                                  capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(done.stderr[-2000:])
            seconds[count] = json.loads(done.stdout.splitlines()[-1])["seconds"]
        ratios.append(seconds[1] / seconds[2])
        print(f"  round {round_ + 1}: 1 worker {seconds[1]:.2f} s (RTF {seconds[1] / 500:.4f}), 2 workers "
              f"{seconds[2]:.2f} s (RTF {seconds[2] / 500:.4f}); speed-up {ratios[-1]:.2f}x")
    print(f"  speed-up, median of rounds: {np.median(ratios):.2f}x (range {min(ratios):.2f}-{max(ratios):.2f}); "
          "goal >= 1.7x")


def one_core(model: str, clip: str, long: str, files: list[str], audio: dict, core: int, repeats: int) -> None:
    """Each runtime in a fresh process pinned to one core: start-up, and warm answers, fastest of `repeats`."""
    print(f"export: {model}; one core (cpu {core}), one runtime thread, fastest of {repeats}")
    for runtime in ("savedmodel", "onnx"):
        script = MEASURE.format(core={core}, model=model, runtime=runtime, clip=clip, long=long, files=files,
                                repeats=repeats)
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        if done.returncode:
            print(f"  {runtime}: failed\n{done.stderr[-2000:]}")
            continue
        seconds = json.loads(done.stdout.splitlines()[-1])
        figures = ", ".join(f"{name} {seconds[name]:.2f} s (RTF {seconds[name] / audio[name]:.4f})"
                            for name in ("clip", "long", "files"))
        print(f"  {runtime:>10}: start-up {seconds['startup']:.1f} s; warm: {figures}")
        if "features" in seconds:
            print(f"  {'':>10}  of the 10-minute recording's {seconds['long']:.2f} s, openSMILE features alone: "
                  f"{seconds['features']:.2f} s (RTF {seconds['features'] / audio['long']:.4f})")


if __name__ == "__main__":
    main()
