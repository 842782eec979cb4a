"""emokeras: multimodal and multi-view emotion recognition (Aguilar et al., ACL 2019).

usage: python -m emokeras <command> [flags]      (or: emokeras <command> [flags])
       python -m emokeras <command> --help       every flag of a command

commands:
  prepare   a corpus on disk -> TFRecords with a manifest (demo, iemocap, msp-podcast, crema-d, ravdess, manifest)
  train     one model on one fold: best epoch kept, evaluated, exported
  crossval  a model over the corpus's folds (and seeds), and the Table 2/3 summary
  tune      a Keras Tuner search over multi-view learning's settings (alone, or a chief and workers)
  predict   emotions over recordings, from an exported model
  compare   paired tests of one experiment's UA against another's

Each command is also `python -m emokeras.<command>`.
"""

import importlib
import sys

COMMANDS = ("prepare", "train", "crossval", "tune", "predict", "compare")


def main() -> None:
    """Runs the command `sys.argv[1]` names, with the rest of the command line as its own."""
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help", "help"):
        sys.stdout.write(__doc__.lstrip("\n"))
        sys.exit(0 if args else 1)
    name = args[0]
    if name not in COMMANDS:
        sys.stderr.write(f"ERROR: {name!r} is not an emokeras command; choose one of {', '.join(COMMANDS)} "
                         "(python -m emokeras --help)\n")
        sys.exit(1)
    command = importlib.import_module(f"emokeras.{name}")
    # absl's --help describes the flags of the module that sys.argv[0] names, under __main__'s docstring.
    sys.argv = [command.__name__, *args[1:]]
    sys.modules["__main__"].__doc__ = command.__doc__
    command.run()


if __name__ == "__main__":
    main()
