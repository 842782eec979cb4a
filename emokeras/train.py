"""`python -m emokeras.train --fold 3`: train one model on one fold, keep its best epoch, export it.

With no flags: H-MM-4 on fold 3 of the demo corpus, which is prepared first if it is not yet
(`python -m emokeras.prepare`). `python -m emokeras.train --help` lists every setting. The run goes to
`runs/<model>/fold-<k>/` and the best model to `saved_models/<model>/fold-<k>/` (`emokeras.training.experiment` says
what each holds). A finished run is reported, not retrained; an interrupted one resumes; a folder holding a run of
other settings is refused, naming each difference (`--overwrite` replaces it).

With `--multiview joint|frozen|teacher` an acoustic student is trained beside a second view
(`emokeras.models.multiview.MultiViewModel`); the run is named `<student>.<mode>.<second view>` and only the student is
exported.
"""

from emokeras import cli
from emokeras.config import TrainConfig


def main(argv):
    """Trains (or reports) the run the flags give."""
    cli.no_arguments(argv)
    config = cli.config_from_flags(TrainConfig)
    cli.load_tensorflow()
    # Imported here: TensorFlow loads after the command's quiet start (emokeras.quiet).
    from emokeras.training.experiment import Experiment

    Experiment(config).run()


def define_flags():
    """Defines the command's flags."""
    cli.define_flags(TrainConfig)


def run():
    """Runs the command on `sys.argv`."""
    cli.run_command(main, define_flags, resumable=True)


if __name__ == "__main__":
    run()
