"""`python -m emokeras.crossval --model H-MM-4`: the ten speaker-exclusive folds and a Table 2/3 report.

Takes every flag of `emokeras.train` but `--fold`, plus `--folds` (default all ten: `--folds 0,3,7`). Each fold is
an ordinary `train` run in `runs/<experiment>/fold-<k>/`, so a finished fold is reported rather than trained again
and an interrupted one resumes: a stopped sweep resumes where it stopped when started again. When the folds are
done it writes `summary.csv` and `summary.md` beside them (`emokeras.cross_validation`).
"""

from absl import flags

from emokeras import cli
from emokeras.config import TrainConfig
from emokeras.cross_validation import cross_validate, parse_folds


def main(argv):
    cli.no_arguments(argv)
    folds = parse_folds(flags.FLAGS.folds)
    cross_validate(cli.config_from_flags(TrainConfig, exclude=("fold",), fold=folds[0]), folds)


def define_flags():
    cli.define_flags(TrainConfig, exclude=("fold",))
    flags.DEFINE_string("folds", "all", "Comma-separated folds to run, e.g. 0,3,7; 'all' is 0..9.")


if __name__ == "__main__":
    cli.run_command(main, define_flags)
