"""Attaches a Keras mask built from sequence lengths."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="emokeras")
class LengthMask(keras.layers.Layer):
    """Passes a padded sequence through and masks the steps beyond its length.

    The TFRecord pipeline pads each batch and carries the true lengths
    (`num_frames`, `num_words`); this layer turns them into the mask that the
    BLSTMs, pooling and attention consume, so padding never reaches a result
    (paper §4.2: every model reads variable-length utterances).

    Call arguments:
      inputs: `[sequence, lengths]`: `[batch, steps, features]` and int `[batch]`.

    Returns:
      `sequence` unchanged, with the mask `step < length`.

    Example:
    >>> x = keras.ops.ones((2, 3, 1))
    >>> keras.ops.convert_to_numpy(LengthMask().compute_mask([x, keras.ops.convert_to_tensor([1, 3])])).tolist()
    [[True, False, False], [True, True, True]]
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        """Passes the frames through unchanged; the mask comes from the lengths."""
        # A new tensor: Keras attaches the mask to the output, which must not be the caller's input tensor.
        return ops.copy(inputs[0])

    def compute_mask(self, inputs, mask=None):
        """`True` for the first `num_frames` steps of each row."""
        sequence, lengths = inputs
        # Step indices from a cumulative sum rather than arange, so the mask can be built symbolically
        # when the number of steps is unknown.
        steps = ops.cumsum(ops.ones_like(sequence[:, :, 0], dtype="int32"), axis=1) - 1
        return steps < ops.expand_dims(ops.cast(lengths, "int32"), 1)

    def compute_output_shape(self, input_shape):
        """The frames' shape."""
        return input_shape[0]
