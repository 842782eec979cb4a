"""`python -m emokeras.prepare`: corpus on disk → TFRecord shards with a manifest.

With no flags: writes the demo corpus (`data/demo`), the default text encoder
(`data/encoders/char-ngram-256`) and `tfrecords/demo/char-ngram-256/`, then
prints the utterances per speaker and class. Idempotent: a folder whose
manifest matches is left as it is; a mismatched one is refused unless
`--overwrite`. Utterances whose audio or alignment is bad are skipped with a
warning naming them, and counted; the rest are kept.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import shutil
import sys
import time

from absl import flags
from emokeras.config import DataConfig
from emokeras.corpus import demo, iemocap
from emokeras.features.acoustic import FEATURE_SET, NUM_FEATURES, FeatureError, extract_frames_parallel
from emokeras.labels import CLASS_NAMES

logger = logging.getLogger(__name__)
FLAGS = flags.FLAGS  # absl's flag values, defined by define_flags()

# The standard 4-class IEMOCAP set (DESIGN.md, IEMOCAP quirks).
IEMOCAP_STANDARD_COUNT = 5531
# Every model reads the first DataConfig.max_frames frames: an utterance with no word there has no speaker frame
# and no word to read, and an LSTM given an empty row fails on a GPU.
MAX_FRAMES = DataConfig.max_frames
NO_WORD_READ = f"no word in the first {MAX_FRAMES} frames"
# An alignment may run past the last openSMILE frame by up to one analysis
# window plus rounding (the last 60 ms window ends at the audio's end);
# further than this, the alignment does not belong to the audio.
ALIGNMENT_TOLERANCE_FRAMES = 10


@dataclasses.dataclass
class PrepareConfig:
    """What to prepare; the defaults prepare the demo corpus with the default encoder."""

    corpus: str = "demo"  # "demo" or "iemocap"
    root: str | None = None  # corpus folder; demo default data/demo
    text_encoder: str | None = None  # a tensorflow_hub.load handle; default: emokeras' char-ngram encoder
    out: str = "tfrecords"
    workers: int = 2
    overwrite: bool = False
    demo_seed: int = 0
    demo_utterances_per_speaker: int = 80
    encoder_dir: str = os.path.join("data", "encoders")

    def corpus_root(self) -> str:
        if self.corpus == "demo":
            return os.path.join(self.root or os.path.join("data", "demo"), "IEMOCAP_full_release")
        if self.corpus == "iemocap":
            if not self.root:
                raise ValueError("--corpus iemocap needs --root, the IEMOCAP_full_release folder")
            return self.root
        raise ValueError(f"--corpus must be demo or iemocap, got {self.corpus!r}")

    def encoder_handle(self) -> str:
        from emokeras.features.lexical import DEFAULT_ENCODER_NAME

        return self.text_encoder or os.path.join(self.encoder_dir, DEFAULT_ENCODER_NAME)

    def data_dir(self) -> str:
        from emokeras.features.lexical import encoder_name

        return os.path.join(self.out, self.corpus, encoder_name(self.encoder_handle()))


def fit_word_spans(utterance_id, words, spans, num_frames, tolerance=ALIGNMENT_TOLERANCE_FRAMES):
    """Fits word spans to the frames openSMILE produced.

    Spans ending up to `tolerance` frames past the last frame are clipped to
    it (words then starting at or past it are dropped); an alignment reaching
    further is for other audio.

    Raises:
      FeatureError: the alignment runs past the audio's end, or no word is left.
    """
    last_end = max(end for _, end in spans)
    if last_end > num_frames + tolerance:
        raise FeatureError(f"{utterance_id}: alignment ends at frame {last_end}, past the audio's end "
                           f"({num_frames} frames)")
    kept = [(word, (start, min(end, num_frames))) for word, (start, end) in zip(words, spans) if start < num_frames]
    if not kept:
        raise FeatureError(f"{utterance_id}: no aligned word lies inside the audio's {num_frames} frames")
    return [word for word, _ in kept], [span for _, span in kept]


def _manifest_identity(config: PrepareConfig, corpus_root: str) -> dict:
    from emokeras import tfrecords

    return {
        "schema_version": tfrecords.SCHEMA_VERSION,
        "corpus": config.corpus,
        "corpus_root": os.path.abspath(corpus_root),
        "corpus_stamp": demo.demo_corpus_stamp(corpus_root) if config.corpus == "demo" else None,
        "encoder_handle": config.encoder_handle(),
        "feature_set": FEATURE_SET,
    }


def _ensure_demo_corpus(config: PrepareConfig, corpus_root: str) -> None:
    wanted = demo.demo_stamp(config.demo_seed, config.demo_utterances_per_speaker)
    if demo.demo_corpus_stamp(corpus_root) != wanted:
        print(f"writing the demo corpus to {corpus_root} ...", file=sys.stderr)
        demo.write_demo_corpus(os.path.dirname(corpus_root), seed=config.demo_seed,
                               utterances_per_speaker=config.demo_utterances_per_speaker)


def prepare(config: PrepareConfig) -> str:
    """Prepares TFRecords for `config` if needed; returns their folder.

    Raises:
      tfrecords.ManifestMismatch: the folder holds other data and not `overwrite`.
      ValueError: nothing usable was read.
    """
    from emokeras import tfrecords
    from emokeras.features import lexical

    corpus_root = config.corpus_root()
    if config.corpus == "demo":
        _ensure_demo_corpus(config, corpus_root)
    if config.text_encoder is None:
        lexical.build_char_ngram_encoder(config.encoder_handle())
    data_dir = config.data_dir()
    identity = _manifest_identity(config, corpus_root)
    if os.path.isdir(data_dir) and not config.overwrite:
        try:
            manifest = tfrecords.check_manifest(data_dir, identity)
        except FileNotFoundError:
            pass  # an interrupted earlier run left no manifest: prepare again
        else:
            print(f"{data_dir}: up to date ({manifest['num_utterances']} utterances); "
                  "nothing to do (--overwrite to redo)", file=sys.stderr)
            return data_dir

    started = time.monotonic()
    corpus = iemocap.read_iemocap(corpus_root)
    if not corpus.utterances:
        raise ValueError(f"{corpus_root}: no 4-class utterance could be read")
    if config.corpus == "iemocap" and len(corpus) + len(corpus.skipped.get("no alignment", [])) \
            != IEMOCAP_STANDARD_COUNT:
        logger.warning("read %d utterances; the standard 4-class IEMOCAP set has %d: is the corpus complete?",
                       len(corpus), IEMOCAP_STANDARD_COUNT)
    encoder = lexical.TextEncoder(config.encoder_handle())
    skipped = collections.defaultdict(list, {k: list(v) for k, v in corpus.skipped.items()})

    # Write into a staging folder, then swap it in whole: readers never see a half-prepared folder.
    staging = data_dir + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    counts: dict[int, collections.Counter] = {}
    written = []
    by_session = collections.defaultdict(list)
    for utterance in corpus:
        by_session[utterance.session].append(utterance)
    features = extract_frames_parallel([u.wav_path for s in sorted(by_session) for u in by_session[s]],
                                       workers=config.workers)
    for session in sorted(by_session):
        kept = []
        for utterance in by_session[session]:
            _, frames, error = next(features)
            if error is not None:
                logger.warning("skipped: %s", error)
                skipped["bad audio"].append(utterance.utterance_id)
                continue
            try:
                words, spans = fit_word_spans(utterance.utterance_id, utterance.words, utterance.word_spans,
                                              frames.shape[0])
            except FeatureError as error:
                logger.warning("skipped: %s (%s)", error, utterance.wav_path)
                skipped["alignment past audio end"].append(utterance.utterance_id)
                continue
            first = min(start for start, _ in spans)
            if first >= MAX_FRAMES:  # the models would read its frames but none of its words
                logger.warning("skipped: %s: its first word starts at frame %d, after the %d frames the models read",
                               utterance.utterance_id, first, MAX_FRAMES)
                skipped[NO_WORD_READ].append(utterance.utterance_id)
                continue
            kept.append((utterance, frames, words, spans))
        vectors = encoder.encode([words for _, _, words, _ in kept])
        counts[session] = collections.Counter()
        with tfrecords.ShardWriter(os.path.join(staging, tfrecords.shard_name(session))) as writer:
            for (utterance, frames, words, spans), word_vectors in zip(kept, vectors):
                writer.write(tfrecords.serialize_example(
                    utterance.utterance_id, utterance.session, utterance.speaker, utterance.label,
                    frames, words, spans, word_vectors))
                counts[session][CLASS_NAMES[utterance.label]] += 1
                written.append(utterance)

    # Validate: every shard holds what was counted into it.
    for session, counter in counts.items():
        found = tfrecords.count_examples(os.path.join(staging, tfrecords.shard_name(session)))
        if found != sum(counter.values()):
            raise RuntimeError(f"session {session}: wrote {sum(counter.values())} examples, read back {found}")
    manifest = dict(identity)
    manifest.update({
        "encoder_name": lexical.encoder_name(config.encoder_handle()),
        "encoder_dimension": encoder.dimension,
        "encoder_convention": encoder.convention,
        "num_features": NUM_FEATURES,
        "num_utterances": len(written),
        "counts": {str(s): {name: c[name] for name in CLASS_NAMES} for s, c in sorted(counts.items())},
        "skipped": {reason: len(ids) for reason, ids in sorted(skipped.items())},
        "skipped_ids": {reason: ids for reason, ids in sorted(skipped.items()) if reason != "other label"},
        "seconds": round(time.monotonic() - started, 1),
    })
    tfrecords.write_manifest(staging, manifest)
    if os.path.isdir(data_dir):
        shutil.rmtree(data_dir)
    os.replace(staging, data_dir)

    print(iemocap.count_table(written))
    print("skipped: " + (", ".join(f"{reason}: {len(ids)}" for reason, ids in sorted(skipped.items())) or "none"))
    print(f"wrote {len(written)} utterances to {data_dir} in {manifest['seconds']:.0f} s")
    return data_dir


def main(argv):
    from absl import app

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    config = PrepareConfig(
        corpus=FLAGS.corpus, root=FLAGS.root, text_encoder=FLAGS.text_encoder, out=FLAGS.out,
        workers=FLAGS.workers, overwrite=FLAGS.overwrite, demo_seed=FLAGS.demo_seed,
        demo_utterances_per_speaker=FLAGS.demo_utterances_per_speaker)
    from emokeras.tfrecords import ManifestMismatch

    try:
        prepare(config)
    except (ManifestMismatch, ValueError, FileNotFoundError, FileExistsError) as error:
        logger.error("%s", error)
        sys.exit(1)


def define_flags():
    defaults = PrepareConfig()
    flags.DEFINE_enum("corpus", defaults.corpus, ["demo", "iemocap"],
                      "Which corpus: the offline demo corpus, or IEMOCAP_full_release at --root.")
    flags.DEFINE_string("root", None, "Corpus folder. demo: where to write it (default data/demo); "
                        "iemocap: the IEMOCAP_full_release folder (required).")
    flags.DEFINE_string("text_encoder", None, "A handle tensorflow_hub.load opens (TF Hub URL, SavedModel "
                        "folder, .tgz); ELMo's 'tokens' signature is supported. Default: emokeras' offline "
                        "char-ngram encoder, built under data/encoders/.")
    flags.DEFINE_string("out", defaults.out, "TFRecords root; shards go to <out>/<corpus>/<encoder>/.")
    flags.DEFINE_integer("workers", min(2, os.cpu_count() or 1), "openSMILE worker processes.", lower_bound=1)
    flags.DEFINE_boolean("overwrite", False, "Prepare again even if a manifest exists, replacing the folder.")
    flags.DEFINE_integer("demo_seed", defaults.demo_seed, "Seed of the demo corpus.")
    flags.DEFINE_integer("demo_utterances_per_speaker", defaults.demo_utterances_per_speaker,
                         "Demo corpus size: 4-class utterances per speaker (10 speakers).", lower_bound=4)
    return flags.FLAGS


if __name__ == "__main__":
    from emokeras.cli import run_command

    run_command(main, define_flags)
