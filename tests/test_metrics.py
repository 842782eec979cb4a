"""UA and WA against hand-computed values, and under a two-replica MirroredStrategy on CPU."""

import subprocess
import sys

import keras
import numpy as np

from emokeras.metrics import UnweightedAccuracy, WeightedAccuracy


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


_MIRRORED = """
import numpy as np, tensorflow as tf, keras
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from emokeras.metrics import UnweightedAccuracy, WeightedAccuracy
rng = np.random.default_rng(0)
x = rng.standard_normal((24, 6)).astype("float32")
y = np.array([0] * 12 + [1] * 6 + [2] * 4 + [3] * 2)
results = []
for devices in (["/cpu:0"], ["/cpu:0", "/cpu:1"]):
    strategy = tf.distribute.MirroredStrategy(devices)
    with strategy.scope():
        keras.utils.set_random_seed(1)
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, activation="softmax")])
        unweighted = UnweightedAccuracy()
        model.compile(loss="sparse_categorical_crossentropy", metrics=[unweighted, WeightedAccuracy()])
    values = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    # Sum aggregation: the replicas' matrices add up to every utterance (a mean would hold half).
    assert float(np.sum(keras.ops.convert_to_numpy(unweighted.confusion))) == 24.0
    results.append((strategy.num_replicas_in_sync, values["unweighted_accuracy"], values["weighted_accuracy"]))
predicted = model.predict(x, verbose=0).argmax(-1)
ua = np.mean([np.mean(predicted[y == c] == c) for c in range(4)])
print(results, ua, np.mean(predicted == y))
(r1, ua1, wa1), (r2, ua2, wa2) = results
assert (r1, r2) == (1, 2)
np.testing.assert_allclose([ua1, ua2], [ua, ua], rtol=1e-6)
np.testing.assert_allclose([wa1, wa2], np.mean(predicted == y), rtol=1e-6)
"""


def test_two_replicas_give_the_one_replica_values():
    """Logical devices must be set before TensorFlow starts, hence a fresh process."""
    result = subprocess.run([sys.executable, "-c", _MIRRORED], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
