"""SavedModel export with a serving signature on raw inputs (ARCHITECTURE.md, Exports).

The exported model takes what preparation stores, unnormalised: `frames`
`[batch, frames, 130]` float32 and `num_frames` `[batch]` int32, plus for
models that read words `word_vectors` `[batch, words, D]`, `num_words` and
`word_spans` `[batch, words, 2]`. It returns `probabilities` `[batch, classes]`
in the order of the metadata's `class_names` (the prepared corpus's classes).

Beside the graph, `assets.extra/emokeras.json` says which model it is, its
inputs, the class names, the frame features and the text encoder, so that
`emokeras.predict` can feed it without guessing.

A model that reads only audio (`frames`, `num_frames`) is also written as
`model.onnx` in the same folder, converted from the SavedModel by tf2onnx,
so that it can be deployed with onnxruntime and no TensorFlow. Keras' own
`model.export(format="onnx")` is not used: it turns the Normalization
layer's statistics into graph inputs that a caller would have to feed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys

import keras
import tensorflow as tf

from emokeras.files import replace_folder, write_json
from emokeras.models.specs import CLASS_NAMES, FRAME_INPUTS, METADATA, ONNX_MODEL, SIGNATURE

ONNX_OPSET = 17
# The facts copied into model.onnx's metadata_props (as JSON strings), for a caller with onnxruntime alone.
ONNX_METADATA_KEYS = ("model", "class_names", "feature_set", "max_frames", "inputs", "fold")


def serving_specs(model: keras.Model) -> dict[str, tf.TensorSpec]:
    """One `TensorSpec` per model input, batch and time axes unknown."""
    return {name: tf.TensorSpec((None, *tensor.shape[1:]), tensor.dtype, name=name)
            for name, tensor in model.input.items()}


def _lstm_layers(model: keras.Model) -> list:
    """Every `keras.layers.LSTM` inside `model`, Bidirectional halves and nested models included."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Bidirectional):
            found += [layer.forward_layer, layer.backward_layer]
        elif isinstance(layer, keras.layers.LSTM):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found += _lstm_layers(layer)
    return found


@contextlib.contextmanager
def generic_lstm_kernels(model: keras.Model):
    """Within the block, `model`'s LSTMs trace Keras' generic kernel rather than cuDNN's.

    On a GPU, Keras puts the `CudnnRNNV3` op into a traced graph, and that op
    has no CPU kernel: a SavedModel exported on a GPU would fail on every CPU
    ("No OpKernel was registered to support Op 'CudnnRNNV3'"), and tf2onnx
    could not convert it. The generic kernel runs on any device.
    """
    layers = _lstm_layers(model)
    saved = [layer.use_cudnn for layer in layers]
    for layer in layers:
        layer.use_cudnn = False
    try:
        yield
    finally:
        for layer, use_cudnn in zip(layers, saved):
            layer.use_cudnn = use_cudnn


def export_saved_model(model: keras.Model, path: str, metadata: dict | None = None, onnx: bool = True) -> str:
    """Writes `model` as a SavedModel at `path` (replacing what is there, only once complete).

    Args:
      model: an emokeras model (dict of named inputs → probabilities).
      path: the SavedModel folder.
      metadata: extra facts for `assets.extra/emokeras.json` (model name,
        feature set, encoder, fold...).
      onnx: also write `model.onnx` where the model reads audio alone.

    Returns:
      `path`.
    """
    specs = serving_specs(model)
    class_names = list((metadata or {}).get("class_names", CLASS_NAMES))
    if len(class_names) != model.output.shape[-1]:
        raise ValueError(f"{path}: {len(class_names)} class names ({', '.join(class_names)}) for a model of "
                         f"{model.output.shape[-1]} outputs")

    def serve(inputs):
        return {"probabilities": model(inputs, training=False)}

    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    partial = os.path.join(parent, "." + os.path.basename(path) + ".partial")
    if os.path.isdir(partial):
        shutil.rmtree(partial)
    with generic_lstm_kernels(model):  # a graph any device (and tf2onnx) can run
        # Traced once: saved as a concrete function. (Given the tf.function, saving traces it again; Keras'
        # ExportArchive also traces the model's own default signature: three traces of the model in all.)
        signature = tf.function(serve, input_signature=[specs], autograph=False).get_concrete_function()
    root = tf.Module()
    root.variables_read = list(signature.variables)  # a saved function's variables must be reachable from the root
    tf.saved_model.save(root, partial, signatures={SIGNATURE: signature})
    os.makedirs(os.path.join(partial, "assets.extra"), exist_ok=True)
    facts = {
        "class_names": class_names,
        "inputs": {name: {"shape": spec.shape.as_list(), "dtype": spec.dtype.name} for name, spec in specs.items()},
        "signature": SIGNATURE,
        **(metadata or {}),
    }
    if onnx and sorted(specs) == sorted(FRAME_INPUTS):
        facts["onnx"] = ONNX_MODEL
        write_onnx(partial, os.path.join(partial, ONNX_MODEL), facts)
    write_json(os.path.join(partial, METADATA), facts)
    replace_folder(partial, path)  # a reader of `path` finds the old export or the new one, whole
    return path


def write_onnx(saved_model_dir: str, path: str, facts: dict) -> str:
    """Converts the SavedModel at `saved_model_dir` to ONNX at `path`, with `facts` in its metadata.

    tf2onnx runs in its own process: its converter reloads the SavedModel and
    rewrites TensorFlow's graph state, which the exporting process keeps using.

    Raises:
      RuntimeError: the conversion failed, with tf2onnx's last lines.
    """
    partial = path + ".partial"
    command = [sys.executable, "-m", "tf2onnx.convert", "--saved-model", saved_model_dir,
               "--signature_def", SIGNATURE, "--opset", str(ONNX_OPSET), "--output", partial]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0 or not os.path.isfile(partial):
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"{saved_model_dir}: tf2onnx could not convert the SavedModel to ONNX:\n{tail}")
    import onnx  # here: only an export that writes model.onnx needs it

    model = onnx.load(partial)
    onnx.helper.set_model_props(model, {key: json.dumps(facts[key]) for key in ONNX_METADATA_KEYS
                                        if key in facts})
    onnx.save(model, partial)
    os.replace(partial, path)
    return path


def load_serving(path: str):
    """The SavedModel's serving function: call it with keyword tensors, get `{"probabilities": ...}`."""
    return tf.saved_model.load(path).signatures[SIGNATURE]
