"""emokeras.models.layers: the keras-hub check, then each layer's maths against numpy and invariance to padding."""

import keras
import numpy as np

from emokeras.models.layers import (
    AcousticWordPooling,
    ContextAttention,
    GatedMultimodalUnit,
    LengthMask,
    MaskedAveragePooling,
    SpeakerFrameCompaction,
)

from helpers.layers import run_layer_test

rng = np.random.default_rng(0)


def test_masked_average_pooling_layer(tmp_path):
    run_layer_test(MaskedAveragePooling, {}, rng.standard_normal((3, 5, 4)).astype("float32"), (3, 4), tmp_path)


def test_masked_average_pooling_maths_and_padding():
    x = rng.standard_normal((2, 4, 3)).astype("float32")
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], bool)
    got = keras.ops.convert_to_numpy(MaskedAveragePooling()(x, mask=mask))
    np.testing.assert_allclose(got[0], x[0, :2].mean(0), rtol=1e-6)
    np.testing.assert_allclose(got[1], x[1].mean(0), rtol=1e-6)
    padded = np.concatenate([x, 99 * np.ones((2, 3, 3), "float32")], axis=1)
    padded_mask = np.concatenate([mask, np.zeros((2, 3), bool)], axis=1)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(MaskedAveragePooling()(padded, mask=padded_mask)), got,
                               rtol=1e-6)
    empty = MaskedAveragePooling()(x, mask=np.zeros((2, 4), bool))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(empty), 0.0)


def test_context_attention_layer(tmp_path):
    # W and b of the projection, v of the score.
    run_layer_test(ContextAttention, {"units": 6, "kernel_regularizer": "l2"},
                   rng.standard_normal((3, 5, 4)).astype("float32"), [(3, 4), (3, 5)], tmp_path,
                   expected_num_trainable_weights=3)


def test_context_attention_maths_masks_and_padding():
    layer = ContextAttention(6)
    h = rng.standard_normal((2, 5, 4)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    context, weights = (keras.ops.convert_to_numpy(t) for t in layer(h, mask=mask))
    W, b = (keras.ops.convert_to_numpy(v) for v in layer.projection.weights)
    v = keras.ops.convert_to_numpy(layer.score.weights[0])
    scores = (np.tanh(h @ W + b) @ v)[..., 0]  # e_i = vᵀ tanh(W h_i + b)
    for row in range(2):
        valid = mask[row]
        expected = np.exp(scores[row][valid] - scores[row][valid].max())
        expected /= expected.sum()
        np.testing.assert_allclose(weights[row][valid], expected, rtol=1e-5)
        assert np.all(weights[row][~valid] == 0.0)
        np.testing.assert_allclose(weights[row].sum(), 1.0, rtol=1e-6)
        np.testing.assert_allclose(context[row], (weights[row][:, None] * h[row]).sum(0), rtol=1e-5, atol=1e-6)
    padded = np.concatenate([h, 50 * np.ones((2, 2, 4), "float32")], axis=1)
    padded_mask = np.concatenate([mask, np.zeros((2, 2), bool)], axis=1)
    padded_context, padded_weights = (keras.ops.convert_to_numpy(t) for t in layer(padded, mask=padded_mask))
    np.testing.assert_allclose(padded_context, context, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(padded_weights[:, :5], weights, rtol=1e-5, atol=1e-7)
    _, none = layer(h, mask=np.zeros((2, 5), bool))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(none), 0.0)


def test_gated_multimodal_unit_layer(tmp_path):
    acoustic = rng.standard_normal((4, 3, 5)).astype("float32")
    lexical = rng.standard_normal((4, 3, 7)).astype("float32")
    # Three projections (kernel, bias) and two batch norms (γ, β trainable; moving mean and variance not).
    run_layer_test(GatedMultimodalUnit, {"units": 6}, [acoustic, lexical], [(4, 3, 6), (4, 3, 6)], tmp_path,
                   expected_num_trainable_weights=10, expected_num_non_trainable_weights=4)


def test_gated_multimodal_unit_maths_in_inference():
    layer = GatedMultimodalUnit(6)
    acoustic = rng.standard_normal((2, 3, 5)).astype("float32")
    lexical = rng.standard_normal((2, 3, 7)).astype("float32")
    h, z = (keras.ops.convert_to_numpy(t) for t in layer([acoustic, lexical], training=False))

    def dense(sub, x):
        kernel, bias = (keras.ops.convert_to_numpy(w) for w in sub.weights)
        return x @ kernel + bias

    def norm(sub, x):  # inference: moving statistics (initially 0 and 1)
        gamma, beta, mean, variance = (keras.ops.convert_to_numpy(w) for w in sub.weights)
        return gamma * (x - mean) / np.sqrt(variance + sub.epsilon) + beta

    h_a = np.tanh(norm(layer.acoustic_norm, dense(layer.acoustic_projection, acoustic)))
    h_l = np.tanh(norm(layer.lexical_norm, dense(layer.lexical_projection, lexical)))
    gate = 1 / (1 + np.exp(-dense(layer.gate, np.concatenate([acoustic, lexical], -1))))
    np.testing.assert_allclose(z, gate, rtol=1e-5)
    np.testing.assert_allclose(h, gate * h_a + (1 - gate) * h_l, rtol=1e-5, atol=1e-6)


def test_gated_multimodal_unit_batch_statistics_ignore_padding():
    layer = GatedMultimodalUnit(4)
    acoustic = rng.standard_normal((2, 3, 5)).astype("float32")
    lexical = rng.standard_normal((2, 3, 7)).astype("float32")
    mask = np.array([[1, 1, 0], [1, 1, 1]], bool)
    h, _ = layer([acoustic, lexical], mask=mask, training=True)
    pad = lambda x: np.concatenate([x, 30 * np.ones((2, 2, x.shape[-1]), "float32")], axis=1)  # noqa: E731
    padded_mask = np.concatenate([mask, np.zeros((2, 2), bool)], axis=1)
    padded_h, _ = layer([pad(acoustic), pad(lexical)], mask=padded_mask, training=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(padded_h)[:, :3][mask],
                               keras.ops.convert_to_numpy(h)[mask], rtol=1e-4, atol=1e-5)


def test_acoustic_word_pooling_layer(tmp_path):
    frames = rng.standard_normal((2, 10, 4)).astype("float32")
    spans = np.array([[[0, 3], [3, 7], [8, 10]], [[1, 2], [2, 9], [0, 0]]], "int32")
    run_layer_test(AcousticWordPooling, {}, [frames, spans], (2, 3, 4), tmp_path)


def test_acoustic_word_pooling_maths_masks_and_padding():
    frames = rng.standard_normal((2, 10, 4)).astype("float32")
    spans = np.array([[[0, 3], [3, 7], [8, 12]], [[1, 2], [2, 9], [0, 0]]], "int32")  # [8, 12) clips to 10
    layer = AcousticWordPooling()
    got = keras.ops.convert_to_numpy(layer([frames, spans]))
    expected = np.zeros((2, 3, 4), "float32")
    for b in range(2):
        for w, (start, end) in enumerate(spans[b]):
            end = min(end, 10)
            if end > start:
                expected[b, w] = frames[b, start:end].mean(0)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    mask = keras.ops.convert_to_numpy(layer.compute_mask([frames, spans]))
    np.testing.assert_array_equal(mask, [[True, True, True], [True, True, False]])
    # The mask follows the clipped spans: a span wholly past the frames pools nothing, and is masked.
    past = np.array([[[8, 12], [10, 14], [0, 0]]], "int32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.compute_mask([frames[:1], past])),
                                  [[True, False, False]])
    # Padding frames and padding words change nothing.
    padded_frames = np.concatenate([frames, 7 * np.ones((2, 5, 4), "float32")], axis=1)
    padded_spans = np.concatenate([np.minimum(spans, 10), np.zeros((2, 2, 2), "int32")], axis=1)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer([padded_frames, padded_spans]))[:, :3], got,
                               rtol=1e-6)


def test_length_mask_layer(tmp_path):
    run_layer_test(LengthMask, {}, [rng.standard_normal((3, 5, 4)).astype("float32"), np.array([5, 2, 0], "int32")],
                   (3, 5, 4), tmp_path)



def test_speaker_frame_compaction_layer(tmp_path):
    frames = rng.standard_normal((2, 10, 4)).astype("float32")
    spans = np.array([[[0, 3], [5, 7], [0, 0]], [[2, 4], [4, 9], [0, 0]]], "int32")
    run_layer_test(SpeakerFrameCompaction, {}, [frames, np.array([10, 8], "int32"), spans],
                   [(2, None, 4), (2,), (2, 3, 2)], tmp_path)


def test_speaker_frame_compaction_by_hand():
    frames = np.arange(18, dtype="float32").reshape(3, 6, 1)  # row b, frame t holds 6b + t
    lengths = np.array([3, 6, 6], "int32")
    # Row 0: overlapping spans, one past its length (3 frames); row 1: a span ending at the last frame and one
    # running past the frames; row 2: padding words only.
    spans = np.array([[[1, 3], [2, 4], [0, 0]], [[4, 6], [5, 9], [0, 0]], [[0, 0], [0, 0], [0, 0]]], "int32")
    speaker_frames, counts, remapped = (keras.ops.convert_to_numpy(t)
                                        for t in SpeakerFrameCompaction()([frames, lengths, spans]))
    np.testing.assert_array_equal(speaker_frames[..., 0], [[1, 2], [10, 11], [0, 0]])
    np.testing.assert_array_equal(counts, [2, 2, 0])
    np.testing.assert_array_equal(remapped, [[[0, 2], [1, 2], [0, 0]], [[0, 2], [1, 2], [0, 0]],
                                             [[0, 0], [0, 0], [0, 0]]])


def compaction_loop(frames, lengths, spans):
    """The speaker frames of each row in order, and each span's frames on that axis, by plain loops."""
    rows, remapped = [], np.zeros_like(spans)
    for b in range(len(frames)):
        covered = np.zeros(frames.shape[1], bool)
        for start, end in spans[b]:
            covered[max(start, 0):min(end, lengths[b])] = True
        kept = np.flatnonzero(covered)
        rows.append(frames[b, kept])
        for w, (start, end) in enumerate(spans[b]):
            inside = [np.searchsorted(kept, t) for t in range(start, min(end, lengths[b])) if covered[t]]
            remapped[b, w] = (inside[0], inside[-1] + 1) if inside else (0, 0)
    return rows, remapped


def test_speaker_frame_compaction_against_a_loop():
    frames = rng.standard_normal((6, 40, 3)).astype("float32")
    lengths = np.array([40, 33, 17, 40, 5, 26], "int32")
    spans = np.zeros((6, 5, 2), "int32")
    for b in range(6):
        starts = np.sort(rng.choice(np.arange(lengths[b]), size=min(4, lengths[b] - 1), replace=False))
        for w, start in enumerate(starts[: rng.integers(1, 5)]):
            spans[b, w] = (start, start + rng.integers(1, 6))  # some overlap, some run past the length
    speaker_frames, counts, remapped = (keras.ops.convert_to_numpy(t)
                                        for t in SpeakerFrameCompaction()([frames, lengths, spans]))
    rows, want_spans = compaction_loop(frames, lengths, spans)
    assert speaker_frames.shape[1] == max(len(row) for row in rows)
    np.testing.assert_array_equal(counts, [len(row) for row in rows])
    for b, row in enumerate(rows):
        np.testing.assert_array_equal(speaker_frames[b, : len(row)], row)
        np.testing.assert_array_equal(speaker_frames[b, len(row):], 0.0)
        # A span keeps its frames: pooling a span on either axis reads the same frames.
        for w, (start, end) in enumerate(remapped[b]):
            if end > start:
                original = [t for t in range(spans[b, w, 0], min(spans[b, w, 1], lengths[b]))]
                np.testing.assert_array_equal(speaker_frames[b, start:end], frames[b, original])
    np.testing.assert_array_equal(remapped, want_spans)
