"""Running the commands as a user would: their environment, and what their output must not hold."""

import os

# A TensorFlow C++ log line, or one of the start-up lines a quiet start holds back.
TF_LOG_LINE = r"(^[IWEF]\d{4} )|cuInit|oneDNN|cudart|InitializeLog|cuda drivers"


def user_environment(**changes) -> dict:
    """This process's environment without the log level the tests set for themselves (a user has none)."""
    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    environment.update(changes)
    return environment
