"""`python -m emokeras.compare runs/B-ACO-1 runs/B-ACO-1.joint.H-MM-4 [...]`.

Is one system's UA really above another's, at the level of these utterances and of these speakers?
(`emokeras.training.paired_tests`)

Each argument is what `crossval` wrote for one experiment: a folder of `fold-<k>/` runs, or of `seed-<s>/fold-<k>/`
runs (`crossval --seeds`). Each later system is compared with the first: ΔUA, a paired-bootstrap 95 % interval and
a paired permutation p over the test utterances, the exact Wilcoxon p, a paired-t interval and the wins over folds,
and each system's seeds (Holm-corrected over several systems). `--format json` gives the same as one object (a list
for more than two systems). Runs that do not cover the same folds and test utterances are refused, naming the
difference.
"""

import sys

from absl import app, flags

from emokeras import cli
from emokeras.training.paired_tests import RESAMPLES, compare, format_json, format_table

FLAGS = flags.FLAGS


def main(argv):
    """Compares the systems of `argv` and prints (or writes) the table."""
    folders = argv[1:]
    if len(folders) < 2:
        raise app.UsageError("give two or more experiment folders: python -m emokeras.compare runs/A runs/B")
    comparisons = compare(folders, resamples=FLAGS.resamples, seed=FLAGS.seed,
                          folds=cli.parse_integers(FLAGS.folds, "--folds") if FLAGS.folds else None,
                          seeds=cli.parse_integers(FLAGS.seeds, "--seeds") if FLAGS.seeds else None)
    sys.stdout.write(format_json(comparisons) if FLAGS.format == "json" else format_table(comparisons))
    return 0


def define_flags():
    """Defines the command's flags."""
    flags.DEFINE_enum("format", "table", ["table", "json"], "Output format.")
    flags.DEFINE_integer("resamples", RESAMPLES, "Bootstrap and permutation resamples.", lower_bound=100)
    flags.DEFINE_integer("seed", 0, "Seed of the resampling: the same inputs and seed give the same numbers.")
    flags.DEFINE_string("folds", None, "Compare only these folds (comma-separated).")
    flags.DEFINE_string("seeds", None, "Compare only these seeds (comma-separated).")


def run():
    """Runs the command on `sys.argv`."""
    cli.run_command(main, define_flags)


if __name__ == "__main__":
    run()
