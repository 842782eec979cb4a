"""Starting emokeras' absl commands the same way."""

from __future__ import annotations

import os


def run_command(main, define_flags) -> None:
    """Defines the command's flags and runs `main` under absl.

    TensorFlow's C++ INFO lines and absl's INFO logging are turned off first:
    they would drown the command's own report.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from absl import app
    from absl import logging as absl_logging

    define_flags()
    absl_logging.set_verbosity(absl_logging.WARNING)
    app.run(main)
