"""Running the commands as a user would: their environment, their output read as it comes, and what it must not hold."""

import contextlib
import os
import signal
import sys
import threading

# A TensorFlow C++ log line, or one of the start-up lines a quiet start holds back.
TF_LOG_LINE = r"(^[IWEF]\d{4} )|cuInit|oneDNN|cudart|InitializeLog|cuda drivers"


def user_environment(**changes) -> dict:
    """This process's environment without the log levels the tests set for themselves (a user has none)."""
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("TF_CPP_MIN_LOG_LEVEL", "GRPC_VERBOSITY")}
    environment.update(changes)
    return environment


@contextlib.contextmanager
def ctrl_c_as_at_a_terminal():
    """Processes started in the block take SIGINT as a command started at a terminal does.

    A shell starts a background command with SIGINT ignored, and a process inherits an ignored signal through exec:
    a suite started with `&` would start commands that ignore Ctrl-C. A handler, unlike an ignored signal, is reset to
    the default in the new program.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# Python lines after which TensorFlow, Keras and TensorFlow Hub cannot be imported (an ImportError names the block).
TENSORFLOW_BLOCKED = ("import sys\n"
                      "class Refuse:\n"
                      "    def find_spec(self, name, path=None, target=None):\n"
                      "        if name.split('.')[0] in ('tensorflow', 'keras', 'tensorflow_hub', 'tf_keras'):\n"
                      "            raise ImportError(f'{name} is blocked in this test')\n"
                      "sys.meta_path.insert(0, Refuse())\n")


def without_tensorflow(module: str, *args: str) -> list[str]:
    """The command line running `python -m <module> <args>` in an interpreter where TensorFlow cannot be imported.

    A command that reports a mistake in its flags before importing TensorFlow answers as usual; one that imports it
    first fails with an ImportError naming the block.
    """
    script = (TENSORFLOW_BLOCKED + "import runpy\n"
              f"sys.argv = [{module!r}, *sys.argv[1:]]\n"
              f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)\n")
    return [sys.executable, "-c", script, *args]


def read_until(process, text, errors, timeout=300) -> str:
    """Reads `process`'s standard output until a line holds `text`; returns the lines read.

    Without such a line within `timeout` seconds, whether the process writes or is silent, the process is killed and
    the test fails with what it wrote (`errors`: the file its standard error goes to).
    """
    lines = []
    deadline = threading.Timer(timeout, process.kill)
    deadline.start()
    try:
        for line in process.stdout:
            lines.append(line)
            if text in line:
                return "".join(lines)
    finally:
        deadline.cancel()
    process.kill()
    process.wait()
    errors.seek(0)
    raise AssertionError(f"{text!r} not among the lines read:\n" + "".join(lines)[-3000:] + "\nstandard error:\n"
                         + errors.read()[-3000:])
