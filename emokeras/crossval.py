"""`python -m emokeras.crossval --model H-MM-4`: the ten speaker-exclusive folds and a Table 2/3 report.

Takes every flag of `emokeras.train` but `--fold`, plus `--folds` (default: every fold of the corpus; `--folds
0,3,7`). Each fold is
an ordinary `train` run in `runs/<experiment>/fold-<k>/`, so a finished fold is reported rather than trained again
and an interrupted one resumes: a stopped sweep resumes where it stopped when started again. When the folds are
done it writes `summary.csv` and `summary.md` beside them (`emokeras.cross_validation`). With `--seeds 0,1,2`
every fold is trained with each seed, in `runs/<experiment>/seed-<s>/fold-<k>/`.
"""

from absl import flags

from emokeras import cli
from emokeras.config import TrainConfig
from emokeras.cross_validation import cross_validate, parse_seeds


def main(argv):
    cli.no_arguments(argv)
    seeds = parse_seeds(flags.FLAGS.seeds) if flags.FLAGS.seeds else None
    cross_validate(cli.config_from_flags(TrainConfig, exclude=("fold",), fold=0), flags.FLAGS.folds, seeds)


def define_flags():
    cli.define_flags(TrainConfig, exclude=("fold",))
    flags.DEFINE_string("folds", "all", "Comma-separated folds to run, e.g. 0,3,7; 'all' is every fold of the "
                        "corpus (0..9 for IEMOCAP and the demo).")
    flags.DEFINE_string("seeds", None, "Comma-separated seeds, e.g. 0,1,2: every fold is trained with each, in "
                        "<output>/<experiment>/seed-<s>/fold-<k>/, and the summary gives the sd over folds and over "
                        "seeds. Without it, --seed's runs in <output>/<experiment>/fold-<k>/.")


if __name__ == "__main__":
    cli.run_command(main, define_flags, resumable=True)
