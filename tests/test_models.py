"""emokeras.models: every Table 2 name builds, trains a step and predicts; masks make padding and
(for speaker-frame models) silence irrelevant; normalisation lives in the model; inspection outputs."""

import os

import keras
import numpy as np
import pytest

from emokeras import models
from emokeras.config import ModelConfig
from emokeras.layers import LengthMask, SpeakerFrameMask

SMALL = ModelConfig(hidden_units=8, blstm_layers=1, dropout=0.0)
WORD_DIMENSION = 6
NUM_FEATURES = 5


def small_model(name, **kwargs):
    keras.utils.set_random_seed(0)
    return models.build_model(name, SMALL, num_features=NUM_FEATURES, word_dimension=WORD_DIMENSION, **kwargs)


def batch(seed=0):
    """Three utterances: 12, 9 and 5 frames; 3, 2 and 1 words with spans that leave gaps (silence)."""
    rng = np.random.default_rng(seed)
    return {
        "frames": rng.standard_normal((3, 12, NUM_FEATURES)).astype("float32"),
        "num_frames": np.array([12, 9, 5], "int32"),
        "word_vectors": rng.standard_normal((3, 3, WORD_DIMENSION)).astype("float32"),
        "num_words": np.array([3, 2, 1], "int32"),
        "word_spans": np.array([[[1, 4], [4, 7], [9, 11]], [[0, 3], [5, 8], [0, 0]], [[2, 5], [0, 0], [0, 0]]],
                               "int32"),
    }


def padded(inputs, extra_frames=4, extra_words=2):
    """The same utterances with more padding: garbage frames and vectors, empty spans."""
    out = dict(inputs)
    b, t, f = inputs["frames"].shape
    out["frames"] = np.concatenate([inputs["frames"], np.full((b, extra_frames, f), 7.0, "float32")], 1)
    out["word_vectors"] = np.concatenate(
        [inputs["word_vectors"], np.full((b, extra_words, WORD_DIMENSION), -3.0, "float32")], 1)
    out["word_spans"] = np.concatenate([inputs["word_spans"], np.zeros((b, extra_words, 2), "int32")], 1)
    # Garbage inside the old padding too: frames past num_frames, vectors past num_words.
    for row in range(b):
        out["frames"][row, inputs["num_frames"][row]:] = 7.0
        out["word_vectors"][row, inputs["num_words"][row]:] = -3.0
    return out


@pytest.mark.parametrize("name", models.MODEL_NAMES)
def test_every_model_builds_trains_a_step_and_predicts(name):
    model = small_model(name)
    inputs = models.select_inputs(model, batch())
    assert set(inputs) == set(models.MODEL_INPUTS[name])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    loss = model.train_on_batch(inputs, np.array([0, 1, 3]))
    assert np.isfinite(loss)
    assert any(not np.allclose(b, a) for b, a in zip(before, model.get_weights()))
    probabilities = model.predict(inputs, verbose=0)
    assert probabilities.shape == (3, 4)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", models.MODEL_NAMES)
def test_padding_changes_nothing(name):
    model = small_model(name)
    inputs = batch()
    want = model.predict(models.select_inputs(model, inputs), verbose=0)
    got = model.predict(models.select_inputs(model, padded(inputs)), verbose=0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,ignores_silence", [("B-ACO-1", False), ("B-ACO-2", True), ("B-MM-2", True),
                                                  ("H-ACO-1", True), ("H-MM-4", True)])
def test_speaker_frame_models_ignore_frames_outside_words(name, ignores_silence):
    model = small_model(name)
    inputs = batch()
    silence_changed = {**inputs, "frames": inputs["frames"].copy()}
    silence_changed["frames"][0, [0, 7, 8, 11]] = 50.0  # frames 0, 7, 8 and 11 of utterance 0 lie in no span
    want = model.predict(models.select_inputs(model, inputs), verbose=0)
    got = model.predict(models.select_inputs(model, silence_changed), verbose=0)
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
    np.testing.assert_allclose(raw.predict(models.select_inputs(raw, inputs), verbose=0),
                               plain.predict(models.select_inputs(plain, normalised), verbose=0), rtol=1e-4, atol=1e-6)


def test_save_and_load_keep_predictions(tmp_path):
    mean = np.ones(NUM_FEATURES, "float32")
    model = small_model("H-MM-4", frame_mean=mean, frame_variance=2 * mean)
    inputs = models.select_inputs(model, batch())
    path = os.path.join(tmp_path, "h-mm-4.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(inputs, verbose=0), model.predict(inputs, verbose=0), rtol=1e-5)


def test_inspection_model_gives_attention_weights_and_gates():
    model = small_model("H-MM-4")
    inputs = batch()
    outputs = models.inspection_model(model).predict(models.select_inputs(model, inputs), verbose=0)
    assert set(outputs) == {"probabilities", "attention_weights", "modality_gate"}
    weights, gate = outputs["attention_weights"], outputs["modality_gate"]
    assert weights.shape == (3, 3) and gate.shape == (3, 3, SMALL.hidden_units)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(weights[1, 2:], 0.0)  # padding words get no attention
    np.testing.assert_array_equal(weights[2, 1:], 0.0)
    assert np.all((gate > 0) & (gate < 1))
    np.testing.assert_allclose(outputs["probabilities"], model.predict(models.select_inputs(model, inputs), verbose=0),
                               rtol=1e-5)
    assert set(models.inspection_model(small_model("B-ACO-1+attention")).output) == {"probabilities",
                                                                                     "attention_weights"}
    assert set(models.inspection_model(small_model("B-LEX")).output) == {"probabilities"}


def test_representation_model_is_the_classifier_input():
    model = small_model("B-MM-1")
    representation = models.representation_model(model)
    inputs = models.select_inputs(model, batch())
    h = representation.predict(inputs, verbose=0)
    assert h.shape == (3, 2 * SMALL.hidden_units)  # pooled acoustic ⊕ pooled lexical
    dense = model.get_layer("probabilities")
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in dense.weights)
    logits = h @ kernel + bias
    expected = np.exp(logits - logits.max(-1, keepdims=True))
    np.testing.assert_allclose(model.predict(inputs, verbose=0), expected / expected.sum(-1, keepdims=True),
                               rtol=1e-5)


def test_which_models_read_words():
    assert not models.reads_words("B-ACO-1") and not models.reads_words("H-ACO-1")
    assert models.reads_words("B-LEX") and models.reads_words("H-MM-4")


def test_unknown_model_name_lists_the_names():
    with pytest.raises(ValueError, match=r"unknown model 'H-MM-5'.*B-ACO-1.*H-MM-4"):
        models.build_model("H-MM-5")


def test_length_mask_and_speaker_frame_mask_by_hand():
    frames = np.zeros((2, 6, 1), "float32")
    lengths = np.array([4, 6], "int32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(LengthMask().compute_mask([frames, lengths])),
                                  [[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    # Overlapping spans, a span ending at the last frame, a span running past the frames, padding spans.
    spans = np.array([[[1, 3], [2, 4], [0, 0]], [[4, 6], [5, 9], [0, 0]]], "int32")
    covered = SpeakerFrameMask()([frames, spans])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(covered), [[0, 1, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1]])
    length_mask = np.array([[1, 1, 1, 0, 0, 0], [1] * 6], bool)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(SpeakerFrameMask()([frames, spans], mask=[length_mask,
                                                                                                       None])),
                                  [[0, 1, 1, 0, 0, 0], [0, 0, 0, 0, 1, 1]])
