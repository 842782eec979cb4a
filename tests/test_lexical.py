"""Word vectors through tensorflow_hub.load: the default encoder, ELMo's signature, plain callables."""

import numpy as np
import pytest
import tensorflow as tf

from emokeras.config import encoder_name
from emokeras.data.features.lexical import TextEncoder, build_char_ngram_encoder

from helpers.encoders import build_tiny_elmo, tiny_elmo_expected


@pytest.fixture(scope="module")
def default_encoder(tmp_path_factory):
    return TextEncoder(build_char_ngram_encoder(str(tmp_path_factory.mktemp("enc") / "char-ngram-256")))


def test_default_encoder_is_a_savedmodel_loaded_through_hub(default_encoder, tmp_path):
    assert default_encoder.convention == "callable"
    assert default_encoder.dimension == 256
    assert type(default_encoder._module).__module__.startswith("tensorflow")  # what hub.load restored


def test_default_encoder_vectors_are_per_word_and_padding_free(default_encoder):
    batch = default_encoder.encode([["I", "miss", "my", "dog"], ["miss"], []])
    assert [v.shape for v in batch] == [(4, 256), (1, 256), (0, 256)]
    np.testing.assert_allclose(batch[0][1], batch[1][0], atol=1e-6)  # same word, any sentence or padding
    np.testing.assert_allclose(batch[0][0], default_encoder.encode([["i"]])[0][0], atol=1e-6)  # lower-cased
    assert not np.allclose(batch[0][1], batch[0][3])


def test_default_encoder_is_the_mean_of_word_and_trigram_vectors(tmp_path):
    path = build_char_ngram_encoder(str(tmp_path / "enc"), dimension=8)
    module = tf.saved_model.load(path)
    table = module.table.numpy()
    pieces = ["ab", "<ab", "ab>"]
    ids = tf.strings.to_hash_bucket_fast(pieces, table.shape[0]).numpy()
    vectors = TextEncoder(path).encode([["AB"]])[0]
    np.testing.assert_allclose(vectors[0], table[ids].mean(axis=0), rtol=1e-5)


def test_build_is_idempotent(tmp_path):
    path = build_char_ngram_encoder(str(tmp_path / "enc"), dimension=8)
    first = TextEncoder(path).encode([["hello"]])[0]
    build_char_ngram_encoder(path, dimension=8, seed=99)  # exists: left as it is
    np.testing.assert_array_equal(TextEncoder(path).encode([["hello"]])[0], first)


def test_elmo_tokens_signature_is_called_with_padding_and_lengths(tmp_path):
    encoder = TextEncoder(build_tiny_elmo(tmp_path / "elmo"))
    assert encoder.convention == "elmo" and encoder.dimension == 16
    sentences = [["oh", "my", "gosh"], ["yeah"], ["of", "course"]]
    for vectors, words in zip(encoder.encode(sentences, batch_size=2), sentences):
        np.testing.assert_allclose(vectors, tiny_elmo_expected(words), rtol=1e-5, atol=1e-6)


def test_a_model_with_neither_convention_is_refused_by_name(tmp_path):
    module = tf.Module()
    module.v = tf.Variable(1.0)
    tf.saved_model.save(module, str(tmp_path / "odd"))
    with pytest.raises(ValueError, match=r"odd: the loaded object has no 'tokens' signature"):
        TextEncoder(str(tmp_path / "odd"))


def test_encoder_names():
    assert encoder_name("https://tfhub.dev/google/elmo/3") == "elmo-3"
    assert encoder_name("/models/char-ngram-256/") == "char-ngram-256"
    assert encoder_name("downloads/my model.tar.gz") == "my-model"


def test_the_module_imports_tensorflow_hub_only_to_load_an_encoder():
    """Training and prediction import this module; TensorFlow Hub (with pkg_resources and tf_keras) is not loaded."""
    import importlib
    import sys

    import emokeras.data.features

    name = "emokeras.data.features.lexical"
    saved = {key: module for key, module in sys.modules.items()
             if key == name or key.split(".")[0] in ("tensorflow_hub", "tf_keras")}
    for key in saved:
        del sys.modules[key]
    try:
        importlib.import_module(name)
        assert not [key for key in sys.modules if key.split(".")[0] in ("tensorflow_hub", "tf_keras")]
    finally:  # this process's other tests keep the modules they imported
        sys.modules.update(saved)
        if name in saved:
            emokeras.data.features.lexical = saved[name]
