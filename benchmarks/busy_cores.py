"""How many of this machine's cores a command keeps busy: its wall time, and the busy cores per second, averaged.

    python benchmarks/busy_cores.py -- python -m pytest -q -n 2

Reads /proc/stat (Linux) once a second while the command runs; prints the command's own output as it comes, then
the elapsed seconds, the mean number of busy cores over the run, and the mean of each minute. The whole machine is
measured, so run nothing else beside it.
"""

import os
import subprocess
import sys
import time


def busy_and_total() -> tuple[int, int]:
    """Jiffies spent busy (not idle, not waiting for I/O) and in all, summed over the cores, since boot."""
    with open("/proc/stat") as handle:
        fields = [int(value) for value in handle.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def main(command: list[str]) -> int:
    cores = os.cpu_count() or 1
    started = time.monotonic()
    process = subprocess.Popen(command)
    samples = []
    last = busy_and_total()
    while process.poll() is None:
        time.sleep(1.0)
        now = busy_and_total()
        if now[1] > last[1]:
            samples.append(cores * (now[0] - last[0]) / (now[1] - last[1]))
        last = now
    elapsed = time.monotonic() - started
    minutes = [samples[k:k + 60] for k in range(0, len(samples), 60)]
    print(f"\n{' '.join(command)}: exit status {process.returncode}, {elapsed:.0f} s; busy cores (of {cores}): "
          f"mean {sum(samples) / max(1, len(samples)):.2f}; by minute "
          + " ".join(f"{sum(minute) / len(minute):.2f}" for minute in minutes))
    return process.returncode


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if arguments[:1] == ["--"]:
        arguments = arguments[1:]
    if not arguments:
        sys.exit(__doc__)
    sys.exit(main(arguments))
