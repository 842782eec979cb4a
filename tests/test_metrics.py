"""UA and WA against hand-computed values, and under a two-replica MirroredStrategy on CPU."""


import keras
import numpy as np

from emokeras.models.metrics import UnweightedAccuracy, WeightedAccuracy


def _one_hot_scores(predicted, classes=4):
    return np.eye(classes, dtype="float32")[predicted]


def test_unweighted_and_weighted_accuracy_by_hand():
    truth = np.array([0, 0, 0, 0, 1, 2, 2, 3])
    predicted = np.array([0, 0, 0, 1, 1, 2, 3, 0])
    ua, wa = UnweightedAccuracy(), WeightedAccuracy()
    for metric in (ua, wa):
        metric.update_state(truth[:5], _one_hot_scores(predicted[:5]))
        metric.update_state(truth[5:], _one_hot_scores(predicted[5:]))  # accumulates across batches
    # recall: anger 3/4, happiness 1/1, neutral 1/2, sadness 0/1 -> UA = 2.25 / 4
    np.testing.assert_allclose(float(ua.result()), 0.5625, rtol=1e-6)
    np.testing.assert_allclose(float(wa.result()), 5 / 8, rtol=1e-6)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(ua.confusion),
                                  [[3, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1], [1, 0, 0, 0]])
    ua.reset_state()
    assert float(ua.result()) == 0.0


def test_classes_absent_from_the_truth_do_not_count():
    metric = UnweightedAccuracy()
    metric.update_state(np.array([[0], [0], [2]]), _one_hot_scores(np.array([0, 1, 2])))
    np.testing.assert_allclose(float(metric.result()), (0.5 + 1.0) / 2, rtol=1e-6)


def test_config_round_trip():
    metric = UnweightedAccuracy(num_classes=3, name="ua")
    clone = UnweightedAccuracy.from_config(metric.get_config())
    assert (clone.num_classes, clone.name) == (3, "ua")


def test_two_replicas_give_the_one_replica_values(two_replicas):
    """Under a distribution strategy UA and WA read the global batch, not a mean of per-replica ratios."""
    assert two_replicas["metrics"] == "ok", two_replicas["metrics"]
