"""--mixed_precision.

Models compute in 16 bits with float32 variables, normalisation, softmax and losses; every model trains a step under
mixed_bfloat16; a multi-view step under mixed_float16 scales its loss as Keras' own steps do. (A whole mixed-precision
run, and its float32 export: tests/test_train.py.)
"""


import keras
import numpy as np
import pytest
import tensorflow as tf

from emokeras.models import builders, multiview
from emokeras.training.experiment import dtype_policy

from helpers.models import bucket_batch, compiled, small_model

LABELS = np.array([0, 1, 2, 3, 1])


@pytest.mark.large
@pytest.mark.parametrize("name", builders.MODEL_NAMES)
def test_every_model_trains_a_step_under_mixed_bfloat16(name):
    with dtype_policy("mixed_bfloat16"):
        model = small_model(name)
    assert keras.mixed_precision.global_policy().name == "float32"  # the policy does not leak out of the block
    inputs = builders.select_inputs(model, bucket_batch())
    with tf.GradientTape() as tape:
        probabilities = model(inputs, training=True)
        loss = keras.ops.mean(keras.losses.sparse_categorical_crossentropy(LABELS, probabilities))
    before = [w.copy() for w in model.get_weights()]
    gradients = tape.gradient(loss, model.trainable_variables)
    keras.optimizers.SGD(0.1).apply(gradients, model.trainable_variables)
    assert probabilities.dtype == "float32" and np.isfinite(float(loss))
    assert all(np.all(np.isfinite(keras.ops.convert_to_numpy(g))) for g in gradients)
    assert {w.dtype for w in model.weights} == {"float32"}
    assert any(not np.allclose(b, a) for b, a in zip(before, model.get_weights()))
    # The BLSTMs and fusion run in bfloat16; the raw frames' normalisation and the softmax in float32.
    blstm = next(layer for layer in model.layers if isinstance(layer, keras.layers.Bidirectional))
    assert blstm.compute_dtype == "bfloat16" and model.get_layer("probabilities").compute_dtype == "float32"
    if "frames" in inputs:
        assert model.get_layer("frame_normalization").compute_dtype == "float32"


def multiview_step(policy):
    """One SGD step of a joint MultiViewModel from fixed weights: (loss logs, the change of every weight)."""
    with dtype_policy(policy):
        student, second = small_model("B-ACO-1+attention"), small_model("B-LEX")
        model = compiled(multiview.MultiViewModel(student, second, mode="joint"), optimizer=keras.optimizers.SGD(0.5))
    before = [w.copy() for w in model.get_weights()]
    batch = multiview.add_negatives(tf.data.Dataset.from_tensors((bucket_batch(), LABELS)))
    logs = {key: values[0] for key, values in model.fit(batch, epochs=1, verbose=0).history.items()}
    return model, logs, [a - b for a, b in zip(model.get_weights(), before)]


@pytest.mark.large
def test_a_multiview_step_under_mixed_float16_scales_its_loss():
    """The step under mixed_float16 moves the weights as the float32 step does.

    The loss is scaled by the LossScaleOptimizer's factor before the gradients and unscaled after. Without that, the
    float16 gradients of small terms underflow, or the step comes out scaled.
    """
    model, logs, change = multiview_step("mixed_float16")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    _, reference_logs, reference_change = multiview_step(None)
    for key, value in logs.items():
        assert np.isfinite(value), key
        np.testing.assert_allclose(value, reference_logs[key], rtol=0.05, atol=0.01, err_msg=key)
    ratio = np.linalg.norm(np.concatenate([c.ravel() for c in change])) / np.linalg.norm(
        np.concatenate([c.ravel() for c in reference_change]))
    assert 0.9 < ratio < 1.1, ratio
