"""One and two replicas give the same values.

The metrics, H-MM-4's training step (its GMU's batch statistics included), and a joint multi-view step (hand-written
losses scaled by the global batch).

Logical CPU devices must be configured before TensorFlow starts, so the checks run in one fresh process:

    python tests/helpers/two_replicas.py <prepared data folder>

which prints one JSON object, `{check: "ok" or the failure}`; the tests read it (`conftest.two_replicas`). Each
step is plain SGD: the step is the gradient itself, so a wrongly scaled loss would show (Adam's would not).
"""

import json
import os
import sys
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
# Grappler's rewrites keep what a graph computes, and the checks compare two graphs' values: without them each
# strategy's functions are ready in two thirds of the time.
tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})

import keras  # noqa: E402
import numpy as np  # noqa: E402

DEVICES = (["/cpu:0"], ["/cpu:0", "/cpu:1"])


def _strategy(devices):
    """A MirroredStrategy over `devices` that sums across replicas without collective ops.

    The checks share one process, and strategies built one after another in a process reuse collective instance
    keys ("Shape mismatch in the collective instance ..."); the values summed are the same either way.
    """
    return tf.distribute.MirroredStrategy(devices, cross_device_ops=tf.distribute.ReductionToOneDevice())


def _weights(model):
    return [(w.path, keras.ops.convert_to_numpy(w).copy()) for w in model.weights]


def _same_weights(weights1, weights2):
    assert len(weights1) == len(weights2)
    for (path, w1), (_, w2) in zip(weights1, weights2):
        np.testing.assert_allclose(w2, w1, rtol=1e-4, atol=1e-6, err_msg=path)


def metrics(data_dir):
    """UA and WA under a strategy: the replicas' confusion matrices add up (sum aggregation)."""
    from emokeras.models.metrics import UnweightedAccuracy, WeightedAccuracy

    rng = np.random.default_rng(0)
    x = rng.standard_normal((24, 6)).astype("float32")
    y = np.array([0] * 12 + [1] * 6 + [2] * 4 + [3] * 2)
    results = []
    for devices in DEVICES:
        strategy = _strategy(devices)
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
    (r1, ua1, wa1), (r2, ua2, wa2) = results
    assert (r1, r2) == (1, 2)
    np.testing.assert_allclose([ua1, ua2], [ua, ua], rtol=1e-6)
    np.testing.assert_allclose([wa1, wa2], np.mean(predicted == y), rtol=1e-6)


def training_step(data_dir):
    """One step of H-MM-4 on the same global batch: the same loss, UA, WA and weights."""
    from emokeras.config import ModelConfig, TrainConfig
    from emokeras.data import pipelines
    from emokeras.models import builders
    from emokeras.models.metrics import UnweightedAccuracy, WeightedAccuracy
    from emokeras.training.tasks import build_compiled_model

    config = TrainConfig(model="H-MM-4", fold=3, learning_rate=1e-2,
                         model_config=ModelConfig(hidden_units=8, blstm_layers=1, dropout=0.0))
    inputs, labels = next(iter(pipelines.make_dataset(data_dir, 3, "train", batch_size=32)))
    results = []
    for devices in DEVICES:
        strategy = _strategy(devices)
        with strategy.scope():
            keras.utils.set_random_seed(3)
            model = build_compiled_model(config, data_dir)
            model.compile(optimizer=keras.optimizers.SGD(0.5), loss=model.loss,
                          metrics=[UnweightedAccuracy(), WeightedAccuracy()])
        # A dataset, not train_on_batch: fit splits a dataset's global batch across the replicas, whereas
        # train_on_batch would hand every replica the whole batch.
        batch = tf.data.Dataset.from_tensors((builders.select_inputs(model, inputs), labels))
        logs = {key: values[0] for key, values in model.fit(batch, epochs=1, verbose=0).history.items()}
        results.append((strategy.num_replicas_in_sync, logs, _weights(model)))
    (r1, logs1, weights1), (r2, logs2, weights2) = results
    assert (r1, r2) == (1, 2)
    for key in ("loss", "unweighted_accuracy", "weighted_accuracy"):
        np.testing.assert_allclose(logs2[key], logs1[key], rtol=1e-4, err_msg=key)
    _same_weights(weights1, weights2)  # the GMU's moving statistics among them


def multiview_step(data_dir):
    """One joint multi-view step (B-LEX as the second view): the same loss terms and weights."""
    from emokeras.config import ModelConfig
    from emokeras.data import pipelines
    from emokeras.models import builders, multiview

    config = ModelConfig(hidden_units=8, blstm_layers=1, dropout=0.0)
    batch = multiview.add_negatives(pipelines.make_dataset(data_dir, 3, "train", batch_size=32), "random").take(1)
    batch = batch.cache()  # the same negatives for both runs
    results = []
    for devices in DEVICES:
        strategy = _strategy(devices)
        with strategy.scope():
            keras.utils.set_random_seed(5)
            acoustic, second = builders.build_model("B-ACO-1", config), builders.build_model("B-LEX", config)
            model = multiview.MultiViewModel(acoustic, second, mode="joint")
            model.compile(optimizer=keras.optimizers.SGD(0.5))
        logs = {key: values[0] for key, values in model.fit(batch, epochs=1, verbose=0).history.items()}
        results.append((strategy.num_replicas_in_sync, logs, _weights(model)))
    (r1, logs1, weights1), (r2, logs2, weights2) = results
    assert (r1, r2) == (1, 2)
    for key in logs1:
        np.testing.assert_allclose(logs2[key], logs1[key], rtol=1e-4, err_msg=key)
    _same_weights(weights1, weights2)


CHECKS = {"metrics": metrics, "training_step": training_step, "multiview_step": multiview_step}


def main():
    outcome = {}
    for name, check in CHECKS.items():
        try:
            check(sys.argv[1])
            outcome[name] = "ok"
        except Exception:  # each check's failure is reported, and the others still run
            outcome[name] = traceback.format_exc()[-3000:]
    print(json.dumps(outcome))
    from emokeras.cli import skip_the_collection_at_exit

    skip_the_collection_at_exit()  # ends as a finished command does


if __name__ == "__main__":
    main()
