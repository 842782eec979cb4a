"""emokeras' custom Keras layers, one per file, each registered for serialisation."""

from emokeras.models.layers.acoustic_word_pooling import AcousticWordPooling
from emokeras.models.layers.context_attention import ContextAttention
from emokeras.models.layers.gated_multimodal_unit import GatedMultimodalUnit
from emokeras.models.layers.length_mask import LengthMask
from emokeras.models.layers.masked_average_pooling import MaskedAveragePooling
from emokeras.models.layers.speaker_frame_compaction import SpeakerFrameCompaction

__all__ = ["AcousticWordPooling", "ContextAttention", "GatedMultimodalUnit", "LengthMask", "MaskedAveragePooling",
           "SpeakerFrameCompaction"]
