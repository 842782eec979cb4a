"""What a GPU does to emokeras' LSTMs, shown on a CPU.

On a GPU, Keras 3's TensorFlow LSTM takes its cuDNN branch, which inserts
`tf.Assert`s that each mask is strictly right-padded and that no row is fully
masked (`keras/src/backend/tensorflow/rnn.py`, `_assert_valid_mask`). Inside a
compiled step that assertion fails at run time. `cudnn_branch()` makes Keras
take that branch here: its GPU check answers yes, and its cuDNN kernel is
replaced by Keras' own `_assert_valid_mask` on the mask it was given, followed
by the fallback Keras itself takes when cuDNN is unavailable (the generic
kernel). The assertion therefore runs where a GPU would run it: in `fit`'s,
`evaluate`'s and `predict`'s compiled functions, and in any graph traced inside
the block.

If a Keras release moves these internals, `cudnn_branch()` raises instead of
patching nothing, and `CudnnBranch.calls` records which LSTM layer went
through the branch and whether it had a mask, so a test can check that every
LSTM did.
"""

import contextlib
import dataclasses
import importlib

import keras

# By module path: the package's attribute `rnn` is the function of that name, not the module.
keras_tf_rnn = importlib.import_module("keras.src.backend.tensorflow.rnn")

_PATCHED = ("_is_gpu_available", "_cudnn_lstm", "_assert_valid_mask", "lstm")
# Keras' own words when the assertion fails (kept short: a test matches on them).
MASK_ERROR = "does not correspond to right-padded sequences, while using cuDNN"


@dataclasses.dataclass
class CudnnBranch:
    """What went through the cuDNN branch: one `(LSTM layer, whether it had a mask)` per call traced."""

    calls: list = dataclasses.field(default_factory=list)
    _layers: list = dataclasses.field(default_factory=list)  # the LSTM layer running now (innermost last)

    def layers(self) -> set:
        return {layer for layer, _ in self.calls}

    def unmasked(self) -> list:
        return [layer.path for layer, has_mask in self.calls if not has_mask]


@contextlib.contextmanager
def cudnn_branch():
    """Within the block, every Keras LSTM takes its cuDNN branch and asserts its mask as on a GPU."""
    missing = [name for name in _PATCHED if not hasattr(keras_tf_rnn, name)]
    missing += [] if hasattr(keras.layers.LSTM, "inner_loop") else ["LSTM.inner_loop"]
    if missing:
        raise AssertionError(f"keras.src.backend.tensorflow.rnn no longer has {missing}: the GPU simulation "
                             "cannot run; update tests/helpers/cudnn.py for this Keras")
    branch = CudnnBranch()
    originals = {name: getattr(keras_tf_rnn, name) for name in ("_is_gpu_available", "_cudnn_lstm")}
    assert_valid_mask = keras_tf_rnn._assert_valid_mask
    inner_loop = keras.layers.LSTM.inner_loop

    def recording_inner_loop(self, *args, **kwargs):  # names the layer for the kernel below
        branch._layers.append(self)
        try:
            return inner_loop(self, *args, **kwargs)
        finally:
            branch._layers.pop()

    def checked_kernel(inputs, initial_state_h, initial_state_c, kernel, recurrent_kernel, bias, mask, *args,
                       **kwargs):
        branch.calls.append((branch._layers[-1], mask is not None))
        if mask is not None:
            assert_valid_mask(mask)  # Keras' own check, as _cudnn_lstm runs it before the cuDNN op
        raise NotImplementedError  # what Keras raises when the cuDNN op is unavailable: the generic kernel runs

    keras_tf_rnn._is_gpu_available = lambda: True
    keras_tf_rnn._cudnn_lstm = checked_kernel
    keras.layers.LSTM.inner_loop = recording_inner_loop
    try:
        yield branch
    finally:
        for name, original in originals.items():
            setattr(keras_tf_rnn, name, original)
        keras.layers.LSTM.inner_loop = inner_loop


def lstm_layers(model) -> set:
    """The LSTM layers inside `model` (a Bidirectional holds two)."""
    found = set()
    for layer in model.layers:
        if isinstance(layer, keras.layers.Bidirectional):
            found |= {layer.forward_layer, layer.backward_layer}
        elif isinstance(layer, keras.layers.LSTM):
            found.add(layer)
        elif isinstance(layer, keras.Model):
            found |= lstm_layers(layer)
    return found
