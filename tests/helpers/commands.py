"""Running the commands as a user would: their environment, and what their output must not hold."""

import contextlib
import os
import signal

# A TensorFlow C++ log line, or one of the start-up lines a quiet start holds back.
TF_LOG_LINE = r"(^[IWEF]\d{4} )|cuInit|oneDNN|cudart|InitializeLog|cuda drivers"


def user_environment(**changes) -> dict:
    """This process's environment without the log level the tests set for themselves (a user has none)."""
    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
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
