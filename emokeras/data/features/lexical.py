"""Word vectors from any text encoder that `tensorflow_hub.load` opens (ARCHITECTURE.md, Lexical encoders).

Two calling conventions are supported:

- an object with a `tokens` signature is called as ELMo is: `tokens` `[B, T]`
  strings padded with "", `sequence_len` `[B]` int32 → a dict whose `elmo`
  entry is `[B, T, 1024]`;
- any other object is called with `[B, T]` strings and returns `[B, T, D]`.

Vectors are computed once, at preparation, and stored in the TFRecords.

The offline default encoder (`build_char_ngram_encoder`) is a SavedModel that
emokeras writes itself: each word is the mean of fixed random vectors for its
hashed character trigrams and for the whole word (a fastText-style subword
encoder with no training). It gives every word, including unseen ones, a
stable, distinct vector, but carries no pre-trained semantics: for IEMOCAP
use a real encoder, e.g. `--text_encoder https://tfhub.dev/google/elmo/3`.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf


class CharNgramEncoder(tf.Module):
    """`[B, T]` strings → `[B, T, dimension]` float32; "" (padding) maps to zeros."""

    def __init__(self, dimension: int = 256, buckets: int = 1 << 15, seed: int = 0):
        super().__init__(name="char_ngram_encoder")
        rng = np.random.default_rng(seed)
        self.buckets = buckets
        self.table = tf.Variable(rng.standard_normal((buckets, dimension), dtype=np.float32),
                                 trainable=False, name="ngram_vectors")

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.string)])
    def __call__(self, tokens):
        """One vector per token: the mean of its character trigrams' vectors, `[batch, words, dimension]`."""
        words = tf.reshape(tf.strings.lower(tokens), [-1])
        chars = tf.strings.unicode_split(tf.strings.join(["<", words, ">"]), "UTF-8")
        trigrams = tf.strings.ngrams(chars, 3, separator="")  # ragged [B*T, (G)]
        # Every row holds at least the whole word, so the mean is defined.
        pieces = tf.concat([tf.expand_dims(words, -1), trigrams], axis=1)
        vectors = tf.gather(self.table, tf.strings.to_hash_bucket_fast(pieces, self.buckets))
        mean = tf.reduce_mean(vectors, axis=1)  # [B*T, D]
        mean = tf.reshape(mean, tf.concat([tf.shape(tokens), [-1]], axis=0))
        return tf.where(tf.expand_dims(tokens == "", -1), tf.zeros_like(mean), mean)


def build_char_ngram_encoder(path: str, dimension: int = 256, seed: int = 0) -> str:
    """Writes the default encoder as a SavedModel at `path` (atomically) unless it exists; returns `path`."""
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    temporary = tempfile.mkdtemp(prefix=".encoder-", dir=parent)
    try:
        module = CharNgramEncoder(dimension=dimension, seed=seed)
        tf.saved_model.save(module, temporary, signatures={"serving_default": module.__call__})
        os.replace(temporary, path)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return path


class TextEncoder:
    """A loaded text encoder.

    Args:
      handle: anything `tensorflow_hub.load` opens (TF Hub URL, SavedModel
        folder, `.tgz`).

    Raises:
      ValueError: naming the handle, if it has neither a `tokens` signature
        nor a `[B, T]` strings → `[B, T, D]` call.
    """

    def __init__(self, handle: str):
        # Here rather than at the top: importing tensorflow_hub (with pkg_resources and tf_keras) takes about 0.6 s,
        # which every training and prediction process would pay for an encoder only preparation loads.
        import tensorflow_hub as hub

        self.handle = handle
        self._module = hub.load(handle)
        signatures = getattr(self._module, "signatures", {})
        self.convention = "elmo" if "tokens" in signatures else "callable"
        if self.convention == "callable" and not callable(self._module):
            raise ValueError(f"{handle}: the loaded object has no 'tokens' signature (ELMo) and is not "
                             f"callable on [batch, words] strings; signatures: {sorted(signatures)}")
        self.dimension = int(self._call(np.array([["emotion"]], dtype=object), np.array([1])).shape[-1])

    def _call(self, tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        tokens = tf.constant(tokens, dtype=tf.string)
        if self.convention == "elmo":
            outputs = self._module.signatures["tokens"](
                tokens=tokens, sequence_len=tf.constant(lengths, dtype=tf.int32))
            if "elmo" not in outputs:
                raise ValueError(f"{self.handle}: the 'tokens' signature returned {sorted(outputs)}, no 'elmo'")
            vectors = outputs["elmo"]
        else:
            vectors = self._module(tokens)
            if isinstance(vectors, dict):
                raise ValueError(f"{self.handle}: returned a dict {sorted(vectors)}; expected a [B, T, D] tensor")
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 3 or vectors.shape[:2] != tokens.shape:
            raise ValueError(f"{self.handle}: expected [batch, words, dim] output for {tuple(tokens.shape)} "
                             f"tokens, got {vectors.shape}")
        return vectors

    def encode(self, sentences, batch_size: int = 64) -> list[np.ndarray]:
        """Returns one float32 `[num_words, D]` array per sentence (a sequence of words)."""
        sentences = [list(words) for words in sentences]
        results = []
        for begin in range(0, len(sentences), batch_size):
            batch = sentences[begin: begin + batch_size]
            lengths = np.array([len(words) for words in batch])
            tokens = np.full((len(batch), max(1, lengths.max())), "", dtype=object)
            for row, words in enumerate(batch):
                tokens[row, : len(words)] = words
            vectors = self._call(tokens, lengths)
            results.extend(vectors[row, :length] for row, length in enumerate(lengths))
        return results
