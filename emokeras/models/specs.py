"""The paper's models as data.

One `ModelSpec` per name of Tables 2 and 3, which `emokeras.models.builders.build_model` builds from. No TensorFlow
here: commands, configuration and the recogniser read these without loading it.

Layer names are a contract the rest of emokeras reads (`emokeras.models.builders`, multi-view learning, inspection):
`PROBABILITIES` is the softmax; the input of `CLASSIFIER_DROPOUT` is the utterance representation `h` that
multi-view learning compares across views; the second outputs of `CONTEXT_ATTENTION` and
`GATED_MULTIMODAL_UNIT` are the attention weights and the GMU gate.

An exported model folder's layout is a contract too: `emokeras.serving.export` writes it, and the recogniser, which must
not load TensorFlow on its ONNX path, reads it (`SIGNATURE`, `METADATA`, `ONNX_MODEL`).
"""

from __future__ import annotations

import dataclasses
import os

# The paper's four classes: the default of models built without a prepared corpus (a prepared corpus's classes
# are in its manifest: `emokeras.data.tfrecords.class_names`).
CLASS_NAMES = ("anger", "happiness", "neutral", "sadness")
NUM_CLASSES = len(CLASS_NAMES)

PROBABILITIES = "probabilities"
CLASSIFIER_DROPOUT = "classifier_dropout"
CONTEXT_ATTENTION = "context_attention"
GATED_MULTIMODAL_UNIT = "gated_multimodal_unit"

FRAME_INPUTS = ("frames", "num_frames")
WORD_INPUTS = ("word_vectors", "num_words")
SPAN_INPUTS = ("word_spans",)

SIGNATURE = "serving_default"
METADATA = os.path.join("assets.extra", "emokeras.json")
ONNX_MODEL = "model.onnx"


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What a model reads and how it is put together.

    Attributes:
      name: the paper's name.
      frames: "all" frames, only the "speaker" frames (those inside word spans), or None (no acoustic branch).
      words: whether it reads word vectors (a transcript).
      hierarchical: acoustic words (frame outputs pooled per word span) and word-level modelling (§3.2),
        rather than one utterance vector per modality.
      fusion: how two modalities meet: "concatenation" or "gmu" (the gated multimodal unit); None for one.
      pooling: the utterance's summary of its last sequence: "average" or "attention" (context attention).
    """

    name: str
    frames: str | None
    words: bool = False
    hierarchical: bool = False
    fusion: str | None = None
    pooling: str = "average"

    @property
    def inputs(self) -> tuple[str, ...]:
        """The model's inputs, in the order the serving signature lists them."""
        spans = self.frames == "speaker" or self.hierarchical
        return ((FRAME_INPUTS if self.frames else ()) + (WORD_INPUTS if self.words else ())
                + (SPAN_INPUTS if spans else ()))

    @property
    def needs_timings(self) -> bool:
        """Whether it reads word spans (speaker frames, acoustic words): the corpus needs word timings."""
        return "word_spans" in self.inputs

    @property
    def needs_transcript(self) -> bool:
        """Whether inference needs word timings (speaker frames, acoustic words) or word vectors."""
        return self.words or "word_spans" in self.inputs

    @property
    def modality(self) -> str:
        """What the model reads, as the paper's tables say it."""
        if self.words and self.frames:
            return "Multimodal"
        return "Lexical" if self.words else "Acoustics"


_SPECS = (
    ModelSpec("B-ACO-1", frames="all"),
    ModelSpec("B-ACO-2", frames="speaker"),
    ModelSpec("B-LEX", frames=None, words=True),
    ModelSpec("B-MM-1", frames="all", words=True, fusion="concatenation"),
    ModelSpec("B-MM-2", frames="speaker", words=True, fusion="concatenation"),
    ModelSpec("H-ACO-1", frames="speaker", hierarchical=True),
    ModelSpec("H-MM-1", frames="speaker", words=True, hierarchical=True, fusion="concatenation"),
    ModelSpec("H-MM-2", frames="speaker", words=True, hierarchical=True, fusion="gmu"),
    ModelSpec("H-MM-3", frames="speaker", words=True, hierarchical=True, fusion="concatenation", pooling="attention"),
    ModelSpec("H-MM-4", frames="speaker", words=True, hierarchical=True, fusion="gmu", pooling="attention"),
    ModelSpec("B-ACO-1+attention", frames="all", pooling="attention"),
)
MODEL_SPECS: dict[str, ModelSpec] = {spec.name: spec for spec in _SPECS}
MODEL_NAMES = tuple(MODEL_SPECS)
# Multi-view students: models that need nothing but the audio, so they deploy without a transcript.
ACOUSTIC_ONLY = tuple(name for name, spec in MODEL_SPECS.items() if not spec.needs_transcript)


def models_for(has_words: bool, has_timings: bool) -> tuple[str, ...]:
    """The models a corpus with (or without) words and word timings can train."""
    return tuple(name for name, spec in MODEL_SPECS.items()
                 if (has_words or not spec.words) and (has_timings or not spec.needs_timings))


def missing_for(name: str, has_words: bool, has_timings: bool) -> str | None:
    """What model `name` needs that a corpus lacks ("word timings (alignments)", "a transcript"), or None."""
    spec = model_spec(name)
    if spec.needs_timings and not has_timings:
        return "word timings (alignments)"
    if spec.words and not has_words:
        return "a transcript (words) for every utterance"
    return None


def model_spec(name: str) -> ModelSpec:
    """The spec of `name`; a ValueError listing the names if there is none."""
    if name not in MODEL_SPECS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    return MODEL_SPECS[name]
