"""openSMILE ComParE_2016 frame features: 65 low-level descriptors and their 65 deltas, 10 ms hop.

Extraction runs in worker processes (`python -m emokeras.data.features.acoustic`),
never in the calling process: constructing `opensmile.Smile` in a process
that has imported TensorFlow aborts it (`malloc(): invalid size`), and a
fresh interpreter starts clean whatever its parent has loaded. Workers also
give parallel extraction across cores. This module imports neither TensorFlow nor
anything that does.
"""

from __future__ import annotations

import atexit
import os
import pickle
import signal
import stat
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterable, Iterator

import audiofile
import audresample
import numpy as np
import soundfile

import emokeras

SAMPLE_RATE = 16000
NUM_FEATURES = 130
FEATURE_SET = "ComParE_2016/LowLevelDescriptors+LowLevelDescriptors_Deltas"
# Shortest audio that yields a frame: one 60 ms analysis window.
MIN_SAMPLES = int(0.06 * SAMPLE_RATE)
# Below one step of 16-bit audio (-90 dBFS) everywhere, a file holds no sound: its features would say nothing.
SILENCE = 1.0 / 32768

_smile = None  # one per worker process
AHEAD = 16  # items per worker extracted ahead of the caller: bounded memory, and the workers never wait
LEVELS = "lld;lld_de"  # ComParE_2016's LowLevelDescriptors and LowLevelDescriptors_Deltas levels


class FeatureError(Exception):
    """Audio that cannot give valid features; the message names the file and the problem."""


def _extractor():
    global _smile
    if _smile is None:
        if "tensorflow" in sys.modules:
            raise RuntimeError(
                "opensmile.Smile must not be constructed in a process that imported TensorFlow "
                "(it aborts); use extract_frames_parallel, which runs openSMILE in worker processes")
        import opensmile

        # One pass, one sink reading both levels: openSMILE's data reader pairs
        # LLD and delta frames itself, at half the cost of two extractors.
        _smile = opensmile.Smile(feature_set=opensmile.FeatureSet.ComParE_2016, feature_level=LEVELS)
    return _smile


_FILE_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
               (stat.S_ISSOCK, "a socket"))


def check_audio_path(path: str) -> None:
    """Raises FeatureError naming `path` unless it is a regular file, before anything opens it.

    Opening a FIFO without a writer blocks for ever, and a device is not audio.
    """
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise FeatureError(f"{path}: no such file") from None
    except OSError as error:
        raise FeatureError(f"{path}: cannot be read ({error.strerror})") from None
    if stat.S_ISDIR(status.st_mode):
        raise FeatureError(f"{path}: a folder, not an audio file")
    if not stat.S_ISREG(status.st_mode):
        kind = next((name for test, name in _FILE_KINDS if test(status.st_mode)), "not a regular file")
        raise FeatureError(f"{path}: not an audio file ({kind}); give a regular file")


def audio_info(path: str):
    """Soundfile's view of a regular file's header.

    Raises:
      FeatureError: `path` is not a regular file, or not audio soundfile reads (WAV, FLAC, OGG, MP3, ...).
    """
    check_audio_path(path)
    try:
        return soundfile.info(path)
    except Exception as error:  # soundfile raises several types for bad files
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise FeatureError(f"{path}: not an audio file soundfile can read ({reason})") from None


def read_audio(path: str, start: float | None = None, end: float | None = None) -> np.ndarray:
    """Reads a wav, or its `[start, end)` seconds, as mono float32 at 16 kHz.

    Only the part asked for is read, so a segment of an hour-long recording
    costs the memory of the segment.

    Several channels are averaged. Audio above 16 kHz is resampled down (no
    band that ComParE measures is lost); audio below 16 kHz is refused, as
    upsampling cannot restore the band above its Nyquist frequency that the
    spectral descriptors measure.

    The samples are checked before anything else reads them: NaN or infinite
    values, and float samples beyond ±1 (a file written at the wrong scale:
    clipping it would change every energy and spectral feature), are refused;
    so is a file that is all silence. openSMILE would turn any of these into
    features that look valid.

    Args:
      path: an audio file.
      start: the segment's start in seconds (None: the file's start).
      end: the segment's end in seconds (None: the file's end).

    Raises:
      FeatureError: a missing path or a folder, unreadable, empty, non-finite, over-range, silent, too short or
        under-sampled audio. For a segment, the message names it: `a.wav [7.00 s, 14.00 s): ...`.
    """
    audio_info(path)  # a file soundfile cannot read is not audio: never handed to audiofile's external tools
    name = request_name(path if start is None and end is None else (path, start, end))
    offset = start or None
    duration = None if end is None else end - (start or 0.0)
    try:
        signal, rate = audiofile.read(path, offset=offset, duration=duration, always_2d=True, dtype="float32")
    except Exception as error:  # soundfile raises several types for bad files
        raise FeatureError(f"{path}: unreadable audio ({type(error).__name__}: {error})") from None
    return prepared_signal(signal, rate, name)


def prepared_signal(signal: np.ndarray, rate: int, name: str = "<signal>") -> np.ndarray:
    """Checks samples `[channels, samples]` (or `[samples]`) at `rate` Hz; returns mono float32 at 16 kHz.

    The checks and conversions of `read_audio`, for a signal already in memory. Silence is judged on what the
    model hears: after the channels are mixed (two channels in antiphase mix to nothing) and the rate converted.

    Raises:
      FeatureError: naming `name` and the problem.
    """
    signal = np.asarray(signal, dtype=np.float32)
    signal = signal[np.newaxis] if signal.ndim == 1 else signal
    if signal.size == 0:
        raise FeatureError(f"{name}: no samples")
    finite = np.isfinite(signal)
    if not finite.all():
        raise FeatureError(f"{name}: {int((~finite).sum())} of {signal.size} samples are NaN or infinite")
    peak = float(np.abs(signal).max())
    if peak > 1.0:
        raise FeatureError(f"{name}: samples reach {peak:.4g}, beyond the [-1, 1] of audio samples; rescale the "
                           "file (emokeras does not clip it: that would change its energy and spectrum)")
    channels = signal.shape[0]
    signal = signal.mean(axis=0, keepdims=True) if channels > 1 else signal
    if rate < SAMPLE_RATE:
        raise FeatureError(f"{name}: sample rate {rate} Hz is below {SAMPLE_RATE} Hz; "
                           "ComParE features need 16 kHz audio")
    if rate != SAMPLE_RATE:
        signal = audresample.resample(signal, rate, SAMPLE_RATE)
    signal = signal[0]
    if float(np.abs(signal).max(initial=0.0)) < SILENCE:
        raise FeatureError(f"{name}: all silence {'once its channels are mixed ' if channels > 1 else ''}"
                           "(no sample above -90 dBFS)")
    if signal.shape[0] < MIN_SAMPLES:
        raise FeatureError(f"{name}: {1000 * signal.shape[0] / SAMPLE_RATE:.0f} ms of audio is shorter "
                           f"than one 60 ms analysis window")
    return np.ascontiguousarray(signal, dtype=np.float32)


def frames_from_signal(signal: np.ndarray, name: str = "<signal>") -> np.ndarray:
    """Returns float32 `[num_frames, 130]`: ComParE LLDs then their deltas, one row per 10 ms.

    Both levels come from one openSMILE pass whose reader joins them frame by
    frame; this equals joining the separate LLD and delta outputs on their
    (start, end) index, but for the deltas of the last one or two frames,
    which openSMILE's end-of-stream flush computes differently in the two
    set-ups (tests/test_acoustic.py checks this).

    Raises:
      FeatureError: if openSMILE returns no frames or NaN.
    """
    return frames_from_table(_extractor().process_signal(signal, SAMPLE_RATE), name)


def frames_from_table(table, name: str = "<signal>") -> np.ndarray:
    """Checks openSMILE's `(start, end)`-indexed table and returns its values as float32.

    A repeated `(start, end)` row (openSMILE repeats frames when it flushes)
    keeps its first occurrence.

    Raises:
      FeatureError: no frame, the wrong number of columns, or NaN.
    """
    table = table[~table.index.duplicated(keep="first")]
    if table.shape[0] == 0:
        raise FeatureError(f"{name}: openSMILE returned no frames")
    if table.shape[1] != NUM_FEATURES:
        raise FeatureError(f"{name}: expected {NUM_FEATURES} features, openSMILE returned {table.shape[1]}")
    frames = table.to_numpy(dtype=np.float32)
    if not np.isfinite(frames).all():
        raise FeatureError(f"{name}: openSMILE returned NaN or infinite values "
                           f"(in {int((~np.isfinite(frames)).any(axis=1).sum())} of {frames.shape[0]} frames)")
    return frames


def feature_names() -> list[str]:
    """The 130 column names, in the order of the frames' columns."""
    return list(_extractor().feature_names)


def segment_name(start: float, end: float | None) -> str:
    """`[7.00 s, 14.00 s)`: how messages name a segment of a file."""
    return f"[{start:.2f} s, {'end' if end is None else f'{end:.2f} s'})"


def extract_file(path: str, start: float | None = None, end: float | None = None) -> np.ndarray:
    """Reads `path` (or its `[start, end)` seconds) and returns its frames (see `frames_from_signal`)."""
    name = request_name(path if start is None and end is None else (path, start, end))
    return frames_from_signal(read_audio(path, start, end), name=name)


def extract_or_error(request):
    """Worker entry: (frames, None) or (None, message); one bad file never stops the rest.

    `request` is a path, or `(path, start, end)` for a segment in seconds.
    """
    path, start, end = (os.fspath(request), None, None) if not isinstance(request, tuple) else request
    try:
        return extract_file(path, start, end), None
    except FeatureError as error:
        return None, str(error)
    except Exception as error:  # openSMILE errors are plain exceptions; report, keep going
        return None, f"{path}: {type(error).__name__}: {error}"


def signal_frames_or_error(piece: tuple[np.ndarray, str]):
    """(frames, None) or (None, message) for `(signal at 16 kHz, name)`."""
    signal, name = piece
    try:
        return frames_from_signal(signal, name), None
    except FeatureError as error:
        return None, str(error)
    except Exception as error:  # openSMILE errors are plain exceptions
        return None, f"{name}: {type(error).__name__}: {error}"


def _serve() -> None:
    """Worker loop: reads pickled requests on stdin, answers pickled results on stdout.

    Requests are `("frames", path or (path, start, end))`, `("signal", (samples, name))` or
    `("names", None)`. The protocol gets its
    own copy of stdout, and fd 1 is pointed at stderr, so nothing a library
    prints can corrupt the stream. Ctrl-C is its parent's to handle: the worker ignores it and ends when its
    requests end.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    warnings.filterwarnings("ignore", message="Segment too short")
    protocol = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    requests = sys.stdin.buffer
    while True:
        try:
            kind, argument = pickle.load(requests)
        except EOFError:
            return
        if kind == "frames":
            result = extract_or_error(argument)
        elif kind == "signal":
            result = signal_frames_or_error(argument)
        else:
            result = feature_names()
        pickle.dump(result, protocol, protocol=pickle.HIGHEST_PROTOCOL)
        protocol.flush()


class Worker:
    """One `python -m emokeras.data.features.acoustic` process: a fresh interpreter with no TensorFlow.

    Subprocesses rather than `multiprocessing`, whose spawned children
    re-import the caller's `__main__` (and with it TensorFlow, if the caller
    imported it).
    """

    def __init__(self):
        package_parent = os.path.dirname(os.path.dirname(os.path.abspath(emokeras.__file__)))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
        self._process = subprocess.Popen([sys.executable, "-m", "emokeras.data.features.acoustic"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self._answered = True  # every request sent has had its answer read

    def call(self, kind, argument):
        """Sends one request and returns its answer.

        Raises:
          RuntimeError: the worker died (a broken pipe on the way in, or end of
            stream on the way out), naming its exit code and the request.
        """
        self._answered = False
        try:
            pickle.dump((kind, argument), self._process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self._process.stdin.flush()
            answer = pickle.load(self._process.stdout)
        except (EOFError, OSError):
            code = self._process.wait()
            raise RuntimeError(f"openSMILE worker exited with code {code} while processing {argument}") from None
        self._answered = True
        return answer

    def reusable(self) -> bool:
        """Alive, and no answer left unread (a call stopped midway, by Ctrl-C say, would leave one)."""
        return self._answered and self._process.poll() is None

    def close(self):
        """Ends the worker: it reads the end of its input and exits."""
        for pipe in (self._process.stdin, self._process.stdout):
            try:
                pipe.close()  # the worker reads end of stream and exits
            except OSError:
                pass  # already broken: the worker died
        self._process.wait()


IDLE_SECONDS = 300.0  # how long a worker given back by a closed pool waits for another pool before it ends


class _IdleWorkers:
    """Workers that closed pools gave back, for this process's next pools.

    A worker's start costs about a second of CPU (Python, opensmile's imports, building `Smile`), which a session
    making many recognisers or preparations, with TensorFlow loaded, would otherwise pay each time (joblib's reusable
    executor keeps its workers for the same reason). A worker waits at most `IDLE_SECONDS`, then ends; all end at
    exit; at most one per core waits. A worker that died or has an answer unread is ended, never given out.
    """

    def __init__(self):
        self._forget()
        self._exiting = False
        atexit.register(self._at_exit)
        os.register_at_fork(after_in_child=self._forget)

    def _at_exit(self) -> None:
        """Ends the waiting workers; a pool closed later, as the interpreter ends, ends its own (no timer then)."""
        self._exiting = True
        self.end_all()

    def _forget(self) -> None:
        """No worker waiting. In a forked child: the parent's workers are forgotten, not ended (they are its)."""
        self._lock = threading.Lock()
        self._waiting: list[tuple[Worker, float]] = []  # (worker, when it was given back), oldest first
        self._timer: threading.Timer | None = None  # ends the oldest waiting worker when it expires

    def take(self) -> Worker:
        """A waiting worker, or a new one."""
        while True:
            with self._lock:
                if not self._waiting:
                    return Worker()
                worker, _ = self._waiting.pop()
            if worker.reusable():
                return worker
            worker.close()

    def give(self, worker: Worker) -> None:
        """Keeps `worker` for the next pool if it can serve one, otherwise ends it."""
        if worker.reusable() and not self._exiting:
            with self._lock:
                if len(self._waiting) < (os.cpu_count() or 1):
                    self._waiting.append((worker, time.monotonic()))
                    if self._timer is None:  # a timer already set is due sooner: its worker came back earlier
                        self._schedule(IDLE_SECONDS)
                    return
        worker.close()

    def _schedule(self, delay: float) -> None:
        """The next look for expired workers, in `delay` seconds."""
        self._timer = threading.Timer(max(0.0, delay), self._end_expired)
        self._timer.daemon = True
        self._timer.start()

    def _end_expired(self) -> None:
        with self._lock:
            now = time.monotonic()
            expired = [worker for worker, since in self._waiting if now - since >= IDLE_SECONDS]
            self._waiting = [(worker, since) for worker, since in self._waiting if now - since < IDLE_SECONDS]
            self._timer = None
            if self._waiting:
                self._schedule(min(since for _, since in self._waiting) + IDLE_SECONDS - now)
        for worker in expired:
            worker.close()

    def end_all(self) -> None:
        """Ends every waiting worker, and the timer that would have."""
        with self._lock:
            ended, self._waiting = self._waiting, []
            timer, self._timer = self._timer, None
        if timer is not None:  # outside the lock, which a firing timer may be waiting for
            timer.cancel()
            timer.join()
        for worker, _ in ended:
            worker.close()


_idle = _IdleWorkers()


def end_idle_workers() -> None:
    """Ends now the workers closed pools gave back, rather than after `IDLE_SECONDS` or at exit (frees their memory).

    A pool still open keeps its own.
    """
    _idle.end_all()


def names_in_worker() -> list[str]:
    """`feature_names()`, computed in a worker process (safe after TensorFlow is imported)."""
    with WorkerPool(1) as pool:
        return pool.call("names", None)


def request_name(request) -> str:
    """How messages name an extraction request: the path, or the path and its segment."""
    if not isinstance(request, tuple):
        return os.fspath(request)
    path, start, end = request
    return f"{path} {segment_name(start or 0.0, end)}"


class WorkerPool:
    """openSMILE in `workers` worker processes, started when first needed and kept for later calls.

    `map` extracts many requests in parallel and yields in input order, at most `AHEAD` requests per worker ahead
    of the caller (memory does not grow with the number of requests). A worker that dies is replaced, its request
    reported as failed. Close the pool (or use it as a context manager) to give its workers back: this process's
    next pool takes them rather than starting new ones, and a worker no pool takes within `IDLE_SECONDS` ends.

    Args:
      workers: worker processes.
    """

    def __init__(self, workers: int = 2):
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        self.workers = workers
        self._pool: list[Worker] = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self) -> None:
        """Gives every worker of the pool back (see the class)."""
        for worker in self._pool:
            _idle.give(worker)
        self._pool = []

    def _start(self, count: int) -> None:
        while len(self._pool) < count:
            self._pool.append(_idle.take())

    def call(self, kind, argument):
        """One request to the first worker (see `Worker.call`); a dead worker is replaced for the next call."""
        self._start(1)
        try:
            return self._pool[0].call(kind, argument)
        except RuntimeError:
            self._pool.pop(0).close()
            raise

    def _frames(self, slot: int, request) -> tuple:
        """`((frames, None) or (None, message), whether worker `slot` failed and must be replaced)`."""
        try:
            return self._pool[slot].call("frames", request), False
        except Exception as error:  # any failure is this file's to report, not the end of the feeder
            name = request_name(request)
            return (None, f"{name}: {error}" if isinstance(error, RuntimeError) else
                    f"{name}: openSMILE worker failed ({type(error).__name__}: {error})"), True

    def _feed(self, slot: int, requests: list, order: _InOrder) -> None:
        """A feeder thread: takes requests, has worker `slot` answer them, reports the answers."""
        try:
            while (index := order.take()) is not None:
                answer, failed = self._frames(slot, requests[index])
                order.report(index, answer)
                if failed:  # the worker died, or its answer could not be read: the file is reported, a new worker
                    self._pool[slot].close()
                    self._pool[slot] = _idle.take()
        finally:  # a feeder that stops, however it stops, wakes the reader, which then stops waiting for it
            order.wake()

    def map(self, requests: Iterable, progress: bool = False, label: str = "openSMILE") -> Iterator[tuple]:
        """Yields `(request, frames, None)` or `(request, None, message)` for each request, in order.

        Each request is a path, or `(path, start, end)` for its `[start, end)` seconds; one bad file never stops
        the rest. With `progress`, a line on stderr shows files done, rate and time left.
        """
        requests = list(requests)
        if not requests:
            return
        order = _InOrder(len(requests), AHEAD * self.workers)
        slots = list(range(min(self.workers, len(requests))))
        self._start(len(slots))
        threads = [threading.Thread(target=self._feed, args=(slot, requests, order), daemon=True) for slot in slots]
        for thread in threads:
            thread.start()
        shown = _Progress(len(requests), label) if progress else None
        try:
            for index, request in enumerate(requests):
                answer = order.answer(index, threads)
                frames, error = answer or (None, f"{request_name(request)}: no openSMILE worker is left to extract it")
                if shown:
                    shown.update(index + 1)
                yield request, frames, error
        finally:
            order.stop()  # a caller that stops early: the feeders take nothing more
            for thread in threads:
                thread.join()


class _InOrder:
    """Hands `count` requests' indices to feeder threads, at most `ahead` in front of the reader; answers in order."""

    def __init__(self, count: int, ahead: int):
        self.count, self.ahead = count, ahead
        self.results: dict[int, tuple] = {}
        self.ready = threading.Condition()
        self.next = self.consumed = 0
        self.stopping = False

    def take(self) -> int | None:
        """The next request's index for a feeder, once the reader is close enough behind; None when done."""
        with self.ready:
            while not self.stopping and self.next < self.count and self.next >= self.consumed + self.ahead:
                self.ready.wait()
            if self.stopping or self.next >= self.count:
                return None
            self.next += 1
            return self.next - 1

    def report(self, index: int, result: tuple) -> None:
        """Keeps a feeder's answer for the reader."""
        with self.ready:
            self.results[index] = result
            self.ready.notify_all()

    def wake(self) -> None:
        """Wakes whoever waits (a feeder that stops)."""
        with self.ready:
            self.ready.notify_all()

    def answer(self, index: int, feeders: list) -> tuple | None:
        """Request `index`'s answer, or None once every feeder has stopped without giving it."""
        with self.ready:
            # A feeder's last notice comes just before it ends, while it still counts as alive: so the reader looks
            # again every second rather than waiting for a notice that will not come.
            while not self.ready.wait_for(lambda: index in self.results
                                          or not any(feeder.is_alive() for feeder in feeders), timeout=1.0):
                pass
            self.consumed = index + 1
            self.ready.notify_all()
            return self.results.pop(index, None)

    def stop(self) -> None:
        """Feeders take nothing more."""
        with self.ready:
            self.stopping = True
            self.ready.notify_all()


class _Progress:
    """A line on stderr: files done, rate and time left; redrawn in place on a terminal, ~10 lines in a log."""

    def __init__(self, total: int, label: str):
        self.total, self.label, self.started = total, label, time.monotonic()
        self.tty = sys.stderr.isatty()
        self.step = 10 if self.tty else max(10, total // 10)

    def update(self, done: int) -> None:
        """Shows `done` files of the total, every `step` files and at the end."""
        last = done == self.total
        if not last and done % self.step:
            return
        rate = done / max(time.monotonic() - self.started, 1e-9)
        print(f"{chr(13) if self.tty else ''}{self.label}: {done}/{self.total} files, {rate:.1f} files/s, "
              f"{(self.total - done) / rate:.0f} s left", end="\n" if last or not self.tty else "",
              file=sys.stderr, flush=True)


def extract_frames_parallel(paths: Iterable, workers: int = 2, progress: bool = True,
                            label: str = "openSMILE") -> Iterator[tuple]:
    """`WorkerPool(workers).map(paths)`, its workers given back when the iteration ends (see `WorkerPool`)."""
    with WorkerPool(workers) as pool:
        yield from pool.map(paths, progress=progress, label=label)


if __name__ == "__main__":
    _serve()
