"""How emokeras' commands start and end.

Absl flags made from the configuration dataclasses, quiet logs, and one place that turns a user's error into one line
and an exit status.

A command module is a thin shell: it defines its flags here (`define_flags`), builds its configuration from them
(`config_from_flags`), calls the library, and lets `run_command` report what went wrong.
"""

from __future__ import annotations

import atexit
import gc
import logging
import os
import sys

from absl import app, flags
from absl import logging as absl_logging

from emokeras import quiet
from emokeras import settings as configuration
from emokeras.files import FolderInUse, OutputError

logger = logging.getLogger("emokeras")
# Flags defined here belong to the command that asked for them, so its --help lists them.
flags.disclaim_key_flags()

# A user's error (bad input, a refused run, a missing file) is one line and exit status 1, not a traceback.
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, PermissionError, FolderInUse,
               OutputError, ConnectionError)


def define_flags(config_class, exclude=(), defaults=None, flag_values=flags.FLAGS) -> None:
    """Defines one absl flag per setting of `config_class` (`emokeras.settings.settings`), its help the field's.

    Args:
      config_class: the configuration dataclass whose settings become flags.
      exclude: flag names to leave out (a command that sets them itself).
      defaults: flag names to other defaults, for this command only.
      flag_values: where to define them (absl's global flags by default).
    """
    defaults = defaults or {}
    common = dict(flag_values=flag_values)
    for item in configuration.settings(config_class, tuple(exclude)):
        default = defaults.get(item.name, item.default)
        kind = item.base_type
        if item.choices is not None and kind is str:
            choices = [*item.choices, *([configuration.NONE] if item.optional else [])]
            flags.DEFINE_enum(item.name, configuration.NONE if default is None else default, choices, item.help,
                              **common)
        elif kind is bool:
            flags.DEFINE_boolean(item.name, default, item.help, **common)
        elif kind is int:
            flags.DEFINE_integer(item.name, default, item.help, lower_bound=item.lower, upper_bound=item.upper,
                                 **common)
        elif kind is float:
            flags.DEFINE_float(item.name, default, item.help, lower_bound=item.lower, upper_bound=item.upper,
                               **common)
        elif kind is tuple:
            flags.DEFINE_list(item.name, [str(value) for value in default], item.help + " (comma-separated)",
                              **common)
        else:
            flags.DEFINE_string(item.name, default, item.help, **common)


def config_from_flags(config_class, values=flags.FLAGS, exclude=(), **fields):
    """The `config_class` that the parsed flags describe; `fields` set top-level fields the flags do not.

    Raises:
      ValueError: a value the setting does not allow, naming the flag.
    """
    parsed = {}
    for item in configuration.settings(config_class, tuple(exclude)):
        value = getattr(values, item.name)
        if item.optional and value == configuration.NONE:
            value = None
        elif item.base_type is tuple:
            try:
                value = tuple(item.item_type(part) for part in value)
            except ValueError:
                raise ValueError(f"--{item.name} takes comma-separated {item.item_type.__name__}s, got "
                                 f"{','.join(value)!r}") from None
        parsed[item.name] = value
    return configuration.from_flat(config_class, parsed, **fields)


class _Below:
    """A logging filter: records below `level`."""

    def __init__(self, level: int):
        self.level = level

    def filter(self, record) -> bool:
        return record.levelno < self.level


def show_library_log() -> None:
    """The library logs rather than prints; a command shows its `emokeras` log as plain lines.

    Reports (INFO) go to stdout, as a command's output; warnings and errors to stderr, prefixed with their level.
    """
    if getattr(logger, "_shown_by_command", False):
        return
    report = logging.StreamHandler(sys.stdout)
    report.setLevel(logging.INFO)
    report.addFilter(_Below(logging.WARNING))
    report.setFormatter(logging.Formatter("%(message)s"))
    problems = logging.StreamHandler(sys.stderr)
    problems.setLevel(logging.WARNING)
    problems.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logger.addHandler(report)
    logger.addHandler(problems)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # absl's root handler would print each line again
    logger._shown_by_command = True


HELP_FLAGS = ("--help", "-help", "-h", "-?", "--helpshort", "--helpfull")
INTERRUPTED = 130  # 128 + SIGINT: a shell's status for a command stopped by Ctrl-C
BROKEN_PIPE = 141  # 128 + SIGPIPE: a command whose reader went away, as Unix tools end


def one_line(error: BaseException) -> str:
    """An error's text on one line (a multi-line message joined by " / ")."""
    return " / ".join(part.strip() for part in str(error).splitlines() if part.strip()) or type(error).__name__


def load_tensorflow() -> None:
    """Imports TensorFlow quietly (`emokeras.quiet`), and says in one line if a GPU here is one it cannot use."""
    quiet.start(tensorflow=True)
    quiet.report_unusable_gpu()


def run_command(main, define_command_flags, resumable: bool = False) -> None:
    """Defines the command's flags and runs `main(argv)` under absl.

    TensorFlow's C++ INFO lines and absl's INFO logging are turned off first: they would drown the command's own
    report. How a command ends:

    - a user's error (`USER_ERRORS`): one line naming the problem, exit status 1;
    - Ctrl-C: one line, exit status 130 (with `resumable`, saying that the same command resumes);
    - a reader that went away (`... | head`): quietly, exit status 141, as Unix tools end;
    - `--help`: the usage on standard output, exit status 0;
    - otherwise `main`'s own status (None is 0).

    Args:
      main: the command, `main(argv)`, returning its exit status (None for 0).
      define_command_flags: defines the command's flags.
      resumable: the command picks up where it stopped when run again (train, crossval, tune, prepare).

    A command that uses TensorFlow calls `load_tensorflow()` once its flags are read and checked, so that a mistake
    in them is reported at once rather than after TensorFlow's import.
    """
    quiet.start()
    try:
        os.fstat(1)
    except OSError:  # standard output closed: hold its descriptor, so no file opened later takes its place
        os.open(os.devnull, os.O_WRONLY)
    if hasattr(sys.stdout, "reconfigure"):  # a line at a time into a pipe too, as a supervisor or a cluster log reads
        sys.stdout.reconfigure(line_buffering=True)

    def guarded(argv):
        try:
            status = main(argv)
        except USER_ERRORS as error:
            logger.error("%s", one_line(error))
            sys.exit(1)
        except KeyboardInterrupt:
            logger.error("interrupted%s", "; run the same command again to resume where it stopped" if resumable
                         else "")
            sys.exit(INTERRUPTED)
        except BrokenPipeError:
            # The rest of the output has nowhere to go; Python's own flush at exit must not complain either.
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            sys.exit(BROKEN_PIPE)
        skip_the_collection_at_exit()
        return status

    define_command_flags()
    flags.DEFINE_boolean("verbose", False, "Show TensorFlow's own log lines (hidden by default).")
    asked = [arg for arg in sys.argv[1:] if arg in HELP_FLAGS]
    if asked:  # absl's own --help ends with status 1
        app.usage(shorthelp=asked[0] != "--helpfull", writeto_stdout=True, exitcode=0)
    absl_logging.set_verbosity(absl_logging.INFO if quiet.verbose() else absl_logging.WARNING)
    show_library_log()
    app.run(guarded)


def skip_the_collection_at_exit() -> None:
    """At interpreter exit, no garbage collection of the objects then alive: for a command whose work has ended.

    Python's exit collects reference cycles among every object left, which with TensorFlow and a trained model loaded
    is millions: measured here, 1.4 of the 1.6 s of CPU a small `train` run spent exiting (`gc.freeze` at exit: 0.2
    s). Objects are still released as their modules are cleared, and the memory goes with the process. Called once
    a command's `main` has returned, when what it wrote is closed (files in `with` blocks, TensorBoard writers at the
    end of training); a command stopped by an error or Ctrl-C keeps the collection, which closes what it left open.
    """
    atexit.register(gc.freeze)


def parse_integers(text: str, flag: str) -> tuple[int, ...]:
    """`"0,3,7"` → `(0, 3, 7)`.

    Raises:
      ValueError: not comma-separated integers, or one repeated, naming `flag`.
    """
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"{flag} takes comma-separated integers such as 0,1,2, got {text!r}") from None
    repeated = sorted({value for value in values if values.count(value) > 1})
    if repeated:
        raise ValueError(f"{flag} repeats {','.join(map(str, repeated))}: {text!r}")
    return values


def no_arguments(argv) -> None:
    """Refuses positional arguments (commands that take flags only)."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
