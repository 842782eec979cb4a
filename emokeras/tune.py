"""`python -m emokeras.tune --fold 3`: a Keras Tuner search over multi-view learning's settings (`emokeras.tuning`).

Searches βa, βm, the contrastive margin and the negative rule (the values of the paper's Appendix B) for the
multi-view run the flags of `emokeras.train` describe (default: B-ACO-1 trained jointly with H-MM-4), maximising
the acoustic view's validation UA. The tuner's state goes to `tuning/<experiment>.fold-<k>/`, so a stopped search
resumes when started again. At the end it prints the best trial and the `emokeras.train` command that retrains
it. `--tuner grid|random|bayesian`.
"""

from emokeras import cli
from emokeras.config import TrainConfig, TuneConfig
from emokeras.tuning import search_hyperparameters


def main(argv):
    cli.no_arguments(argv)
    search_hyperparameters(cli.config_from_flags(TrainConfig), cli.config_from_flags(TuneConfig))


def define_flags():
    cli.define_flags(TrainConfig, defaults={"multiview": "joint"})  # tuning searches a multi-view run
    cli.define_flags(TuneConfig)


if __name__ == "__main__":
    cli.run_command(main, define_flags, resumable=True)
