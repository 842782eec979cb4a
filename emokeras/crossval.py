"""`python -m emokeras.crossval --model H-MM-4`: the corpus's folds (and seeds) and a Table 2/3 report.

Takes every flag of `emokeras.train` but `--fold`, plus `--folds` (default: every fold of the corpus; `--folds
0,3,7`), `--seeds` and `--jobs`. Each fold is an ordinary `train` run in `runs/<experiment>/fold-<k>/`, so a
finished fold is reported rather than trained again and an interrupted one resumes: a stopped sweep resumes where
it stopped when started again. With `--seeds 0,1,2` every fold is trained with each seed, in
`runs/<experiment>/seed-<s>/fold-<k>/`. When the runs are done it writes `summary.csv` and `summary.md` beside them
(`emokeras.training.cross_validation`).

Runs are independent: `--jobs N` trains N of them at a time on this machine, each with its share of the cores or
one GPU; processes started at once with different `--folds` (or `--seeds`), on one machine or several, share an
output folder without stepping on each other, and a later `crossval` over all of them summarises without
training.
"""

import sys

from absl import flags

from emokeras import cli
from emokeras.config import TrainConfig


def main(argv):
    """Cross-validates the configuration the flags give."""
    cli.no_arguments(argv)
    values = flags.FLAGS
    seeds = cli.parse_integers(values.seeds, "--seeds") if values.seeds else None
    config = cli.config_from_flags(TrainConfig, exclude=("fold",), fold=0)
    cli.load_tensorflow()
    if values.jobs > 1 and not _parallel(config, values.folds, seeds, values.jobs):
        return 1
    # Imported here: TensorFlow loads after the command's quiet start (emokeras.quiet).
    from emokeras.training.cross_validation import cross_validate

    cross_validate(config, values.folds, seeds)
    return 0


def _parallel(config, folds_text, seeds, jobs) -> bool:
    """Trains every fold × seed as its own `train` process.

    `jobs` at a time (the summary follows in this process, reporting the runs, not training them); False if a run
    failed.
    """
    from emokeras.data import tfrecords
    from emokeras.training.cross_validation import parse_folds
    from emokeras.training.supervisor import Job, run_jobs, without_flags

    if not config.data:
        raise ValueError("crossval --jobs needs --data, a prepared folder (python -m emokeras.prepare first)")
    folds = parse_folds(folds_text, len(tfrecords.read_manifest(config.data)["folds"]))
    base = [sys.executable, "-m", "emokeras.train", *without_flags(sys.argv[1:], "folds", "seeds", "jobs", "seed")]
    runs = [(fold, seed) for seed in (seeds or (config.seed,)) for fold in folds]
    work = [Job(f"fold-{fold}" + (f" seed-{seed}" if seeds else ""),
                [*base, "--fold", str(fold), "--seed", str(seed), *(["--seed_folder"] if seeds else [])])
            for fold, seed in runs]
    failed = run_jobs(work, jobs)
    if failed:
        cli.logger.error("%d of %d runs failed (%s); run the same command again to resume them", len(failed),
                         len(work), ", ".join(job.name for job in failed))
    return not failed


def define_flags():
    """Defines the command's flags."""
    cli.define_flags(TrainConfig, exclude=("fold",))
    flags.DEFINE_string("folds", "all", "Comma-separated folds to run, e.g. 0,3,7; 'all' is every fold of the "
                        "corpus (0..9 for IEMOCAP and the demo).")
    flags.DEFINE_string("seeds", None, "Comma-separated seeds, e.g. 0,1,2: every fold is trained with each, in "
                        "<output>/<experiment>/seed-<s>/fold-<k>/, and the summary gives the sd over folds and over "
                        "seeds. Without it, --seed's runs in <output>/<experiment>/fold-<k>/.")
    flags.DEFINE_integer("jobs", 1, "Runs trained at a time, each in its own process with its share of the cores "
                         "or one GPU.", lower_bound=1)


def run():
    """Runs the command on `sys.argv`."""
    cli.run_command(main, define_flags, resumable=True)


if __name__ == "__main__":
    run()
