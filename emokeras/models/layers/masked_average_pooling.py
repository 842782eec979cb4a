"""Average over the unmasked steps of a sequence."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="emokeras")
class MaskedAveragePooling(keras.layers.Layer):
    """Averages `[B, T, D]` over its unmasked steps (the paper's "average pooling", §4.2).

    Unlike `keras.layers.GlobalAveragePooling1D`, a sequence with no unmasked
    step gives zeros rather than NaN.

    Call arguments:
      inputs: `[batch, steps, features]`.
      mask: optional boolean `[batch, steps]`; without it every step counts.

    Returns:
      `[batch, features]`; consumes the mask.

    Example:
    >>> x = keras.ops.convert_to_tensor([[[1.0], [3.0], [100.0]]])
    >>> mask = keras.ops.convert_to_tensor([[True, True, False]])
    >>> keras.ops.convert_to_numpy(MaskedAveragePooling()(x, mask=mask)).tolist()
    [[2.0]]
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        """The mean of `inputs` over the unmasked steps (zeros for a row with none)."""
        # Averaged in float32 whatever the policy: an utterance has up to 700 frames.
        values = ops.cast(inputs, "float32")
        weights = ops.ones_like(values[..., :1]) if mask is None else ops.expand_dims(ops.cast(mask, "float32"), -1)
        total = ops.sum(values * weights, axis=1)
        return ops.cast(total / ops.maximum(ops.sum(weights, axis=1), 1.0), inputs.dtype)

    def compute_mask(self, inputs, mask=None):
        """No mask: the output has no time axis."""
        return None

    def compute_output_shape(self, input_shape):
        """`(batch, features)`."""
        return (input_shape[0], input_shape[2])
