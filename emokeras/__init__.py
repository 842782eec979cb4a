"""emokeras: multimodal and multi-view emotion recognition (Aguilar et al., ACL 2019).

Importing the package does not import TensorFlow: openSMILE worker processes
import `emokeras.features.acoustic`, and constructing `opensmile.Smile` after
TensorFlow is loaded in the same process aborts.
"""

__version__ = "0.1.0"
