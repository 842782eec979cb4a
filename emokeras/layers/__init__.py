"""emokeras' custom Keras layers, one per file, each registered for serialisation."""

from emokeras.layers.acoustic_word_pooling import AcousticWordPooling
from emokeras.layers.context_attention import ContextAttention
from emokeras.layers.gated_multimodal_unit import GatedMultimodalUnit
from emokeras.layers.length_mask import LengthMask
from emokeras.layers.masked_average_pooling import MaskedAveragePooling
from emokeras.layers.speaker_frame_compaction import SpeakerFrameCompaction

__all__ = ["AcousticWordPooling", "ContextAttention", "GatedMultimodalUnit", "LengthMask", "MaskedAveragePooling",
           "SpeakerFrameCompaction"]
