"""emokeras' models as they were before speaker-frame compaction: the reference the compacted models must equal.

Speaker-frame models (B-ACO-2, B-MM-2, H-ACO-1, H-MM-1..4) used to pass the
speaker-frame mask (frames covered by a word span, silences masked inside
the row) to the first BLSTM, and pool acoustic words over the original time
axis. That interior mask fails Keras' cuDNN assertion on a GPU, but it is the
plain statement of what the models compute, so tests and
`benchmarks/speaker_frames.py` build it to compare against. Weighted layers
keep their names, so weights move between the two by `set_weights` or a
weights file.
"""

from unittest import mock

import keras
import tensorflow as tf

from emokeras.models import builders
from emokeras.models.layers.spans import covered_frames


class SpeakerFrameMask(keras.layers.Layer):
    """Bool `[batch, frames]`: the frame is valid (its mask) and inside a word span."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        frames, spans = inputs
        frames_mask = mask[0] if isinstance(mask, (list, tuple)) else mask
        return covered_frames(spans, tf.shape(frames)[0], tf.shape(frames)[1], frames_mask)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_spec(self, inputs, mask=None):
        return keras.KerasTensor(inputs[0].shape[:2], dtype="bool")


class _MaskedBuilder(builders._Builder):
    def frame_outputs(self, speaker_frames_only: bool):
        x = builders.LengthMask(name="frame_mask")([self.normalized_frames(), self.inputs["num_frames"]])
        if not speaker_frames_only:
            return self.blstm_stack(x, "acoustic"), self.inputs.get("word_spans")
        mask = SpeakerFrameMask(name="speaker_frame_mask")([x, self.inputs["word_spans"]])
        for index in range(1, self.config.blstm_layers + 1):
            lstm = keras.layers.LSTM(self.config.hidden_units // 2, return_sequences=True,
                                     kernel_regularizer=self.regularizer, recurrent_regularizer=self.regularizer)
            blstm = keras.layers.Bidirectional(lstm, name=f"acoustic_blstm_{index}")
            x = blstm(x, mask=mask) if index == 1 else blstm(x)  # later layers inherit the interior mask
            x = keras.layers.Dropout(self.config.dropout, name=f"acoustic_dropout_{index}")(x)
        return x, self.inputs["word_spans"]


def build_masked_reference(name, config=None, **kwargs):
    """`emokeras.models.builders.build_model(name, config, **kwargs)` with the speaker frames masked in place."""
    with mock.patch.object(builders, "_Builder", _MaskedBuilder):
        return builders.build_model(name, config, **kwargs)
