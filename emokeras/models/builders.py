"""Every model of the paper's Table 2 (and the multi-view student), built from its spec (`emokeras.models.specs`).

`build_model("H-MM-4", ModelConfig())` returns a Keras functional model on a
dict of raw inputs (`model_spec(name).inputs`, as `emokeras.data.pipelines` yields
them) and returning class probabilities `[batch, classes]`. Frames are
z-normalised inside the model (ARCHITECTURE.md, Frames), so a saved model
takes raw openSMILE frames. Layer names follow the contract in
`emokeras.models.specs` (`PROBABILITIES`, `CLASSIFIER_DROPOUT`, ...).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from emokeras.config import ModelConfig
from emokeras.data.features.acoustic import NUM_FEATURES
from emokeras.models.layers import (
    AcousticWordPooling,
    ContextAttention,
    GatedMultimodalUnit,
    LengthMask,
    MaskedAveragePooling,
    SpeakerFrameCompaction,
)
from emokeras.models.specs import (
    CLASSIFIER_DROPOUT,
    CONTEXT_ATTENTION,
    GATED_MULTIMODAL_UNIT,
    MODEL_NAMES,
    NUM_CLASSES,
    PROBABILITIES,
    ModelSpec,
    model_spec,
)

__all__ = ["MODEL_NAMES", "build_model", "input_specs", "inspection_model", "representation_model", "select_inputs"]


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

    def __init__(self, config: ModelConfig, inputs: dict, frame_mean, frame_variance, num_classes: int):
        self.config = config
        self.num_classes = num_classes
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

    def normalized_frames(self):
        """The frames z-normalised with the fold's training statistics (inside the model: exports take raw frames)."""
        # In float32 under any policy: raw openSMILE values (pitch in Hz, energies) lose their digits in 16 bits.
        return keras.layers.Normalization(axis=-1, mean=self.frame_mean, variance=self.frame_variance,
                                          name="frame_normalization", dtype="float32")(self.inputs["frames"])

    def frame_outputs(self, speaker_frames_only: bool):
        """Frame-level BLSTM outputs over all frames (B-ACO-1).

        Or over the speaker frames moved to the front of each row (B-ACO-2, H-*), with the word spans on that axis (else
        the input spans).
        """
        x = self.normalized_frames()
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
        x = keras.layers.Dropout(self.config.dropout, name=CLASSIFIER_DROPOUT)(representation)
        # float32 under any policy: the softmax, the losses and the exported probabilities.
        return keras.layers.Dense(self.num_classes, activation="softmax", kernel_regularizer=self.regularizer,
                                  name=PROBABILITIES, dtype="float32")(x)

    def attention(self, sequence):
        context, _ = ContextAttention(self.config.hidden_units, kernel_regularizer=self.regularizer,
                                      name=CONTEXT_ATTENTION)(sequence)
        return context

    def summary(self, sequence, pooling: str, name: str):
        """The utterance's vector from its last sequence: context attention, or the average over its steps."""
        return self.attention(sequence) if pooling == "attention" else MaskedAveragePooling(name=name)(sequence)

    def fuse(self, acoustic, lexical, fusion: str):
        if fusion == "gmu":
            fused, _ = GatedMultimodalUnit(self.config.hidden_units, kernel_regularizer=self.regularizer,
                                           name=GATED_MULTIMODAL_UNIT)([acoustic, lexical])
            return fused
        return keras.layers.Concatenate(name="modality_concatenation")([acoustic, lexical])

    def representation(self, spec: ModelSpec):
        """The utterance representation `h` of `spec`'s model (the classifier's input)."""
        if spec.hierarchical:  # H-*: acoustic words, fused with lexical words and modelled per word (§3.2-3.3)
            words = self.acoustic_words()
            if spec.words:
                words = self.blstm_stack(self.fuse(words, self.lexical_words(), spec.fusion), "multimodal")
            return self.summary(words, spec.pooling, "word_pooling")
        branches = []  # B-*: one vector per modality, concatenated (§4.2)
        if spec.frames:
            branches.append(self.summary(self.frame_outputs(spec.frames == "speaker")[0], spec.pooling,
                                         "acoustic_pooling"))
        if spec.words:
            branches.append(self.summary(self.lexical_words(), "average", "lexical_pooling"))
        return branches[0] if len(branches) == 1 else self.fuse(*branches, spec.fusion)


def build_model(name: str, config: ModelConfig | None = None, *, num_features: int = NUM_FEATURES,
                word_dimension: int = 256, frame_mean=None, frame_variance=None,
                num_classes: int = NUM_CLASSES) -> keras.Model:
    """Builds the model called `name` in the paper's Table 2 (or `B-ACO-1+attention`).

    Args:
      name: one of `MODEL_NAMES`.
      config: sizes and regularisation; the paper's defaults if omitted.
      num_features: frame features (130 for ComParE_2016 LLD + deltas).
      word_dimension: the word vectors' size (the encoder's, from the manifest).
      frame_mean: `[num_features]` mean of the fold's training frames
        (`emokeras.data.pipelines.frame_statistics`), for z-normalisation; zeros if omitted.
      frame_variance: `[num_features]` their variance; ones if omitted.
      num_classes: the classes it tells apart (the prepared corpus's; the paper's four by default).

    Returns:
      An uncompiled `keras.Model` named `name`, from a dict of the inputs in
      `model_spec(name).inputs` to probabilities `[batch, num_classes]`.
    """
    spec = model_spec(name)
    config = config or ModelConfig()
    if config.hidden_units % 2:
        raise ValueError(f"hidden_units must be even (two BLSTM directions), got {config.hidden_units}")
    specs = input_specs(num_features, word_dimension)
    inputs = {key: keras.Input(shape=specs[key][0], dtype=specs[key][1], name=key) for key in spec.inputs}
    frame_mean = np.zeros(num_features, "float32") if frame_mean is None else np.asarray(frame_mean, "float32")
    frame_variance = (np.ones(num_features, "float32") if frame_variance is None
                      else np.asarray(frame_variance, "float32"))
    builder = _Builder(config, inputs, frame_mean, frame_variance, num_classes)
    # TensorFlow name scopes do not allow "+".
    return keras.Model(inputs, builder.classifier(builder.representation(spec)), name=name.replace("+", "-"))


def select_inputs(model: keras.Model, inputs: dict) -> dict:
    """The entries of a pipeline's `inputs` dict that `model` reads."""
    return {key: inputs[key] for key in model.input}


def inference_function(model: keras.Model, element_spec):
    """`model(inputs, training=False)` for a pipeline's batches, traced once for any of them.

    `element_spec`: the batched `(inputs, label)` dataset's; call the function with `select_inputs(model, inputs)`.
    Traced for the first batch's shapes instead, it would be traced again as batch sizes and lengths vary.
    """
    return tf.function(lambda inputs: model(inputs, training=False),
                       input_signature=[select_inputs(model, element_spec[0])], autograph=False)


def inspection_model(model: keras.Model) -> keras.Model:
    """The same weights, returning a dict.

    `probabilities`, and where the model has them, `attention_weights` `[batch, words]` and `modality_gate` `[batch,
    words, units]` (the acoustic share `z` of Eq. 1; the paper's Figure 3).
    """
    outputs = {"probabilities": model.output}
    names = {layer.name for layer in model.layers}
    if CONTEXT_ATTENTION in names:
        outputs["attention_weights"] = model.get_layer(CONTEXT_ATTENTION).output[1]
    if GATED_MULTIMODAL_UNIT in names:
        outputs["modality_gate"] = model.get_layer(GATED_MULTIMODAL_UNIT).output[1]
    return keras.Model(model.input, outputs, name=f"{model.name}-inspection")


def representation_model(model: keras.Model) -> keras.Model:
    """The same weights, returning the utterance representation `h` (the classifier's input)."""
    return keras.Model(model.input, model.get_layer(CLASSIFIER_DROPOUT).input, name=f"{model.name}-representation")
