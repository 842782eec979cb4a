"""Small models and hand-made batches for the tests of models, the cuDNN path and mixed precision."""

import keras
import numpy as np

from emokeras.config import ModelConfig
from emokeras.models import builders
from emokeras.models.specs import model_spec

SMALL = ModelConfig(hidden_units=8, blstm_layers=1, dropout=0.0)
WORD_DIMENSION = 6
NUM_FEATURES = 5


def compiled(model, **compile_args):
    """`model`, compiled with `compile_args` and its optimizer's variables made: its first `fit` traces one step.

    Outside a distribution strategy Keras makes the optimizer's variables in the first training step, while it is
    traced, and TensorFlow then traces the step again without them (tensorflow/tensorflow#48851): a one-step `fit`
    takes about twice as long. Runs (`Experiment`, the tuner) train under a strategy, where Keras makes them before.
    """
    model.compile(**compile_args)
    model.optimizer.build(model.trainable_variables)
    return model


def small_model(name, config=SMALL, **kwargs):
    keras.utils.set_random_seed(0)
    return builders.build_model(name, config, num_features=NUM_FEATURES, word_dimension=WORD_DIMENSION, **kwargs)


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


SPEAKER_FRAME_MODELS = [name for name in builders.MODEL_NAMES if model_spec(name).frames == "speaker"]


def bucket_batch(seed=1):
    """Five utterances as a bucket's batch holds them.

    Interior silences, overlapping words, a word reaching the last frame, padding words, and a short last row, with two
    BLSTM layers' worth of frames.
    """
    rng = np.random.default_rng(seed)
    spans = np.zeros((5, 4, 2), "int32")
    spans[0, :3] = [[2, 6], [5, 9], [14, 20]]  # silence at 0-1, 9-13 and 20-23
    spans[1, :4] = [[0, 4], [4, 8], [8, 12], [12, 24]]  # words cover every frame
    spans[2, :2] = [[3, 5], [18, 22]]  # a long interior silence
    spans[3, :1] = [[10, 24]]  # speech at the end only
    spans[4, :1] = [[1, 3]]  # the short bucket-end row: 4 frames
    return {
        "frames": rng.standard_normal((5, 24, NUM_FEATURES)).astype("float32"),
        "num_frames": np.array([24, 24, 22, 24, 4], "int32"),
        "word_vectors": rng.standard_normal((5, 4, WORD_DIMENSION)).astype("float32"),
        "num_words": np.array([3, 4, 2, 1, 1], "int32"),
        "word_spans": spans,
    }
