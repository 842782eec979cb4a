"""emokeras.models.multiview: Eq. 2 and Eq. 5 against hand-computed values, and negative selection by rule."""

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from emokeras.models import multiview

from helpers.cudnn import cudnn_branch, lstm_layers
from helpers.models import compiled

SQRT_HALF = np.sqrt(0.5)


def numpy_contrastive(h_a, h_a_negative, h_m, h_m_negative, margin):
    def dis(v, w):
        norms = np.linalg.norm(v, axis=-1) * np.linalg.norm(w, axis=-1)
        return 1 - np.sum(v * w, -1) / np.maximum(norms, 1e-12)

    n = len(h_a)
    first = np.maximum(0, margin + dis(h_a, h_m) - dis(h_a, h_m_negative)).sum() / (2 * n)
    second = np.maximum(0, margin + dis(h_m, h_a) - dis(h_m, h_a_negative)).sum() / (2 * n)
    return first + second


def test_contrastive_loss_by_hand():
    h_a = np.array([[1.0, 0.0], [1.0, 0.0]], "float32")
    h_m = np.array([[1.0, 0.0], [0.0, 1.0]], "float32")
    h_m_negative = np.array([[0.0, 1.0], [SQRT_HALF, SQRT_HALF]], "float32")
    h_a_negative = np.array([[-1.0, 0.0], [0.0, -1.0]], "float32")
    # Sample 0 satisfies both margins. Sample 1, acoustic anchor: 0.5 + dis([1,0],[0,1]) − dis([1,0],[.71,.71])
    # = 0.5 + 1 − (1 − 0.7071) = 1.2071; multimodal anchor: 0.5 + 1 − dis([0,1],[0,−1]) = 0.5 + 1 − 2 < 0.
    expected = 1.2071068 / 4
    got = float(multiview.contrastive_loss(h_a, h_a_negative, h_m, h_m_negative, margin=0.5))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    np.testing.assert_allclose(got, numpy_contrastive(h_a, h_a_negative, h_m, h_m_negative, 0.5), rtol=1e-5)


def test_contrastive_loss_is_cross_view_and_scale_free():
    rng = np.random.default_rng(0)
    vectors = [rng.standard_normal((5, 3)).astype("float32") for _ in range(4)]
    want = numpy_contrastive(*vectors, margin=0.3)
    np.testing.assert_allclose(float(multiview.contrastive_loss(*vectors, margin=0.3)), want, rtol=1e-5)
    scaled = [v * s for v, s in zip(vectors, (2.0, 0.1, 7.0, 3.0))]  # cosine distance ignores length
    np.testing.assert_allclose(float(multiview.contrastive_loss(*scaled, margin=0.3)), want, rtol=1e-5)


def test_contrastive_margin_boundary():
    h = np.array([[1.0, 0.0]], "float32")
    negative = np.array([[0.5, np.sqrt(0.75)]], "float32")  # cos 0.5: distance 0.5 from h
    far = np.array([[-1.0, 0.0]], "float32")
    # dis(positive) = 0 and dis(negative) = 0.5: the hinge is exactly at its corner for m = 0.5 ...
    at_margin = float(multiview.contrastive_loss(h, far, h, negative, margin=0.5))
    assert abs(at_margin) < 1e-6
    # ... and a larger margin gives (m − 0.5) / 2 from the acoustic anchor alone.
    np.testing.assert_allclose(float(multiview.contrastive_loss(h, far, h, negative, margin=0.6)), 0.05, rtol=1e-4)


def test_zero_vectors_give_finite_loss_and_gradients():
    zeros = tf.zeros((2, 3))
    h_m = tf.constant([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]])
    with tf.GradientTape() as tape:
        tape.watch(zeros)
        loss = multiview.contrastive_loss(zeros, zeros, h_m, -h_m, margin=0.5)
    gradient = tape.gradient(loss, zeros)
    assert np.isfinite(float(loss)) and np.all(np.isfinite(gradient.numpy()))
    np.testing.assert_allclose(ops.convert_to_numpy(multiview.cosine_distance(zeros, h_m)), [1.0, 1.0])


def test_kl_loss_by_hand():
    teacher = np.array([[0.5, 0.5, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]], "float32")
    student = np.array([[0.25, 0.25, 0.25, 0.25], [0.25, 0.25, 0.25, 0.25]], "float32")
    # Sample 0: 0.5 ln 2 + 0.5 ln 2 (the zero classes add nothing); sample 1: identical, 0.
    np.testing.assert_allclose(float(multiview.kl_loss(teacher, student)), np.log(2) / 2, rtol=1e-5)
    assert abs(float(multiview.kl_loss(student, student))) < 1e-7
    # A student that gives 0 where the teacher does not: large, but finite.
    assert np.isfinite(float(multiview.kl_loss(student, teacher)))


def test_eligibility_rules():
    random_rule = multiview.negative_eligibility("random")
    np.testing.assert_array_equal(random_rule, ~np.eye(4, dtype=bool))
    similar = multiview.negative_eligibility("similar")
    # anger <-> happiness, neutral <-> sadness
    np.testing.assert_array_equal(similar, [[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]])
    custom = multiview.negative_eligibility("similar", multiview.CLASS_NAMES,
                                            [("anger", "sadness"), ("anger", "neutral"), ("happiness", "neutral")])
    np.testing.assert_array_equal(custom[0], [0, 0, 1, 1])
    # Other classes: the pairs among them; a class without a similar one is refused, naming it.
    crema = ("anger", "disgust", "fear", "happiness", "neutral", "sadness")
    with pytest.raises(ValueError, match=r"--negatives similar: disgust, fear has no acoustically similar class"):
        multiview.negative_eligibility("similar", crema)
    np.testing.assert_array_equal(multiview.negative_eligibility("random", crema), ~np.eye(6, dtype=bool))
    with pytest.raises(ValueError, match="negative rule must be one of"):
        multiview.negative_eligibility("hardest")


@pytest.mark.parametrize("rule", ["random", "similar"])
def test_negatives_obey_their_rule_and_match_algorithm_1(rule):
    eligibility = multiview.negative_eligibility(rule)
    labels = np.array([0] * 16 + [1] * 8 + [2] * 4 + [3] * 4, "int32")
    counts = np.bincount(labels, minlength=4)
    drawn = np.zeros((4, 4))
    for seed in range(300):
        indices, has_negative = multiview.select_negatives(labels, eligibility, seed=[seed, 1])
        indices, has_negative = indices.numpy(), has_negative.numpy()
        assert has_negative.all()
        assert eligibility[labels, labels[indices]].all()  # every negative obeys its rule
        np.add.at(drawn, (labels, labels[indices]), 1)
    assert ((drawn > 0) == eligibility).all()  # every eligible class is drawn, and nothing else
    # Algorithm 1: a negative for class y is uniform over the eligible samples, so class c has
    # probability n_c / Σ_{eligible c'} n_c'.
    expected = eligibility * counts[None, :]
    expected = expected / expected.sum(1, keepdims=True)
    observed = drawn / drawn.sum(1, keepdims=True)
    np.testing.assert_allclose(observed, expected, atol=0.03)


def test_a_batch_without_eligible_negatives():
    labels = np.array([2, 2, 3], "int32")
    indices, has_negative = multiview.select_negatives(labels, multiview.negative_eligibility("similar"), [0, 0])
    # neutral <-> sadness: the two neutral utterances take the sad one; the sad one has two choices.
    np.testing.assert_array_equal(has_negative.numpy(), [True, True, True])
    np.testing.assert_array_equal(indices.numpy()[:2], [2, 2])
    indices, has_negative = multiview.select_negatives(np.array([1, 1], "int32"),
                                                       multiview.negative_eligibility("random"), [0, 0])
    np.testing.assert_array_equal(has_negative.numpy(), [False, False])
    np.testing.assert_array_equal(indices.numpy(), [0, 1])  # points to itself; the loss skips it


def test_add_negatives_gathers_every_input():
    frames = np.arange(4 * 3 * 2, dtype="float32").reshape(4, 3, 2)
    dataset = tf.data.Dataset.from_tensors(({"frames": frames, "num_frames": np.array([3, 2, 1, 3], "int32")},
                                            np.array([0, 1, 2, 3], "int32")))
    inputs, labels = next(iter(multiview.add_negatives(dataset, "similar")))
    partner = np.array([1, 0, 3, 2])  # the only eligible sample for each
    np.testing.assert_array_equal(inputs["negative_frames"].numpy(), frames[partner])
    np.testing.assert_array_equal(inputs["negative_num_frames"].numpy(), [2, 3, 3, 1])
    np.testing.assert_array_equal(inputs["has_negative"].numpy(), [1.0] * 4)


def _views(name="H-MM-4"):
    import keras

    from emokeras.config import ModelConfig
    from emokeras.models import builders

    config = ModelConfig(hidden_units=8, blstm_layers=1, dropout=0.0)
    keras.utils.set_random_seed(0)
    return builders.build_model("B-ACO-1", config), builders.build_model(name, config)


# The paper's second view, H-MM-4, where both views train; the lexical view where the second is only read.
@pytest.mark.parametrize("mode,terms,view", [("joint", {"contrastive", "acoustic", "multimodal"}, "H-MM-4"),
                                             ("frozen", {"contrastive", "acoustic"}, "B-LEX"),
                                             ("teacher", {"contrastive", "kl"}, "B-LEX")])
@pytest.mark.large
def test_multiview_modes_train_the_right_views(demo_data, mode, terms, view):
    """Each mode's loss terms and trained views, on the demo corpus, on the path a GPU takes.

    Every LSTM of both views, in the training step (batch and negatives), evaluation and prediction, gets a mask cuDNN
    accepts.
    """
    import keras

    from emokeras.data import pipelines

    acoustic, second = _views(view)
    train = multiview.add_negatives(pipelines.make_dataset(demo_data, 3, "train", batch_size=64), "random").take(2)
    validation = pipelines.make_dataset(demo_data, 3, "validation").take(1)
    before = [w.copy() for w in acoustic.get_weights()], [w.copy() for w in second.get_weights()]
    with cudnn_branch() as branch:
        model = multiview.MultiViewModel(acoustic, second, mode=mode)
        compiled(model, optimizer=keras.optimizers.Adam(1e-2))
        logs = model.fit(train, validation_data=validation, epochs=1, verbose=0).history
        probabilities = model.predict(validation.map(lambda inputs, labels: inputs), verbose=0)
    assert branch.layers() == lstm_layers(acoustic) | lstm_layers(second) and not branch.unmasked()
    assert probabilities.shape[1] == 4
    assert {f"{term}_loss" for term in terms} | {"loss", "unweighted_accuracy", "val_unweighted_accuracy"} <= set(logs)
    assert not {"kl_loss", "acoustic_loss", "multimodal_loss"} - {f"{t}_loss" for t in terms} & set(logs)
    np.testing.assert_allclose(logs["loss"][0], sum(logs[f"{term}_loss"][0] for term in terms), rtol=1e-4)
    changed = [any(not np.allclose(b, a) for b, a in zip(old, view.get_weights()))
               for old, view in zip(before, (acoustic, second))]
    assert changed == [True, mode == "joint"]


def test_multiview_rejects_views_of_different_sizes():
    from emokeras.config import ModelConfig
    from emokeras.models import builders

    with pytest.raises(ValueError, match="differ in size"):
        multiview.MultiViewModel(builders.build_model("B-ACO-1", ModelConfig(hidden_units=8, blstm_layers=1)),
                                 builders.build_model("B-LEX", ModelConfig(hidden_units=6, blstm_layers=1)))
    with pytest.raises(ValueError, match="mode must be one of"):
        multiview.MultiViewModel(*_views(), mode="both")


def test_multiview_two_replicas_train_like_one(two_replicas):
    """Hand-written losses scaled by the global batch: the same loss terms and updated weights."""
    assert two_replicas["multiview_step"] == "ok", two_replicas["multiview_step"]


def test_the_l2_penalty_reaches_the_gradients():
    """One SGD step with l2 = 0 and with l2 = 10 from the same weights.

    The difference of the two updates is the penalty's own gradient, -lr * 2 * l2 * W, on every regularised kernel, and
    nothing elsewhere.
    """
    import keras

    from emokeras.config import ModelConfig
    from emokeras.models import builders

    from helpers.models import bucket_batch

    learning_rate, labels = 0.1, np.array([0, 1, 2, 3, 1])
    batch = next(iter(multiview.add_negatives(tf.data.Dataset.from_tensors((bucket_batch(), labels)))))
    changes = {}
    for l2 in (0.0, 10.0):
        config = ModelConfig(hidden_units=8, blstm_layers=1, dropout=0.0, l2=l2)
        keras.utils.set_random_seed(0)
        acoustic = builders.build_model("B-ACO-1", config, num_features=5)
        second = builders.build_model("B-LEX", config, word_dimension=6)
        model = multiview.MultiViewModel(acoustic, second, mode="joint")
        model.compile(optimizer=keras.optimizers.SGD(learning_rate))
        before = [keras.ops.convert_to_numpy(w).copy() for w in model.trainable_weights]
        model.train_step(batch)  # eagerly: the step's own code, no tracing
        changes[l2] = [keras.ops.convert_to_numpy(w) - b for w, b in zip(model.trainable_weights, before)]
    paths = [w.path for w in model.trainable_weights]
    regularised = 0
    for path, weights, with_penalty, without in zip(paths, before, changes[10.0], changes[0.0]):
        if "kernel" in path:  # every kernel carries the penalty, recurrent kernels included
            regularised += 1
            np.testing.assert_allclose(with_penalty - without, -learning_rate * 2 * 10.0 * weights, rtol=1e-4,
                                       atol=1e-6, err_msg=path)
        else:
            np.testing.assert_allclose(with_penalty - without, 0.0, atol=1e-6, err_msg=path)
    assert regularised == 2 * 5  # per view: two LSTMs' kernels and recurrent kernels, and the softmax's
