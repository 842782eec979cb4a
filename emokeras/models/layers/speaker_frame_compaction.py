"""The paper's "speaker frames", moved to the front of each row so an LSTM sees a right-padded mask."""

import keras
import tensorflow as tf

from emokeras.models.layers.spans import clipped_spans, covered_frames


@keras.saving.register_keras_serializable(package="emokeras")
class SpeakerFrameCompaction(keras.layers.Layer):
    """Keeps each row's speaker frames, in order, at the front of the row, and remaps the word spans.

    B-ACO-2, B-MM-2 and the hierarchical models read only "the frames that
    correspond to the speaker" (paper §4.2): the frames some word span covers,
    so silence, noise and the other speaker's turns are left out. A BLSTM over
    the compacted frames sees them as one contiguous sequence, exactly as a
    BLSTM that skips the other frames under an interior mask would (a masked
    step keeps the LSTM's state), but:

    - the mask built from the returned lengths (`LengthMask`) is strictly
      right-padded, which cuDNN requires (Keras asserts it on a GPU);
    - the frames outside the words are never computed.

    The word spans are remapped onto the compacted time axis. A word's frames
    are speaker frames, so its span keeps its length and its frames, and
    `AcousticWordPooling` over the compacted BLSTM outputs gives the same
    acoustic words as over the original axis.

    Built from a cumulative count, `searchsorted` and `gather`: no loop over
    rows or words, no `[frames, frames]` matrix.

    Call arguments:
      inputs: `[frames, num_frames, word_spans]`: `[batch, frames, features]`,
        int `[batch]` and int `[batch, words, 2]` `[start, end)` spans
        (padding words are `[0, 0)`). Frames past `num_frames` are not speaker
        frames, and spans are clipped to them.

    Returns:
      `(speaker_frames, num_speaker_frames, word_spans)`: `[batch, steps,
      features]` with `steps` the largest count in the batch, zero past each
      row's count; int32 `[batch]`, the counts; int32 `[batch, words, 2]`, the
      spans on the compacted axis. No output carries a mask: make one from the
      counts (`LengthMask`).

    Example:
    >>> frames = keras.ops.reshape(keras.ops.arange(6.0), (1, 6, 1))
    >>> spans = keras.ops.convert_to_tensor([[[1, 3], [4, 5], [0, 0]]])
    >>> speaker_frames, counts, remapped = SpeakerFrameCompaction()([frames, keras.ops.array([6]), spans])
    >>> keras.ops.convert_to_numpy(speaker_frames)[0, :, 0].tolist(), keras.ops.convert_to_numpy(counts).tolist()
    ([1.0, 2.0, 4.0], [3])
    >>> keras.ops.convert_to_numpy(remapped)[0].tolist()
    [[0, 2], [2, 3], [0, 0]]
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        """The speaker frames moved to the front of each row, their counts, and the spans remapped onto them."""
        frames, num_frames, spans = inputs
        batch, steps = tf.shape(frames)[0], tf.shape(frames)[1]
        valid = tf.sequence_mask(num_frames, steps)
        covered = tf.cast(covered_frames(spans, batch, steps, valid), tf.int32)
        seen = tf.cumsum(covered, axis=1)  # speaker frames up to and including each frame
        counts = tf.reduce_sum(covered, axis=1)
        # The k-th speaker frame (k = 1, 2, ...) is the first frame where `seen` reaches k.
        longest = tf.maximum(tf.reduce_max(counts), 0)
        wanted = tf.broadcast_to(tf.range(1, longest + 1)[None], [batch, longest])
        sources = tf.minimum(tf.searchsorted(seen, wanted, side="left"), tf.maximum(steps - 1, 0))
        kept = tf.sequence_mask(counts, longest, dtype=frames.dtype)[..., None]
        speaker_frames = tf.gather(frames, sources, batch_dims=1) * kept
        # A span [start, end) becomes [speaker frames before start, speaker frames before end).
        before = tf.concat([tf.zeros([batch, 1], tf.int32), seen], axis=1)
        starts, ends = clipped_spans(spans, steps)
        remapped = tf.stack([tf.gather(before, starts, batch_dims=1), tf.gather(before, ends, batch_dims=1)], -1)
        return speaker_frames, counts, remapped

    def compute_mask(self, inputs, mask=None):
        """No mask: the counts say which frames are kept (`LengthMask`)."""
        return None

    def compute_output_spec(self, inputs):
        """The outputs' shapes: frames `(batch, None, features)`, counts, spans."""
        frames, num_frames, spans = inputs
        return (keras.KerasTensor((frames.shape[0], None, frames.shape[2]), dtype=frames.dtype),
                keras.KerasTensor(num_frames.shape, dtype="int32"),
                keras.KerasTensor(spans.shape, dtype="int32"))
