"""`python -m emokeras.tune --fold 3`.

A Keras Tuner search over multi-view learning's settings (`emokeras.training.tuning`).

Searches βa, βm, the contrastive margin and the negative rule (the values of the paper's Appendix B) for the
multi-view run the flags of `emokeras.train` describe (default: B-ACO-1 trained jointly with H-MM-4), maximising
the acoustic view's validation UA. The tuner's state goes to `tuning/<experiment>.fold-<k>/`, so a stopped search
resumes when started again. At the end it prints the best trial and the `emokeras.train` command that retrains
it. `--tuner grid|random|bayesian`.

Spread over processes or machines (docs/scaling.md):

    python -m emokeras.tune --fold 3 --workers 2                       # a chief and 2 workers on this machine
    python -m emokeras.tune --fold 3 --tuner_id chief --oracle_address host:8000     # on one machine,
    python -m emokeras.tune --fold 3 --tuner_id worker1 --oracle_address host:8000   # and on each of the others

(`KERASTUNER_TUNER_ID`, `KERASTUNER_ORACLE_IP` and `KERASTUNER_ORACLE_PORT` do the same as the last two flags.)
`--workers N` restarts a worker that dies (at most `--worker_retries` times) and stops everything if the chief dies.
"""

import sys

from emokeras import cli
from emokeras.config import TrainConfig, TuneConfig


def main(argv):
    """Runs (or resumes) the search the flags give."""
    cli.no_arguments(argv)
    config, space = cli.config_from_flags(TrainConfig), cli.config_from_flags(TuneConfig)
    if space.workers:
        if space.tuner_id or space.oracle_address:
            raise ValueError("--workers starts its own chief and workers; give it no --tuner_id or --oracle_address")
        from emokeras.training.supervisor import supervise_search

        return supervise_search(sys.argv[1:], space.workers, space.worker_retries)
    cli.load_tensorflow()
    # Imported here: TensorFlow loads after the command's quiet start (emokeras.quiet).
    from emokeras.training.tuning import search_hyperparameters

    search_hyperparameters(config, space)
    return 0


def define_flags():
    """Defines the command's flags."""
    cli.define_flags(TrainConfig, defaults={"multiview": "joint"})  # tuning searches a multi-view run
    cli.define_flags(TuneConfig)


def run():
    """Runs the command on `sys.argv`."""
    cli.run_command(main, define_flags, resumable=True)


if __name__ == "__main__":
    run()
