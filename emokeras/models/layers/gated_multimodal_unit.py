"""The bimodal gated multimodal unit (Arevalo et al., 2017) as the paper's modality attention."""

import keras
import tensorflow as tf
from keras import ops


class _MaskedSynchronizedBatchNormalization(keras.layers.BatchNormalization):
    """Batch normalisation whose masked statistics are summed over all replicas.

    Keras' `synchronized=True` ignores a mask, and with a mask it uses the
    replica's own statistics, so a model trained on two devices would differ
    from the same model on one. Here each replica sums its unmasked values,
    squares and counts, and the sums are all-reduced before the moments are
    taken: the statistics of the global batch, whatever the replicas.
    (Overrides `BatchNormalization._moments`, Keras 3.15.)
    """

    def _moments(self, inputs, mask):
        if mask is None:
            return super()._moments(inputs, mask)
        weights = ops.cast(ops.expand_dims(mask, -1), inputs.dtype)
        axes = self._reduction_axes
        total = ops.sum(inputs * weights, axes)
        total_squares = ops.sum(ops.square(inputs) * weights, axes)
        count = ops.sum(ops.broadcast_to(weights, ops.shape(inputs)), axes)
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            total, total_squares, count = context.all_reduce(tf.distribute.ReduceOp.SUM,
                                                             [total, total_squares, count])
        count = ops.maximum(count, 1.0)
        mean = total / count
        return mean, ops.maximum(total_squares / count - ops.square(mean), 0.0)


@keras.saving.register_keras_serializable(package="emokeras")
class GatedMultimodalUnit(keras.layers.Layer):
    """Fuses acoustic and lexical word vectors with a learned gate (paper §3.3, Eq. 1).

    `h_a = tanh(BN(W_a x_a + b_a))`, `h_l = tanh(BN(W_l x_l + b_l))`,
    `z = σ(W_z [x_a, x_l] + b_z)`, `h = z ∗ h_a + (1 − z) ∗ h_l`, with batch
    normalisation on each modality's projection (Appendix B); masked steps
    are left out of the batch statistics, which are those of the global batch
    under a distribution strategy.

    Args:
      units: size of `h` and `z`.
      kernel_regularizer: optional regulariser for the three projections.

    Call arguments:
      inputs: `[x_acoustic, x_lexical]`, each `[batch, steps, features]`
        (or `[batch, features]`).
      mask: optional boolean `[batch, steps]` (or a list of two, of which the
        first that is set is used).
      training: batch-normalisation mode.

    Returns:
      `(h, z)`, each `[batch, steps, units]`; `z` is the acoustic share
      (Figure 3's bars). Both carry the input mask.

    Example:
    >>> acoustic, lexical = keras.random.normal((2, 4, 6), seed=0), keras.random.normal((2, 4, 10), seed=1)
    >>> h, z = GatedMultimodalUnit(8)([acoustic, lexical])
    >>> tuple(h.shape), tuple(z.shape)
    ((2, 4, 8), (2, 4, 8))
    """

    def __init__(self, units, kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.supports_masking = True

    def build(self, input_shape):
        """Creates the two views' projections and the gate."""
        acoustic_shape, lexical_shape = input_shape
        # Sub-layers follow this layer's dtype policy; batch norm takes its statistics in float32 under any.
        common = dict(kernel_regularizer=self.kernel_regularizer, dtype=self.dtype_policy)
        self.acoustic_projection = keras.layers.Dense(self.units, name="acoustic_projection", **common)
        self.acoustic_projection.build(acoustic_shape)
        self.lexical_projection = keras.layers.Dense(self.units, name="lexical_projection", **common)
        self.lexical_projection.build(lexical_shape)
        projected = (*acoustic_shape[:-1], self.units)
        self.acoustic_norm = _MaskedSynchronizedBatchNormalization(name="acoustic_norm", dtype=self.dtype_policy)
        self.acoustic_norm.build(projected)
        self.lexical_norm = _MaskedSynchronizedBatchNormalization(name="lexical_norm", dtype=self.dtype_policy)
        self.lexical_norm.build(projected)
        self.gate = keras.layers.Dense(self.units, activation="sigmoid", name="gate", **common)
        self.gate.build((*acoustic_shape[:-1], acoustic_shape[-1] + lexical_shape[-1]))

    @staticmethod
    def _one_mask(mask):
        if isinstance(mask, (list, tuple)):
            return next((m for m in mask if m is not None), None)
        return mask

    def call(self, inputs, mask=None, training=None):
        """The fused `z · h_a + (1 − z) · h_l` and the gate `z`."""
        acoustic, lexical = inputs
        mask = self._one_mask(mask)
        h_acoustic = ops.tanh(self.acoustic_norm(self.acoustic_projection(acoustic), training=training, mask=mask))
        h_lexical = ops.tanh(self.lexical_norm(self.lexical_projection(lexical), training=training, mask=mask))
        z = self.gate(ops.concatenate([acoustic, lexical], axis=-1))
        return z * h_acoustic + (1.0 - z) * h_lexical, z

    def compute_mask(self, inputs, mask=None):
        """The inputs' mask (either view's), for both outputs."""
        mask = self._one_mask(mask)
        return [mask, mask]

    def compute_output_shape(self, input_shape):
        """The fused output's and the gate's shape: the inputs' with `units` features."""
        shape = (*input_shape[0][:-1], self.units)
        return shape, shape

    def get_config(self):
        """The layer's arguments, for serialization."""
        config = super().get_config()
        config.update(units=self.units, kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer))
        return config
