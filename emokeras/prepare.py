"""`python -m emokeras.prepare`: corpus on disk → TFRecord shards with a manifest (`emokeras.preparation`).

With no flags: writes the demo corpus (`data/demo`), the default text encoder
(`data/encoders/char-ngram-256`) and `tfrecords/demo/char-ngram-256/`, then
prints the utterances per speaker and class. Idempotent: a folder whose
manifest matches is left as it is; a mismatched one is refused unless
`--overwrite`. Utterances whose audio or alignment is bad are skipped with a
warning naming them, and counted; the rest are kept.
"""

from emokeras import cli
from emokeras.config import PrepareConfig
from emokeras.preparation import prepare_corpus


def main(argv):
    cli.no_arguments(argv)
    prepare_corpus(cli.config_from_flags(PrepareConfig))


def define_flags():
    cli.define_flags(PrepareConfig)


if __name__ == "__main__":
    cli.run_command(main, define_flags, resumable=True)
