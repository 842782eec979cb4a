"""The check every custom layer passes, after keras-hub's `TestCase.run_layer_test`.

Registration, config and serialization round trips, weight counts, eager and symbolic calls with the expected shapes,
save and load inside a model, one `fit` step, and the mixed-precision dtype contract.
"""

import os

import keras
import numpy as np

from helpers.models import compiled


def run_layer_test(layer_class, init_kwargs, input_data, expected_output_shape, tmp_path,
                   expected_num_trainable_weights=0, expected_num_non_trainable_weights=0,
                   float32_outputs=(), run_training_check=True):
    """Checks `layer_class(**init_kwargs)` on `input_data` (an array or a list of arrays, batch first).

    Args:
      layer_class: the layer, registered under `emokeras`.
      init_kwargs: its constructor's arguments.
      input_data: what it is called on.
      expected_output_shape: one shape, or one per output; `None` where a size depends on the data.
      tmp_path: where the saved model is written.
      expected_num_trainable_weights: trainable weights after building.
      expected_num_non_trainable_weights: non-trainable weights after building.
      float32_outputs: indices of outputs that stay float32 under a mixed policy (by design).
      run_training_check: whether to fit one step and see the weights move.
    """
    listed = isinstance(input_data, (list, tuple))
    arrays = list(input_data) if listed else [input_data]
    expected_shapes = expected_output_shape if isinstance(expected_output_shape, list) else [expected_output_shape]

    def call(layer, inputs):
        return _as_list(layer(inputs if listed else inputs[0]))

    # Registered under emokeras, with a config that rebuilds it, directly and through Keras' serializer.
    assert keras.saving.get_registered_name(layer_class) == f"emokeras>{layer_class.__name__}"
    layer = layer_class(**init_kwargs)
    config = layer.get_config()
    assert layer_class.from_config(config).get_config() == config
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(revived) is layer_class and revived.get_config() == config

    # Eager: the expected shapes and weight counts.
    eager = call(layer, arrays)
    assert len(eager) == len(expected_shapes)
    for output, shape in zip(eager, expected_shapes):
        assert _matches(output.shape, shape), (output.shape, shape)
    assert len(layer.trainable_weights) == expected_num_trainable_weights
    assert len(layer.non_trainable_weights) == expected_num_non_trainable_weights

    # Symbolic: the same shapes, the batch unknown.
    symbolic_inputs = [keras.Input(shape=a.shape[1:], dtype=str(a.dtype)) for a in arrays]
    symbolic = call(layer_class(**init_kwargs), symbolic_inputs)
    for output, shape in zip(symbolic, expected_shapes):
        assert _matches(output.shape, (None, *shape[1:])), (output.shape, shape)

    # Saved inside a model and loaded: the same outputs.
    model = keras.Model(symbolic_inputs, symbolic)
    expected = _as_list(model.predict(arrays, verbose=0))
    path = os.path.join(str(tmp_path), f"{layer_class.__name__}.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    for want, got in zip(expected, _as_list(loaded.predict(arrays, verbose=0))):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

    if run_training_check:
        _fit_step(symbolic_inputs, symbolic, arrays, bool(layer.trainable_weights))
    _mixed_precision_check(layer_class, init_kwargs, arrays, call, set(float32_outputs))


def _fit_step(symbolic_inputs, outputs, arrays, trainable):
    """One SGD step through the layer's first floating output: a finite loss, and new weights if it has any."""
    first = next(o for o in outputs if "float" in str(o.dtype))
    pooled = _MeanOverSteps()(first) if len(first.shape) == 3 else first
    trainer = compiled(keras.Model(symbolic_inputs, keras.layers.Dense(1)(pooled)), optimizer=keras.optimizers.SGD(0.1),
                       loss="mse")
    before = [w.copy() for w in trainer.get_weights()]
    history = trainer.fit(arrays, np.ones((arrays[0].shape[0], 1)), epochs=1, batch_size=arrays[0].shape[0],
                          verbose=0)
    assert np.isfinite(history.history["loss"][0]), history.history
    if trainable:
        assert any(not np.allclose(b, a) for b, a in zip(before, trainer.get_weights()))


def _mixed_precision_check(layer_class, init_kwargs, arrays, call, float32_outputs):
    """Under each mixed policy.

    Float32 variables, outputs in the compute dtype (or float32 where the layer says so), all finite.
    """
    for policy in ("mixed_float16", "mixed_bfloat16"):
        layer = layer_class(**init_kwargs, dtype=policy)
        outputs = call(layer, arrays)
        for variable in layer.weights:
            assert variable.dtype == "float32", (policy, variable.path, variable.dtype)
        for index, output in enumerate(outputs):
            dtype = keras.backend.standardize_dtype(output.dtype)
            if "int" in dtype or dtype == "bool":
                continue
            want = "float32" if index in float32_outputs else keras.DTypePolicy(policy).compute_dtype
            assert dtype == want, (policy, index, dtype)
            assert np.all(np.isfinite(keras.ops.convert_to_numpy(keras.ops.cast(output, "float32")))), (policy, index)


class _MeanOverSteps(keras.layers.Layer):
    """The training check's head: a plain mean over steps, blind to masks (a fully masked row stays finite)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        return keras.ops.mean(inputs, axis=1)

    def compute_mask(self, inputs, mask=None):
        return None


def _matches(shape, expected):
    return len(shape) == len(expected) and all(e is None or s == e for s, e in zip(shape, expected))


def _as_list(value):
    return list(value) if isinstance(value, (list, tuple)) else [value]
