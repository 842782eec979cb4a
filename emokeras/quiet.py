"""A quiet start for the commands: no TensorFlow C++ log line on a CPU machine, `--help` included.

TensorFlow reads `TF_CPP_MIN_LOG_LEVEL` once, when it is first imported, and some lines come before even that
(the CUDA stub's "Could not find cuda drivers", absl's "before InitializeLog" warning): so a command calls
`start` before anything imports TensorFlow, which sets the level (3: fatal only) and, for commands that use
TensorFlow, imports it with its C++ output held back (shown only if the import fails). A level the user has set is
left as it is and applied to the lines TensorFlow writes before reading it (`at_level`), and `--verbose` shows
everything. What those lines would have said about a real problem is said in one line instead: a GPU that exists
but that TensorFlow cannot use (`report_unusable_gpu`). gRPC's INFO lines, of the same form, are held back by
`GRPC_VERBOSITY=ERROR` unless the user set it or `--verbose`.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
import sys
import tempfile

VERBOSE_FLAG = "--verbose"
# Set beside the level by `start`, so that a command's own processes (workers, parallel jobs) stay quiet too,
# rather than taking the inherited level for one the user set.
_SET_BY_START = "EMOKERAS_QUIET_START"


def _level_set_by_user() -> int | None:
    """`TF_CPP_MIN_LOG_LEVEL` as the user set it (TensorFlow reads what is not a number as 0), or None."""
    if "TF_CPP_MIN_LOG_LEVEL" not in os.environ or _SET_BY_START in os.environ:
        return None
    try:
        return int(os.environ["TF_CPP_MIN_LOG_LEVEL"])
    except ValueError:
        return 0


_user_level = _level_set_by_user()
# A record of TensorFlow's C++ log ("I0000 00:00:1796180363.233633 20069 port.cc:153] ...") and its severity.
_RECORD = re.compile(r"([IWEF])\d{4} ")
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}
# absl's notice that the records before its log is set up go to standard error whatever the level.
_BEFORE_INITIALIZATION = "WARNING: All log messages before absl::InitializeLog() is called"

logger = logging.getLogger("emokeras")


def verbose() -> bool:
    """Whether the command line asks for TensorFlow's own log lines (`--verbose`, read before flags are parsed)."""
    return any(arg == VERBOSE_FLAG or arg.lower() in ("--verbose=true", "--verbose=1") for arg in sys.argv[1:])


@contextlib.contextmanager
def held_back_stderr(passed=None):
    """Within the block, what anything writes to file descriptor 2 (C++ included) is held back.

    Written out if the block fails; if it succeeds, dropped, or with `passed`, what `passed(text)` returns is
    written out.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            os.write(2, held.read())
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        if passed is not None:
            held.seek(0)
            shown = passed(held.read().decode(errors="replace"))
            if shown:
                os.write(2, shown.encode())


def at_level(text: str, level: int) -> str:
    r"""The part of `text` that TensorFlow's C++ log shows at `TF_CPP_MIN_LOG_LEVEL=level`.

    TensorFlow writes its first records before it reads the level, whatever the level ("I0000 ... oneDNN custom
    operations are on"); this applies it to them. A record is kept if its severity (I 0, W 1, E 2, F 3) is at least
    `level`, with the lines that continue it; absl's notice about records before its initialisation is information.
    Lines before the first record are kept.

    >>> at_level("I0000 00:00:1.0 7 port.cc:153] oneDNN\nE0000 00:00:1.0 7 a.cc:52] cuInit\n more\n", 2)
    'E0000 00:00:1.0 7 a.cc:52] cuInit\n more\n'
    """
    kept, keep = [], True
    for line in text.splitlines(keepends=True):
        record = _RECORD.match(line)
        if record:
            keep = _SEVERITY[record.group(1)] >= level
        elif line.startswith(_BEFORE_INITIALIZATION):
            keep = _SEVERITY["I"] >= level
        if keep:
            kept.append(line)
    return "".join(kept)


def start(tensorflow: bool = False) -> None:
    """Sets TensorFlow's C++ log level, and imports TensorFlow quietly if `tensorflow` (the command uses it).

    Call it before anything imports TensorFlow; calling it again does nothing more.
    """
    loud = verbose() or _user_level == 0
    if not loud and _user_level is None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ[_SET_BY_START] = "1"
    if not verbose():
        # gRPC (a distributed search's chief and workers) writes INFO lines of the same form ("I1202 ...
        # chttp2_transport.cc:1403] ... Got goaway") unless told otherwise; a value the user sets is kept.
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    if tensorflow and "tensorflow" not in sys.modules:
        if loud:
            import tensorflow  # noqa: F401
        elif _user_level is None:
            with held_back_stderr():
                import tensorflow  # noqa: F401
        else:  # the user's level, applied to the records TensorFlow writes before it reads it
            with held_back_stderr(passed=lambda text: at_level(text, _user_level)):
                import tensorflow  # noqa: F401


def report_unusable_gpu() -> None:
    """One warning where this machine has an NVIDIA GPU that TensorFlow cannot use.

    TensorFlow's own reasons are among the lines the quiet start holds back: `--verbose` shows them.
    """
    if "tensorflow" not in sys.modules:
        return
    devices = sorted(glob.glob("/dev/nvidia[0-9]*"))
    if not devices:
        return
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        logger.warning("this machine has a GPU (%s) that TensorFlow cannot use, so this runs on the CPU; --verbose "
                       "shows TensorFlow's reason", ", ".join(devices))
