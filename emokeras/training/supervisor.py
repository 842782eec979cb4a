"""Processes on this machine, each with its share of it.

One GPU each where there are GPUs, else the cores shared out; their output prefixed with their name; Ctrl-C forwarded to
all (no TensorFlow here).

`Supervisor` runs `Job`s (a command line and its name): `tune --workers N` runs a Keras Tuner chief and N workers,
restarting a worker that dies; `crossval --jobs N` runs N training runs at a time.
"""

from __future__ import annotations

import dataclasses
import glob
import logging
import os
import signal
import subprocess
import sys
import threading
import time

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Job:
    """A command to run as its own process.

    Attributes:
      name: how its output lines and messages name it.
      command: the command line (argv).
      share: `{"gpu": "0"}` or `{"cpus": [...]}` (what `shares` gives), or None for the whole machine.
      retries: how often it is started again after dying (a non-zero exit or a signal).
    """

    name: str
    command: list
    share: dict | None = None
    retries: int = 0
    started: int = 0
    process: subprocess.Popen | None = None


def gpus() -> list[str]:
    """This machine's GPUs, as CUDA_VISIBLE_DEVICES ids: those it already lists, else one per /dev/nvidia<k>."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [device for device in visible.split(",") if device.strip() and device.strip() != "-1"]
    return [os.path.basename(path)[len("nvidia"):] for path in sorted(glob.glob("/dev/nvidia[0-9]*"))]


def shares(count: int) -> list[dict]:
    """What each of `count` processes gets.

    One GPU each (in turn, where there are fewer GPUs), or an equal part of the cores this process may run on (at least
    one core each).
    """
    devices = gpus()
    if devices:
        return [{"gpu": devices[k % len(devices)]} for k in range(count)]
    cores = sorted(os.sched_getaffinity(0))
    size = max(1, len(cores) // count)
    return [{"cpus": [cores[(k * size + j) % len(cores)] for j in range(size)]} for k in range(count)]


def describe(share: dict | None) -> str:
    """How a log line names a share: its GPU, its cores, or the whole machine."""
    if not share:
        return "the whole machine"
    if "gpu" in share:
        return f"GPU {share['gpu']}"
    return f"core{'s' if len(share['cpus']) > 1 else ''} {','.join(map(str, share['cpus']))}"


class Supervisor:
    """Starts and watches jobs; on Ctrl-C (or `stop`), stops them all."""

    def __init__(self):
        self._lock = threading.Lock()
        self.jobs: list[Job] = []

    def start(self, job: Job) -> Job:
        """Starts `job` in its own process group, held to its share of the machine."""
        env = dict(os.environ)
        cpus = None
        if job.share and "gpu" in job.share:
            env["CUDA_VISIBLE_DEVICES"] = job.share["gpu"]
        elif job.share and "cpus" in job.share:
            cpus = set(job.share["cpus"])
            # Threads follow the cores: TensorFlow sizes its pools from the cores it may run on.
            env["OMP_NUM_THREADS"] = str(len(cpus))

        def preexec():
            # `stop` sends SIGINT: a supervisor started in the background (SIGINT ignored) must not pass that on.
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            if cpus:
                os.sched_setaffinity(0, cpus)
        job.process = subprocess.Popen(job.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                       preexec_fn=preexec, start_new_session=True, text=True, bufsize=1)
        job.started += 1
        for stream, target in ((job.process.stdout, sys.stdout), (job.process.stderr, sys.stderr)):
            threading.Thread(target=self._relay, args=(job.name, stream, target), daemon=True).start()
        if job not in self.jobs:
            self.jobs.append(job)
        return job

    def _relay(self, name: str, stream, target) -> None:
        for line in stream:
            with self._lock:
                target.write(f"[{name}] {line}")
                target.flush()

    def stop(self, sig=signal.SIGINT, grace: float = 30.0) -> None:
        """Sends `sig` to every running job, then kills those still running after `grace` seconds."""
        running = [job for job in self.jobs if job.process and job.process.poll() is None]
        for job in running:
            try:
                os.killpg(job.process.pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        for job in running:
            try:
                job.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(job.process.pid, signal.SIGKILL)
                job.process.wait()

    @staticmethod
    def how_it_ended(code: int) -> str:
        """`exit status N` or `signal N`, from a process's return code."""
        return f"signal {-code}" if code < 0 else f"exit status {code}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def without_flags(args: list[str], *names: str) -> list[str]:
    """`args` without the flags `names` (`--name value`, `--name=value`, `--noname`)."""
    kept, skip = [], False
    for arg in args:
        if skip:
            skip = False
            continue
        name = arg.lstrip("-").split("=", 1)[0]
        if arg.startswith("--") and (name in names or (name.startswith("no") and name[2:] in names)):
            skip = "=" not in arg and not name.startswith("no") and name in names
            continue
        kept.append(arg)
    return kept


def supervise_search(args: list[str], workers: int, retries: int) -> int:
    """`tune --workers N`: a Keras Tuner chief and `workers` workers on this machine, on a free local port.

    A worker that dies (a non-zero exit or a signal) is started again with its id, so that it takes its trial back,
    at most `retries` times; if the chief dies, everything is stopped. Returns the exit status: 0 when the chief
    has ended the search and every worker has ended with it.
    """
    address = f"127.0.0.1:{free_port()}"
    base = [sys.executable, "-m", "emokeras.tune", *without_flags(args, "workers", "tuner_id", "oracle_address")]
    supervisor = Supervisor()
    chief = supervisor.start(Job("chief", [*base, "--tuner_id", "chief", "--oracle_address", address]))
    crew = [supervisor.start(Job(f"worker{k}", [*base, "--tuner_id", f"worker{k}", "--oracle_address", address],
                                 share=share, retries=retries))
            for k, share in enumerate(shares(workers))]
    logger.info("search at %s: a chief and %d worker(s) (%s)", address, workers,
                "; ".join(f"{job.name}: {describe(job.share)}" for job in crew))
    try:
        while True:
            time.sleep(0.5)
            code = chief.process.poll()
            if code is not None:
                if code != 0:
                    supervisor.stop()
                    logger.error("the chief ended with %s; the workers were stopped (the search's state is kept: "
                                 "run the same command again to resume it)", Supervisor.how_it_ended(code))
                    return 1
                for job in crew:  # the chief ends after its workers have been told the search is over
                    try:
                        job.process.wait(timeout=120)
                    except subprocess.TimeoutExpired:
                        supervisor.stop(signal.SIGTERM, grace=10)
                return 0 if all(job.process.returncode == 0 for job in crew) else 1
            for job in crew:
                code = job.process.poll()
                if code is None or code == 0:
                    continue
                if job.started > job.retries:
                    supervisor.stop()
                    logger.error("%s ended with %s after %d restart(s); the search was stopped (its state is "
                                 "kept: run the same command again to resume it)", job.name,
                                 Supervisor.how_it_ended(code), job.retries)
                    return 1
                logger.warning("%s ended with %s: started again with its id, to take its trial back (restart %d "
                               "of %d)", job.name, Supervisor.how_it_ended(code), job.started, job.retries)
                supervisor.start(job)
    except KeyboardInterrupt:
        supervisor.stop()
        raise


def run_jobs(jobs: list[Job], at_once: int) -> list[Job]:
    """Runs `jobs`, `at_once` at a time, each with its share (`shares(at_once)`, one per slot).

    Returns those that failed.
    """
    supervisor = Supervisor()
    pending, running, failed = list(jobs), {}, []
    slots = shares(at_once)
    try:
        while pending or running:
            for slot in range(at_once):
                if slot not in running and pending:
                    job = pending.pop(0)
                    job.share = slots[slot]
                    logger.info("%s: started (%s)", job.name, describe(job.share))
                    running[slot] = supervisor.start(job)
            time.sleep(0.5)
            for slot, job in list(running.items()):
                code = job.process.poll()
                if code is not None:
                    del running[slot]
                    if code != 0:
                        failed.append(job)
                        logger.error("%s ended with %s", job.name, Supervisor.how_it_ended(code))
    except KeyboardInterrupt:
        supervisor.stop()
        raise
    return failed
