"""Where a recogniser's openSMILE frames come from: this process, or a pool of worker processes.

Constructing `opensmile.Smile` in a process that has imported TensorFlow aborts it (`malloc(): invalid size`):
`FrameSource` is the one place that decides. With one worker and no TensorFlow loaded (the ONNX runtime), openSMILE
runs here, without a worker's start-up; otherwise in `workers` worker processes (`features.acoustic.WorkerPool`),
started on first use and kept until `close`, which gives them back for this process's next pool. Either way the frames
are the same.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator

from emokeras.data.features import acoustic


def tensorflow_loaded() -> bool:
    """Whether this process has imported TensorFlow (after which openSMILE may not be built here)."""
    return "tensorflow" in sys.modules


class FrameSource:
    """openSMILE frames for recordings, their segments and signals in memory.

    Args:
      workers: worker processes; with 1 and no TensorFlow in this process, openSMILE runs here.
    """

    def __init__(self, workers: int = 1):
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        self.workers = workers
        self._pool: acoustic.WorkerPool | None = None

    @property
    def in_process(self) -> bool:
        """Whether openSMILE runs in this process (one worker asked for, TensorFlow not loaded)."""
        return self.workers == 1 and not tensorflow_loaded()

    def _workers(self) -> acoustic.WorkerPool:
        if self._pool is None:
            self._pool = acoustic.WorkerPool(self.workers)
        return self._pool

    def frames(self, requests: Iterable) -> Iterator[tuple]:
        """`(request, frames, None)` or `(request, None, message)` per request, in order.

        A request is a path, or `(path, start, end)`.
        """
        if self.in_process:
            for request in requests:
                yield request, *acoustic.extract_or_error(request)
        else:
            yield from self._workers().map(requests)

    def signal_frames(self, pieces: list[tuple]) -> list[tuple]:
        """`(frames, None)` or `(None, message)` per `(16 kHz mono samples, name)`."""
        if self.in_process:
            return [acoustic.signal_frames_or_error(piece) for piece in pieces]
        pool = self._workers()
        return [pool.call("signal", piece) for piece in pieces]

    def close(self) -> None:
        """Gives the worker processes back (see `features.acoustic.WorkerPool`); a later call takes workers again."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __del__(self):
        self.close()  # a recogniser dropped without close() keeps no worker to itself
