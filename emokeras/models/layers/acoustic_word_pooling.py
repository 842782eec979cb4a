"""Acoustic words: frame-level outputs pooled over each word's aligned frames (paper §3.2)."""

import keras
import tensorflow as tf

from emokeras.models.layers.spans import clipped_spans


@keras.saving.register_keras_serializable(package="emokeras")
class AcousticWordPooling(keras.layers.Layer):
    """One vector per word: the mean of the frame-level outputs inside the word's span.

    The paper extracts acoustic words "by taking the output of a
    bidirectional LSTM at every segment" (§3.2). That can be read as the
    output at one frame per segment (e.g. the forward state at its last frame
    and the backward state at its first) or as a summary of all its frames.
    This layer implements the mean over the segment's frames: every frame of
    the word contributes, a word's vector does not hinge on one boundary frame
    of a forced alignment that may be off by a frame or two, and it matches
    the average pooling the paper uses at every other level.

    Built on ragged and segment ops: `tf.ragged.range` lists each word's frame
    indices, one `gather` collects them and `unsorted_segment_sum` adds them
    per word. There is no loop over words and no dense `[words, frames]` mask,
    so memory is linear in the frames covered.

    Call arguments:
      inputs: `[frame_outputs, word_spans]`: `[batch, frames, features]` and
        int `[batch, words, 2]`, `[start, end)` frame spans; padding words
        are empty spans (`[0, 0)`). Spans are clipped to the frames given.

    Returns:
      `[batch, words, features]`; an empty span gives zeros. The output mask
      marks the non-empty spans.

    Example:
    >>> frames = keras.ops.reshape(keras.ops.arange(8.0), (1, 4, 2))
    >>> spans = keras.ops.convert_to_tensor([[[0, 2], [2, 4], [0, 0]]])
    >>> keras.ops.convert_to_numpy(AcousticWordPooling()([frames, spans]))[0].tolist()
    [[1.0, 2.0], [5.0, 6.0], [0.0, 0.0]]
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        """Averages `frames` over each word's span: `[batch, words, features]`."""
        frames, spans = inputs
        batch, num_frames = tf.shape(frames)[0], tf.shape(frames)[1]
        num_words, features = tf.shape(spans)[1], tf.shape(frames)[2]
        starts, ends = clipped_spans(spans, num_frames)
        offsets = tf.range(batch)[:, None] * num_frames  # row b's frames start at b * frames
        frame_indices = tf.ragged.range(tf.reshape(starts + offsets, [-1]), tf.reshape(ends + offsets, [-1]))
        # Summed in float32 whatever the policy: a word spans up to hundreds of frames.
        gathered = tf.gather(tf.reshape(tf.cast(frames, tf.float32), [-1, features]), frame_indices.flat_values)
        sums = tf.math.unsorted_segment_sum(gathered, frame_indices.value_rowids(), batch * num_words)
        counts = tf.cast(tf.maximum(frame_indices.row_lengths(), 1), tf.float32)[:, None]
        return tf.cast(tf.reshape(sums / counts, [batch, num_words, features]), frames.dtype)

    def compute_mask(self, inputs, mask=None):
        """Masks the words whose span, clipped to the frames, is empty."""
        # A word is masked when its span, clipped to the frames as `call` clips it, is empty.
        frames, spans = inputs
        num_frames = keras.ops.sum(keras.ops.ones_like(frames[:1, :, 0], dtype="int32"))  # keras ops: symbolic too
        ends = keras.ops.minimum(keras.ops.cast(spans[..., 1], "int32"), num_frames)
        starts = keras.ops.minimum(keras.ops.maximum(keras.ops.cast(spans[..., 0], "int32"), 0), ends)
        return ends > starts

    def compute_output_shape(self, input_shape):
        """`(batch, words, features)`."""
        frames_shape, spans_shape = input_shape
        return (frames_shape[0], spans_shape[1], frames_shape[2])
