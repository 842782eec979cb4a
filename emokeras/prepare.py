"""`python -m emokeras.prepare`: corpus on disk → TFRecord shards with a manifest (`emokeras.data.preparation`).

With no flags: writes the demo corpus (`data/demo`), the default text encoder
(`data/encoders/char-ngram-256`) and `tfrecords/demo/char-ngram-256/`, then
prints the utterances per speaker and class. Idempotent: a folder whose
manifest matches is left as it is; a mismatched one is refused unless
`--overwrite`. Utterances whose audio or alignment is bad are skipped with a
warning naming them, and counted; the rest are kept.
"""

from emokeras import cli
from emokeras.config import PrepareConfig


def main(argv):
    """Prepares the corpus the flags name."""
    cli.no_arguments(argv)
    config = cli.config_from_flags(PrepareConfig)
    config.corpus_root()  # a corpus without its --root is named before TensorFlow loads
    cli.load_tensorflow()
    # Imported here: TensorFlow loads after the command's quiet start (emokeras.quiet).
    from emokeras.data.preparation import prepare_corpus

    prepare_corpus(config)


def define_flags():
    """Defines the command's flags."""
    cli.define_flags(PrepareConfig)


def run():
    """Runs the command on `sys.argv`."""
    cli.run_command(main, define_flags, resumable=True)


if __name__ == "__main__":
    run()
