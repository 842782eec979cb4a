"""Shared fixtures: a prepared demo corpus, and a hand-written IEMOCAP-format tree with its quirks."""

import os
import wave

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from emokeras.config import PrepareConfig
from emokeras.preparation import prepare_corpus


@pytest.fixture(scope="session")
def demo_config(tmp_path_factory):
    """The demo corpus at half its default size (400 utterances, 40 per held-out speaker), prepared once for
    the session: the tests' expectations are written for this size, and it prepares in half the time."""
    root = tmp_path_factory.mktemp("demo")
    return PrepareConfig(root=str(root / "corpus"), out=str(root / "tfrecords"),
                         encoder_dir=str(root / "encoders"), demo_utterances_per_speaker=40)


@pytest.fixture(scope="session")
def demo_data(demo_config):
    """The prepared folder (tfrecords/demo/char-ngram-256) of `demo_config`."""
    return prepare_corpus(demo_config)


@pytest.fixture(scope="session")
def shared_runs(tmp_path_factory):
    """Where the session's shared runs live. Tests read them; a test that alters a run makes its own."""
    return tmp_path_factory.mktemp("shared")


@pytest.fixture(scope="session")
def b_aco_1_run(shared_runs, demo_data):
    """A finished small B-ACO-1 run on fold 3 (one epoch), exported with its model.onnx: `(config, results)`."""
    from emokeras.experiment import Experiment

    from run_testing import small_config

    config = small_config(shared_runs, demo_data, epochs=1, onnx=True)
    return config, Experiment(config).run()


@pytest.fixture(scope="session")
def h_mm_4_run(shared_runs, demo_data):
    """A finished small H-MM-4 run on fold 3 (two epochs), exported, trained on the path a GPU takes
    (tests/cudnn_testing.py): `(config, results, cuDNN branch)`."""
    from emokeras.experiment import Experiment

    from cudnn_testing import cudnn_branch
    from run_testing import small_config

    config = small_config(shared_runs, demo_data, model="H-MM-4", epochs=2)
    with cudnn_branch() as branch:
        results = Experiment(config).run()
    return config, results, branch


def small_demo_config(path, **overrides):
    """A 40-utterance demo corpus under `path`: fast to prepare, for tests that alter it."""
    settings = dict(root=str(path / "corpus"), out=str(path / "tfrecords"), encoder_dir=str(path / "encoders"),
                    demo_utterances_per_speaker=4)
    settings.update(overrides)
    return PrepareConfig(**settings)


def write_wav(path, samples, rate=16000, channels=1):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pcm = np.round(np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(pcm.tobytes())


def tone(seconds, rate=16000, pitch=150.0):
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(0)
    return 0.3 * np.sin(2 * np.pi * pitch * t) + 0.01 * rng.standard_normal(t.shape)


def build_tiny_elmo(path, dimension=16, buckets=64):
    """A SavedModel with ELMo's `tokens` signature (tokens [B, T] strings, sequence_len [B] int32 → dict).

    `elmo` is a hashed word vector plus 0.001 × sequence_len on unmasked steps,
    and zero on padding, so a test can tell the lengths were passed.
    """
    import tensorflow as tf

    class TinyElmo(tf.Module):
        def __init__(self):
            super().__init__()
            self.table = tf.Variable(np.random.default_rng(0).standard_normal((buckets, dimension), dtype=np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.string), tf.TensorSpec([None], tf.int32)])
        def tokens(self, tokens, sequence_len):
            vectors = tf.gather(self.table, tf.strings.to_hash_bucket_fast(tokens, buckets))
            mask = tf.sequence_mask(sequence_len, tf.shape(tokens)[1], dtype=tf.float32)[..., None]
            elmo = (vectors + 0.001 * tf.cast(sequence_len, tf.float32)[:, None, None]) * mask
            return {"elmo": elmo, "default": tf.reduce_mean(elmo, axis=1), "word_emb": elmo[..., :8]}

    module = TinyElmo()
    tf.saved_model.save(module, str(path), signatures={"tokens": module.tokens})
    return str(path)


def tiny_elmo_expected(words, dimension=16, buckets=64):
    """What `build_tiny_elmo`'s model returns for one sentence, computed independently."""
    import tensorflow as tf

    table = np.random.default_rng(0).standard_normal((buckets, dimension), dtype=np.float32)
    ids = tf.strings.to_hash_bucket_fast(list(words), buckets).numpy()
    return table[ids] + 0.001 * len(words)
