"""Context-based attention over an utterance (Bahdanau et al., 2014)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="emokeras")
class ContextAttention(keras.layers.Layer):
    """Weights the steps of a sequence by learned relevance and sums them (paper §3.3, Eq. 2's attention).

    `e_i = vᵀ tanh(W h_i + b)`, `a = softmax(e)` over the unmasked steps,
    `z = Σ a_i h_i`.

    Args:
      units: `d_a`, the attention layer's size.
      kernel_regularizer: optional regulariser for `W` and `v`.

    Call arguments:
      inputs: `h`, `[batch, steps, features]`.
      mask: optional boolean `[batch, steps]`.

    Returns:
      `(context, weights)`: `[batch, features]` and `[batch, steps]`. Weights
      are exactly 0 on masked steps and sum to 1 over the unmasked ones (a
      sequence with no unmasked step gets all-zero weights and context).

    Example:
    >>> h = keras.random.normal((2, 5, 8), seed=0)
    >>> context, weights = ContextAttention(16)(h)
    >>> tuple(context.shape), tuple(weights.shape)
    ((2, 8), (2, 5))
    >>> keras.ops.convert_to_numpy(keras.ops.sum(weights, axis=-1)).round(5).tolist()
    [1.0, 1.0]
    """

    def __init__(self, units, kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.supports_masking = True

    def build(self, input_shape):
        """Creates the projection and the context vector."""
        # Sub-layers follow this layer's dtype policy (mixed precision included).
        self.projection = keras.layers.Dense(self.units, activation="tanh", name="projection",
                                             kernel_regularizer=self.kernel_regularizer, dtype=self.dtype_policy)
        self.projection.build(input_shape)
        self.score = keras.layers.Dense(1, use_bias=False, name="score", kernel_regularizer=self.kernel_regularizer,
                                        dtype=self.dtype_policy)
        self.score.build((*input_shape[:-1], self.units))

    def call(self, inputs, mask=None):
        """The attention-weighted sum of `inputs` over time, and the weights."""
        # The softmax runs in float32 whatever the policy: the masked fill of -1e9 and exp() overflow float16.
        scores = ops.cast(ops.squeeze(self.score(self.projection(inputs)), -1), "float32")  # e: [B, T]
        valid = ops.ones_like(scores, dtype="bool") if mask is None else ops.cast(mask, "bool")
        # Shift by the largest unmasked score so exp() cannot overflow, then zero masked steps.
        largest = ops.max(ops.where(valid, scores, ops.full_like(scores, -1e9)), axis=-1, keepdims=True)
        exponentials = ops.exp(ops.minimum(scores - largest, 0.0)) * ops.cast(valid, "float32")
        weights = exponentials / ops.maximum(ops.sum(exponentials, axis=-1, keepdims=True), 1e-12)
        weights = ops.cast(weights, inputs.dtype)
        context = ops.sum(inputs * ops.expand_dims(weights, -1), axis=1)
        return context, weights

    def compute_mask(self, inputs, mask=None):
        """No mask: the outputs have no time axis."""
        return [None, None]

    def compute_output_shape(self, input_shape):
        """`((batch, features), (batch, steps))`."""
        return (input_shape[0], input_shape[2]), (input_shape[0], input_shape[1])

    def get_config(self):
        """The layer's arguments, for serialization."""
        config = super().get_config()
        config.update(units=self.units, kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer))
        return config
