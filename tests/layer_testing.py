"""A keras-hub-style check every custom layer passes: config round trip, symbolic and eager
calls, save and load inside a model, and one `fit` step."""

import os

import keras
import numpy as np


def check_layer(make_layer, inputs, tmp_path):
    """`make_layer()` builds a fresh layer; `inputs` is an array or a list of arrays (batch first)."""
    listed = isinstance(inputs, (list, tuple))
    arrays = list(inputs) if listed else [inputs]

    layer = make_layer()
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config

    eager = layer(arrays if listed else arrays[0])
    eager = list(eager) if isinstance(eager, (list, tuple)) else [eager]

    symbolic_inputs = [keras.Input(shape=a.shape[1:], dtype=str(a.dtype)) for a in arrays]
    outputs = make_layer()(symbolic_inputs if listed else symbolic_inputs[0])
    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    assert [tuple(o.shape[1:]) for o in outputs] == [tuple(e.shape[1:]) for e in eager]

    model = keras.Model(symbolic_inputs, outputs)
    expected = model.predict(arrays, verbose=0)
    path = os.path.join(str(tmp_path), "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    for want, got in zip(_as_list(expected), _as_list(loaded.predict(arrays, verbose=0))):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

    head = keras.layers.Dense(1)(keras.layers.Flatten()(outputs[0]))
    trainer = keras.Model(symbolic_inputs, head)
    trainer.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    before = [w.copy() for w in trainer.get_weights()]
    history = trainer.fit(arrays, np.ones((arrays[0].shape[0], 1)), epochs=1, batch_size=arrays[0].shape[0], verbose=0)
    assert np.isfinite(history.history["loss"][0])
    if layer.trainable_weights:
        assert any(not np.allclose(b, a) for b, a in zip(before, trainer.get_weights()))


def _as_list(value):
    return list(value) if isinstance(value, (list, tuple)) else [value]
