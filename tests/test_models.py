"""emokeras.models.builders, and the export's one trace of a model.

Masks make padding and (for speaker-frame models) silence irrelevant; compacted speaker frames equal the masked
implementation; normalisation lives in the model; inspection outputs. (Every model trains a step and predicts in
tests/test_cudnn.py, on the path a GPU takes.)
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from emokeras.config import ModelConfig
from emokeras.models import builders
from emokeras.models.layers import LengthMask
from emokeras.models.specs import ACOUSTIC_ONLY, model_spec

from helpers.masked_reference import build_masked_reference
from helpers.models import (
    NUM_FEATURES,
    SMALL,
    SPEAKER_FRAME_MODELS,
    WORD_DIMENSION,
    batch,
    bucket_batch,
    padded,
    small_model,
)


def infer(model, inputs):
    """`model` called eagerly in inference, as numpy: no tf.function to trace, which keeps these tests fast."""
    return keras.tree.map_structure(keras.ops.convert_to_numpy, model(inputs, training=False))


@pytest.mark.parametrize("name", builders.MODEL_NAMES)
def test_padding_changes_nothing(name):
    model = small_model(name)
    inputs = batch()
    want = infer(model, builders.select_inputs(model, inputs))
    got = infer(model, builders.select_inputs(model, padded(inputs)))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,ignores_silence", [("B-ACO-1", False), ("B-ACO-2", True), ("B-MM-2", True),
                                                  ("H-ACO-1", True), ("H-MM-4", True)])
def test_speaker_frame_models_ignore_frames_outside_words(name, ignores_silence):
    model = small_model(name)
    inputs = batch()
    silence_changed = {**inputs, "frames": inputs["frames"].copy()}
    silence_changed["frames"][0, [0, 7, 8, 11]] = 50.0  # frames 0, 7, 8 and 11 of utterance 0 lie in no span
    want = infer(model, builders.select_inputs(model, inputs))
    got = infer(model, builders.select_inputs(model, silence_changed))
    np.testing.assert_allclose(got[1:], want[1:], rtol=1e-5, atol=1e-6)
    assert np.allclose(got[0], want[0], rtol=1e-5, atol=1e-6) == ignores_silence


def test_frames_are_normalised_inside_the_model():
    inputs = batch()
    mean = np.linspace(-2, 2, NUM_FEATURES).astype("float32")
    variance = np.linspace(0.5, 4, NUM_FEATURES).astype("float32")
    raw = small_model("B-ACO-1", frame_mean=mean, frame_variance=variance)
    plain = small_model("B-ACO-1")
    plain.set_weights(raw.get_weights())
    normalised = {**inputs, "frames": (inputs["frames"] - mean) / np.sqrt(variance)}
    np.testing.assert_allclose(infer(raw, builders.select_inputs(raw, inputs)),
                               infer(plain, builders.select_inputs(plain, normalised)), rtol=1e-4, atol=1e-6)


def test_save_and_load_keep_predictions(tmp_path):
    mean = np.ones(NUM_FEATURES, "float32")
    model = small_model("H-MM-4", frame_mean=mean, frame_variance=2 * mean)
    inputs = builders.select_inputs(model, batch())
    path = os.path.join(tmp_path, "h-mm-4.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(infer(loaded, inputs), infer(model, inputs), rtol=1e-5)


def test_the_export_traces_the_model_once_and_answers_as_it(tmp_path):
    """The serving signature is the one trace (saving a tf.function, or Keras' ExportArchive, traced it three times)."""
    from unittest import mock

    from emokeras.serving import export

    model = small_model("H-MM-4", frame_mean=np.ones(NUM_FEATURES, "float32"))
    inputs = builders.select_inputs(model, batch())
    call, calls = keras.Model.__call__, []

    def counted(self, *args, **kwargs):
        calls.extend([self] if self is model else [])
        return call(self, *args, **kwargs)

    with mock.patch.object(keras.Model, "__call__", counted):
        export.export_saved_model(model, str(tmp_path / "fold-3"), onnx=False)
    assert len(calls) == 1
    serve = export.load_serving(str(tmp_path / "fold-3"))
    served = serve(**{name: tf.constant(value) for name, value in inputs.items()})
    np.testing.assert_allclose(served["probabilities"].numpy(), infer(model, inputs), rtol=1e-5, atol=1e-6)


def test_inspection_model_gives_attention_weights_and_gates():
    model = small_model("H-MM-4")
    inputs = batch()
    outputs = infer(builders.inspection_model(model), builders.select_inputs(model, inputs))
    assert set(outputs) == {"probabilities", "attention_weights", "modality_gate"}
    weights, gate = outputs["attention_weights"], outputs["modality_gate"]
    assert weights.shape == (3, 3) and gate.shape == (3, 3, SMALL.hidden_units)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(weights[1, 2:], 0.0)  # padding words get no attention
    np.testing.assert_array_equal(weights[2, 1:], 0.0)
    assert np.all((gate > 0) & (gate < 1))
    np.testing.assert_allclose(outputs["probabilities"], infer(model, builders.select_inputs(model, inputs)),
                               rtol=1e-5)
    assert set(builders.inspection_model(small_model("B-ACO-1+attention")).output) == {"probabilities",
                                                                                     "attention_weights"}
    assert set(builders.inspection_model(small_model("B-LEX")).output) == {"probabilities"}


def test_representation_model_is_the_classifier_input():
    model = small_model("B-MM-1")
    representation = builders.representation_model(model)
    inputs = builders.select_inputs(model, batch())
    h = infer(representation, inputs)
    assert h.shape == (3, 2 * SMALL.hidden_units)  # pooled acoustic ⊕ pooled lexical
    dense = model.get_layer("probabilities")
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in dense.weights)
    logits = h @ kernel + bias
    expected = np.exp(logits - logits.max(-1, keepdims=True))
    np.testing.assert_allclose(infer(model, inputs), expected / expected.sum(-1, keepdims=True),
                               rtol=1e-5)


def test_what_each_model_reads():
    assert [name for name in builders.MODEL_NAMES if model_spec(name).words] == [
        "B-LEX", "B-MM-1", "B-MM-2", "H-MM-1", "H-MM-2", "H-MM-3", "H-MM-4"]
    # Speaker frames and acoustic words need word timings: only B-ACO-1 and its attention variant deploy on audio.
    assert ACOUSTIC_ONLY == ("B-ACO-1", "B-ACO-1+attention")
    assert model_spec("H-ACO-1").inputs == ("frames", "num_frames", "word_spans")
    assert model_spec("B-MM-1").inputs == ("frames", "num_frames", "word_vectors", "num_words")
    assert [model_spec(name).modality for name in ("B-ACO-2", "B-LEX", "H-MM-4")] == [
        "Acoustics", "Lexical", "Multimodal"]


def test_unknown_model_name_lists_the_names():
    with pytest.raises(ValueError, match=r"unknown model 'H-MM-5'.*B-ACO-1.*H-MM-4"):
        builders.build_model("H-MM-5")


def test_length_mask_by_hand():
    frames = np.zeros((2, 6, 1), "float32")
    lengths = np.array([4, 6], "int32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(LengthMask().compute_mask([frames, lengths])),
                                  [[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])


def outputs_and_gradients(model, inputs, labels):
    """Eagerly (no tracing, so fast): the inspection outputs in inference, and the loss gradients in training."""
    outputs = {key: keras.ops.convert_to_numpy(value)
               for key, value in builders.inspection_model(model)(inputs, training=False).items()}
    with tf.GradientTape() as tape:
        loss = keras.ops.mean(keras.losses.sparse_categorical_crossentropy(labels, model(inputs, training=True)))
    return outputs, tape.gradient(loss, model.trainable_weights)


@pytest.mark.parametrize("name", SPEAKER_FRAME_MODELS)
def test_compacted_speaker_frames_equal_the_masked_implementation(name, tmp_path):
    """Weights saved by the models that masked silences in place load into the compacted ones.

    Which then give the same probabilities, attention weights and gates, and the same gradients.
    """
    config = ModelConfig(hidden_units=8, blstm_layers=2, dropout=0.0)
    sizes = dict(num_features=NUM_FEATURES, word_dimension=WORD_DIMENSION,
                 frame_mean=np.full(NUM_FEATURES, 0.5, "float32"), frame_variance=np.full(NUM_FEATURES, 2.0, "float32"))
    keras.utils.set_random_seed(4)
    reference = build_masked_reference(name, config, **sizes)
    path = str(tmp_path / "masked.weights.h5")
    reference.save_weights(path)
    model = builders.build_model(name, config, **sizes)
    model.load_weights(path)
    inputs = builders.select_inputs(model, bucket_batch())
    labels = np.array([0, 1, 2, 3, 1])
    want, want_gradients = outputs_and_gradients(reference, inputs, labels)
    got, gradients = outputs_and_gradients(model, inputs, labels)
    assert set(got) == set(want)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6, err_msg=key)
    assert [w.shape for w in model.trainable_weights] == [w.shape for w in reference.trainable_weights]
    for weight, gradient, expected in zip(model.trainable_weights, gradients, want_gradients):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(gradient), keras.ops.convert_to_numpy(expected),
                                   rtol=1e-4, atol=1e-6, err_msg=weight.path)
