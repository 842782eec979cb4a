"""Every model of the paper's Table 2 (and the multi-view student), by its paper name.

`build_model("H-MM-4", ModelConfig())` returns a Keras functional model on a
dict of raw inputs (the keys of `MODEL_INPUTS[name]`, as `emokeras.data`
yields them) and returning class probabilities `[batch, 4]`. Frames are
z-normalised inside the model (DESIGN.md, Frames), so a saved model takes raw
openSMILE frames.

Layer names are a contract the rest of emokeras reads:
  - `probabilities`: the softmax layer;
  - `classifier_dropout`: its input is the utterance representation (the
    hidden vector `h` that multi-view learning compares across views);
  - `context_attention`, `gated_multimodal_unit`: their second outputs are
    the attention weights and the GMU gate (`inspection_model`).
"""

from __future__ import annotations

import keras
import numpy as np

from emokeras.config import ModelConfig
from emokeras.features.acoustic import NUM_FEATURES
from emokeras.labels import NUM_CLASSES
from emokeras.layers import (AcousticWordPooling, ContextAttention, GatedMultimodalUnit, LengthMask,
                             MaskedAveragePooling, SpeakerFrameCompaction)


_FRAMES = ("frames", "num_frames")
_WORDS = ("word_vectors", "num_words")
_SPANS = ("word_spans",)

# Each model's inputs, in the order the serving signature lists them.
MODEL_INPUTS: dict[str, tuple[str, ...]] = {
    "B-ACO-1": _FRAMES,
    "B-ACO-2": _FRAMES + _SPANS,
    "B-LEX": _WORDS,
    "B-MM-1": _FRAMES + _WORDS,
    "B-MM-2": _FRAMES + _WORDS + _SPANS,
    "H-ACO-1": _FRAMES + _SPANS,
    "H-MM-1": _FRAMES + _WORDS + _SPANS,
    "H-MM-2": _FRAMES + _WORDS + _SPANS,
    "H-MM-3": _FRAMES + _WORDS + _SPANS,
    "H-MM-4": _FRAMES + _WORDS + _SPANS,
    "B-ACO-1+attention": _FRAMES,
}
MODEL_NAMES = tuple(MODEL_INPUTS)


def reads_words(name: str) -> bool:
    """Whether the model needs a transcript (word vectors) at inference."""
    return "word_vectors" in MODEL_INPUTS[check_name(name)]


def check_name(name: str) -> str:
    """`name` if it names a model; else a ValueError listing the names."""
    if name not in MODEL_INPUTS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    return name


def input_specs(num_features: int = NUM_FEATURES, word_dimension: int = 256) -> dict[str, tuple[tuple, str]]:
    """Per input name, its shape without the batch axis and its dtype."""
    return {
        "frames": ((None, num_features), "float32"),
        "num_frames": ((), "int32"),
        "word_vectors": ((None, word_dimension), "float32"),
        "num_words": ((), "int32"),
        "word_spans": ((None, 2), "int32"),
    }


class _Builder:
    """Builds the branches the models share, with one configuration and unique layer names."""

    def __init__(self, config: ModelConfig, inputs: dict, frame_mean, frame_variance):
        self.config = config
        self.inputs = inputs
        self.frame_mean = frame_mean
        self.frame_variance = frame_variance
        self.regularizer = keras.regularizers.L2(config.l2) if config.l2 else None

    def blstm_stack(self, x, prefix: str):
        """`blstm_layers` BLSTMs with dropout over `x`, which carries a right-padded mask (cuDNN needs one)."""
        for index in range(1, self.config.blstm_layers + 1):
            lstm = keras.layers.LSTM(self.config.hidden_units // 2, return_sequences=True,
                                     kernel_regularizer=self.regularizer, recurrent_regularizer=self.regularizer)
            x = keras.layers.Bidirectional(lstm, name=f"{prefix}_blstm_{index}")(x)
            x = keras.layers.Dropout(self.config.dropout, name=f"{prefix}_dropout_{index}")(x)
        return x

    def frame_outputs(self, speaker_frames_only: bool):
        """Frame-level BLSTM outputs over all frames (B-ACO-1), or over the speaker frames moved to the front
        of each row (B-ACO-2, H-*), with the word spans on that axis (else the input spans)."""
        x = keras.layers.Normalization(axis=-1, mean=self.frame_mean, variance=self.frame_variance,
                                       name="frame_normalization")(self.inputs["frames"])
        lengths, spans = self.inputs["num_frames"], self.inputs.get("word_spans")
        if speaker_frames_only:
            x, lengths, spans = SpeakerFrameCompaction(name="speaker_frame_compaction")([x, lengths, spans])
        x = LengthMask(name="frame_mask")([x, lengths])
        return self.blstm_stack(x, "acoustic"), spans

    def lexical_words(self):
        """B-LEX's word-level BLSTM outputs: the lexical word representations."""
        x = LengthMask(name="word_mask")([self.inputs["word_vectors"], self.inputs["num_words"]])
        return self.blstm_stack(x, "lexical")

    def acoustic_words(self):
        """H-ACO's acoustic words: speaker-frame BLSTM outputs pooled per word span (§3.2)."""
        outputs, spans = self.frame_outputs(True)
        return AcousticWordPooling(name="acoustic_word_pooling")([outputs, spans])

    def classifier(self, representation):
        x = keras.layers.Dropout(self.config.dropout, name="classifier_dropout")(representation)
        return keras.layers.Dense(NUM_CLASSES, activation="softmax", kernel_regularizer=self.regularizer,
                                  name="probabilities")(x)

    def attention(self, sequence):
        context, _ = ContextAttention(self.config.hidden_units, kernel_regularizer=self.regularizer,
                                      name="context_attention")(sequence)
        return context


def _pool(sequence, name: str):
    return MaskedAveragePooling(name=name)(sequence)


def _baseline(builder: _Builder, name: str):
    speaker_frames_only = name.endswith("-2")
    if name.startswith("B-ACO-1+attention"):
        return builder.attention(builder.frame_outputs(False)[0])
    if name.startswith("B-ACO"):
        return _pool(builder.frame_outputs(speaker_frames_only)[0], "acoustic_pooling")
    if name == "B-LEX":
        return _pool(builder.lexical_words(), "lexical_pooling")
    acoustic = _pool(builder.frame_outputs(speaker_frames_only)[0], "acoustic_pooling")
    lexical = _pool(builder.lexical_words(), "lexical_pooling")
    return keras.layers.Concatenate(name="modality_concatenation")([acoustic, lexical])


def _hierarchical(builder: _Builder, name: str):
    acoustic_words = builder.acoustic_words()
    if name == "H-ACO-1":
        return _pool(acoustic_words, "word_pooling")
    lexical_words = builder.lexical_words()
    if name in ("H-MM-2", "H-MM-4"):
        words, _ = GatedMultimodalUnit(builder.config.hidden_units, kernel_regularizer=builder.regularizer,
                                       name="gated_multimodal_unit")([acoustic_words, lexical_words])
    else:
        words = keras.layers.Concatenate(name="modality_concatenation")([acoustic_words, lexical_words])
    words = builder.blstm_stack(words, "multimodal")
    if name in ("H-MM-3", "H-MM-4"):
        return builder.attention(words)
    return _pool(words, "word_pooling")


def build_model(name: str, config: ModelConfig | None = None, *, num_features: int = NUM_FEATURES,
                word_dimension: int = 256, frame_mean=None, frame_variance=None) -> keras.Model:
    """Builds the model called `name` in the paper's Table 2 (or `B-ACO-1+attention`).

    Args:
      name: one of `MODEL_NAMES`.
      config: sizes and regularisation; the paper's defaults if omitted.
      num_features: frame features (130 for ComParE_2016 LLD + deltas).
      word_dimension: the word vectors' size (the encoder's, from the manifest).
      frame_mean, frame_variance: `[num_features]` z-normalisation statistics
        of the fold's training frames (`emokeras.data.frame_statistics`);
        zeros and ones (no normalisation) if omitted.

    Returns:
      An uncompiled `keras.Model` named `name`, from a dict of the inputs in
      `MODEL_INPUTS[name]` to probabilities `[batch, 4]`.
    """
    check_name(name)
    config = config or ModelConfig()
    if config.hidden_units % 2:
        raise ValueError(f"hidden_units must be even (two BLSTM directions), got {config.hidden_units}")
    specs = input_specs(num_features, word_dimension)
    inputs = {key: keras.Input(shape=specs[key][0], dtype=specs[key][1], name=key) for key in MODEL_INPUTS[name]}
    frame_mean = np.zeros(num_features, "float32") if frame_mean is None else np.asarray(frame_mean, "float32")
    frame_variance = (np.ones(num_features, "float32") if frame_variance is None
                      else np.asarray(frame_variance, "float32"))
    builder = _Builder(config, inputs, frame_mean, frame_variance)
    representation = _hierarchical(builder, name) if name.startswith("H-") else _baseline(builder, name)
    # TensorFlow name scopes do not allow "+".
    return keras.Model(inputs, builder.classifier(representation), name=name.replace("+", "-"))


def select_inputs(model: keras.Model, inputs: dict) -> dict:
    """The entries of a pipeline's `inputs` dict that `model` reads."""
    return {key: inputs[key] for key in model.input}


def inspection_model(model: keras.Model) -> keras.Model:
    """The same weights, returning a dict: `probabilities`, and where the model has them,
    `attention_weights` `[batch, words]` and `modality_gate` `[batch, words, units]`
    (the acoustic share `z` of Eq. 1; the paper's Figure 3)."""
    outputs = {"probabilities": model.output}
    names = {layer.name for layer in model.layers}
    if "context_attention" in names:
        outputs["attention_weights"] = model.get_layer("context_attention").output[1]
    if "gated_multimodal_unit" in names:
        outputs["modality_gate"] = model.get_layer("gated_multimodal_unit").output[1]
    return keras.Model(model.input, outputs, name=f"{model.name}-inspection")


def representation_model(model: keras.Model) -> keras.Model:
    """The same weights, returning the utterance representation `h` (the classifier's input)."""
    return keras.Model(model.input, model.get_layer("classifier_dropout").input, name=f"{model.name}-representation")
