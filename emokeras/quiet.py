"""A quiet start for the commands: no TensorFlow C++ log line on a CPU machine, `--help` included.

TensorFlow reads `TF_CPP_MIN_LOG_LEVEL` once, when it is first imported, and some lines come before even that
(the CUDA stub's "Could not find cuda drivers", absl's "before InitializeLog" warning): so a command calls
`start` before anything imports TensorFlow, which sets the level (3: fatal only) and, for commands that use
TensorFlow, imports it with its C++ output held back (shown only if the import fails). A level the user has set is
left as it is, and `--verbose` shows everything. What those lines would have said about a real problem is said in
one line instead: a GPU that exists but that TensorFlow cannot use (`report_unusable_gpu`).
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import sys
import tempfile

VERBOSE_FLAG = "--verbose"
# Set beside the level by `start`, so that a command's own processes (workers, parallel jobs) stay quiet too,
# rather than taking the inherited level for one the user set.
_SET_BY_START = "EMOKERAS_QUIET_START"
_user_set_level = "TF_CPP_MIN_LOG_LEVEL" in os.environ and _SET_BY_START not in os.environ

logger = logging.getLogger("emokeras")


def verbose() -> bool:
    """Whether the command line asks for TensorFlow's own log lines (`--verbose`, read before flags are parsed)."""
    return any(arg == VERBOSE_FLAG or arg.lower() in ("--verbose=true", "--verbose=1") for arg in sys.argv[1:])


@contextlib.contextmanager
def held_back_stderr():
    """Within the block, what anything writes to file descriptor 2 (C++ included) is held back.

    Dropped if the block succeeds, written out if it fails.
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


def start(tensorflow: bool = False) -> None:
    """Sets TensorFlow's C++ log level, and imports TensorFlow quietly if `tensorflow` (the command uses it).

    Call it before anything imports TensorFlow; calling it again does nothing more.
    """
    loud = verbose() or _user_set_level
    if not loud:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ[_SET_BY_START] = "1"
    if tensorflow and "tensorflow" not in sys.modules:
        if loud:
            import tensorflow  # noqa: F401
        else:
            with held_back_stderr():
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
