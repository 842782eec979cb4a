"""Unweighted (UA) and weighted (WA) accuracy over a confusion matrix (ARCHITECTURE.md, Metrics)."""

import keras
from keras import ops

from emokeras.models.specs import NUM_CLASSES


class _ConfusionMatrixMetric(keras.metrics.Metric):
    """Accumulates a `[num_classes, num_classes]` confusion matrix (rows: truth, columns: prediction).

    The matrix is a sum-aggregated variable, so under a distribution strategy
    each replica adds its own batches and reading the result sums them: the
    metric over the global batch, not a mean of per-replica ratios.
    """

    def __init__(self, num_classes=NUM_CLASSES, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.num_classes = num_classes
        self.confusion = self.add_variable(shape=(num_classes, num_classes), initializer="zeros",
                                           dtype="float32", aggregation="sum", name="confusion")

    def update_state(self, y_true, y_pred, sample_weight=None):
        """`y_true`: class ids `[B]` or `[B, 1]`; `y_pred`: scores `[B, num_classes]`."""
        truth = ops.one_hot(ops.reshape(ops.cast(y_true, "int32"), (-1,)), self.num_classes)
        predicted = ops.one_hot(ops.argmax(y_pred, axis=-1), self.num_classes)
        if sample_weight is not None:
            truth = truth * ops.reshape(ops.cast(sample_weight, truth.dtype), (-1, 1))
        self.confusion.assign_add(ops.matmul(ops.transpose(truth), predicted))

    def reset_state(self):
        self.confusion.assign(ops.zeros_like(self.confusion))

    def get_config(self):
        return {"num_classes": self.num_classes, "name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="emokeras")
class UnweightedAccuracy(_ConfusionMatrixMetric):
    """UA: the mean of per-class recall, over the classes present in `y_true`.

    The paper's headline figure: it weighs each emotion equally whatever its
    frequency.

    Example:
    >>> metric = UnweightedAccuracy(num_classes=2)
    >>> metric.update_state([0, 0, 0, 1], [[1, 0], [1, 0], [0, 1], [0, 1]])
    >>> float(metric.result())  # (2/3 + 1/1) / 2 = 0.8333
    """

    def __init__(self, num_classes=NUM_CLASSES, name="unweighted_accuracy", dtype=None):
        super().__init__(num_classes=num_classes, name=name, dtype=dtype)

    def result(self):
        """The mean recall over the classes present."""
        support = ops.sum(self.confusion, axis=1)
        recall = ops.diagonal(self.confusion) / ops.maximum(support, 1.0)
        present = ops.cast(support > 0, recall.dtype)
        return ops.sum(recall * present) / ops.maximum(ops.sum(present), 1.0)


@keras.saving.register_keras_serializable(package="emokeras")
class WeightedAccuracy(_ConfusionMatrixMetric):
    """WA: plain accuracy, the share of utterances classified correctly (reported beside UA)."""

    def __init__(self, num_classes=NUM_CLASSES, name="weighted_accuracy", dtype=None):
        super().__init__(num_classes=num_classes, name=name, dtype=dtype)

    def result(self):
        """The share of utterances classified correctly."""
        return ops.trace(self.confusion) / ops.maximum(ops.sum(self.confusion), 1.0)
