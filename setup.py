"""emokeras: multimodal and multi-view emotion recognition (Aguilar et al., ACL 2019) in TF2 / Keras 3."""

import os
import re

from setuptools import find_packages, setup

# The one version string is emokeras.__version__.
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "emokeras", "__init__.py"), encoding="utf-8") as f:
    VERSION = re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)

setup(
    name="emokeras",
    version=VERSION,
    description="Multimodal and multi-view emotion recognition (Aguilar et al., ACL 2019) in TensorFlow 2 / Keras 3",
    packages=find_packages(include=["emokeras", "emokeras.*"]),
    python_requires=">=3.10",
    install_requires=[
        "tensorflow==2.21.0",
        "keras==3.15.1",
        "tensorflow-hub==0.16.1",
        "tf-keras==2.21.0",  # tensorflow_hub imports tf_keras; Keras 3 cannot serve it
        "keras-tuner==1.4.8",
        "opensmile==2.6.0",
        "audiofile==1.6.1",  # wav reading (openSMILE's own audio reader)
        "audresample==1.3.6",  # resampling to 16 kHz (openSMILE's own resampler)
        "numpy==2.4.6",
        # TensorFlow, Keras and ONNX import it in every process: 0.7.0's extension takes about 1 s of CPU to import,
        # 0.6.0's 0.015 s (docs/benchmarks.md).
        "ml_dtypes==0.6.0",
        "scipy==1.17.1",  # the paired tests and intervals of emokeras.compare (permutation, Wilcoxon, t)
        "pandas==3.1.1",
        "absl-py==2.5.1",
        "tensorboard==2.21.0",
        "matplotlib==3.11.2",  # TensorBoard figures: confusion matrices, the paper's Figure 3
        # Deployment: acoustic-only exports also as model.onnx (converted from the SavedModel), served without
        # TensorFlow. Keras' own ONNX export turns the Normalization statistics into graph inputs.
        "tf2onnx==1.17.0",
        "onnx==1.23.2",
        "onnxruntime==1.32.0",
        "soundfile==0.14.0",  # block-wise reading for speech segmentation (audiofile reads through it already)
    ],
    # pytest-xdist: the suite in two processes, which keeps both cores busy (docs/benchmarks.md).
    extras_require={"test": ["pytest==9.0.3", "pytest-xdist==3.8.0", "ruff==0.17.6"]},
    entry_points={"console_scripts": ["emokeras = emokeras.__main__:main"]},
)
