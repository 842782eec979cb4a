"""What a GPU user sees.

Keras' cuDNN branch, taken on a CPU (tests/helpers/cudnn.py), with its mask assertion run inside the compiled steps of
every model's fit and predict, and the export, which must run on any device. Both views of every multi-view mode:
tests/test_multiview.py; a whole training run, evaluation included: tests/test_train.py.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from emokeras.config import ModelConfig
from emokeras.models import builders
from emokeras.models.specs import model_spec
from emokeras.serving import export

from helpers.cudnn import MASK_ERROR, cudnn_branch, lstm_layers
from helpers.masked_reference import build_masked_reference
from helpers.models import NUM_FEATURES, SMALL, WORD_DIMENSION, bucket_batch, compiled, small_model

LABELS = np.array([0, 1, 2, 3, 1])


def test_the_simulation_fails_where_a_gpu_fails():
    """The check is live: an interior mask (silences masked in place) and a row with no frame both stop the step."""
    with cudnn_branch():
        masked = build_masked_reference("B-ACO-2", SMALL, num_features=NUM_FEATURES, word_dimension=WORD_DIMENSION)
        compiled(masked, optimizer="sgd", loss="sparse_categorical_crossentropy")
        inputs = builders.select_inputs(masked, bucket_batch())
        with pytest.raises(tf.errors.InvalidArgumentError, match=MASK_ERROR):
            masked.fit(inputs, LABELS, batch_size=5, epochs=1, verbose=0)
        model = small_model("B-ACO-1")
        inputs = builders.select_inputs(model, bucket_batch())
        inputs["num_frames"] = inputs["num_frames"] * np.array([1, 1, 1, 1, 0], "int32")
        with pytest.raises(tf.errors.InvalidArgumentError, match=MASK_ERROR):
            model.predict(inputs, batch_size=5, verbose=0)


@pytest.mark.large
@pytest.mark.parametrize("name", builders.MODEL_NAMES)
def test_every_model_fits_and_predicts_on_the_cudnn_path(name):
    """Each LSTM, in the training and the prediction step, took the cuDNN branch with a mask it accepts.

    The batch has interior silences, padding words and a short last row. `evaluate` runs the LSTMs as `predict` does
    (a third trace per model, about a third of this test's time); the session's H-MM-4 run evaluates inside the
    branch. (Stacked layers: that run too, tests/test_train.py.)
    """
    with cudnn_branch() as branch:
        model = small_model(name, ModelConfig(hidden_units=8, blstm_layers=1, dropout=0.1))
        inputs = builders.select_inputs(model, bucket_batch())
        assert set(inputs) == set(model_spec(name).inputs)
        compiled(model, optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
        before = [w.copy() for w in model.get_weights()]
        history = model.fit(inputs, LABELS, batch_size=5, epochs=1, verbose=0).history
        probabilities = model.predict(inputs, batch_size=5, verbose=0)
    assert branch.layers() == lstm_layers(model) and not branch.unmasked()
    assert len(branch.calls) >= 2 * len(lstm_layers(model))  # fit and predict each traced every LSTM
    assert np.isfinite(history["loss"][0])
    assert any(not np.allclose(b, a) for b, a in zip(before, model.get_weights()))
    assert probabilities.shape == (5, 4)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)


def test_the_export_is_traced_for_any_device(h_mm_4_run):
    """On a GPU, the cuDNN branch would put CudnnRNNV3 into the SavedModel, which no CPU can run.

    Measured: "No OpKernel was registered to support Op 'CudnnRNNV3'". The session's H-MM-4 run (two layers a stack)
    was exported inside the branch: no LSTM took it while exporting, and the export holds no cuDNN operation. (That
    the export answers as the trained model does: tests/test_train.py.)
    """
    config, _, branch = h_mm_4_run
    assert branch["lstm_calls"] > 0 and branch["export_calls"] == 0
    serve = export.load_serving(config.export_dir())
    graph = serve.graph.as_graph_def()
    operations = {node.op for function in graph.library.function for node in function.node_def}
    assert operations and not {op for op in operations if op.startswith("Cudnn")}
