"""A tiny text encoder with ELMo's calling convention, and what it returns, for the lexical tests."""

import numpy as np


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
