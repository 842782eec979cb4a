"""Word spans as the layers read them: one definition of how a span is clipped."""

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
