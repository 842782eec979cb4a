"""Word spans as the layers read them: how a span is clipped, and which frames the spans cover."""

import tensorflow as tf


def clipped_spans(spans, num_frames):
    """`(starts, ends)`, int32 `[batch, words]`: `[start, end)` spans clipped to `[0, num_frames]`.

    A span past the frames is cut at the last frame; a padding span `[0, 0)`
    stays empty, and so does any span whose start is not before its end.
    """
    spans = tf.cast(spans, tf.int32)
    ends = tf.clip_by_value(spans[..., 1], 0, num_frames)
    starts = tf.clip_by_value(spans[..., 0], 0, ends)
    return starts, ends


def covered_frames(spans, batch, num_frames, frames_mask=None):
    """Bool `[batch, num_frames]`: the frame lies inside some word span (and inside `frames_mask`, if given).

    Without a `[words, frames]` matrix: each span adds +1 at its start and −1
    at its end, and a frame is covered where the running sum is positive
    (overlapping spans are fine).
    """
    starts, ends = clipped_spans(spans, num_frames)
    rows = tf.broadcast_to(tf.range(batch)[:, None], tf.shape(starts))
    # Edges live in [batch, frames + 1] so a span ending at the last frame has somewhere to put its -1.
    indices = tf.concat([tf.stack([rows, starts], -1), tf.stack([rows, ends], -1)], axis=1)
    signs = tf.concat([tf.ones_like(starts), -tf.ones_like(ends)], axis=1)
    edges = tf.scatter_nd(tf.reshape(indices, [-1, 2]), tf.reshape(signs, [-1]), [batch, num_frames + 1])
    covered = tf.cumsum(edges, axis=1)[:, :-1] > 0
    return covered if frames_mask is None else tf.logical_and(covered, tf.cast(frames_mask, tf.bool))
