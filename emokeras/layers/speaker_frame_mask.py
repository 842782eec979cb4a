"""The mask of the frames that some word covers: the paper's "speaker frames"."""

import keras
import tensorflow as tf

from emokeras.layers.spans import clipped_spans


@keras.saving.register_keras_serializable(package="emokeras")
class SpeakerFrameMask(keras.layers.Layer):
    """Computes which frames lie inside a word span.

    B-ACO-2, B-MM-2 and the hierarchical models read only "the frames that
    correspond to the speaker" (paper §4.2; DESIGN.md: speaker frames are the
    frames covered by word spans), so silence, noise and the other speaker's
    turns are skipped. Pass the result as the `mask` of the first BLSTM: a
    masked step keeps the LSTM state, so the BLSTM runs over the speaker
    frames as if they were contiguous, and later layers inherit the mask.

    Coverage is computed without a `[words, frames]` matrix: each span adds
    +1 at its start and −1 at its end, and a frame is covered where the
    running sum is positive (overlapping spans are fine).

    Call arguments:
      inputs: `[frames, word_spans]`: `[batch, frames, features]` and int
        `[batch, words, 2]` `[start, end)` spans; padding words are `[0, 0)`.
      mask: optional `[batch, frames]` mask on `frames` (e.g. from
        `LengthMask`), combined with the coverage.

    Returns:
      A boolean `[batch, frames]` tensor: the frame is valid and covered.

    Example:
    >>> frames = keras.ops.ones((1, 5, 2))
    >>> SpeakerFrameMask()([frames, keras.ops.convert_to_tensor([[[1, 3], [0, 0]]])])
    ... # [[False, True, True, False, False]]
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        frames, spans = inputs
        batch, num_frames = tf.shape(frames)[0], tf.shape(frames)[1]
        starts, ends = clipped_spans(spans, num_frames)
        rows = tf.broadcast_to(tf.range(batch)[:, None], tf.shape(starts))
        # Edges live in [batch, frames + 1] so a span ending at the last frame has somewhere to put its -1.
        indices = tf.concat([tf.stack([rows, starts], -1), tf.stack([rows, ends], -1)], axis=1)
        signs = tf.concat([tf.ones_like(starts), -tf.ones_like(ends)], axis=1)
        edges = tf.scatter_nd(tf.reshape(indices, [-1, 2]), tf.reshape(signs, [-1]), [batch, num_frames + 1])
        covered = tf.cumsum(edges, axis=1)[:, :-1] > 0
        frames_mask = mask[0] if isinstance(mask, (list, tuple)) else mask
        return covered if frames_mask is None else tf.logical_and(covered, tf.cast(frames_mask, tf.bool))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_spec(self, inputs, mask=None):
        return keras.KerasTensor(inputs[0].shape[:2], dtype="bool")
