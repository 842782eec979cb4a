"""emokeras: multimodal and multi-view emotion recognition (Aguilar et al., ACL 2019).

What a user builds with, importable from the package:

    from emokeras import TrainConfig, Experiment     # train one run: Experiment(TrainConfig(fold=3)).run()
    from emokeras import build_model, MultiViewModel  # Table 2's models by name; multi-view training
    from emokeras import Recognizer                  # emotions over recordings from an export

Names resolve lazily (PEP 562), on first use: `import emokeras` imports no
TensorFlow. That keeps the package safe where openSMILE runs (constructing
`opensmile.Smile` in a process that has loaded TensorFlow aborts it), and lets
the ONNX recogniser run without TensorFlow installed.
"""

import importlib

__version__ = "0.1.0"

# Public name -> the module that defines it. The command modules (train, prepare, predict, tune, crossval) are
# not here: their names are the modules themselves.
_EXPORTS = {
    # Configuration
    "TrainConfig": "emokeras.config",
    "PrepareConfig": "emokeras.config",
    "DataConfig": "emokeras.config",
    "ModelConfig": "emokeras.config",
    "MultiViewConfig": "emokeras.config",
    "TuneConfig": "emokeras.config",
    # Data
    "prepare_corpus": "emokeras.data.preparation",
    "make_dataset": "emokeras.data.pipelines",
    # Models and layers
    "MODEL_NAMES": "emokeras.models.specs",
    "ModelSpec": "emokeras.models.specs",
    "build_model": "emokeras.models.builders",
    "MultiViewModel": "emokeras.models.multiview",
    "AcousticWordPooling": "emokeras.models.layers",
    "ContextAttention": "emokeras.models.layers",
    "GatedMultimodalUnit": "emokeras.models.layers",
    "LengthMask": "emokeras.models.layers",
    "MaskedAveragePooling": "emokeras.models.layers",
    "SpeakerFrameCompaction": "emokeras.models.layers",
    "UnweightedAccuracy": "emokeras.models.metrics",
    # Training
    "Experiment": "emokeras.training.experiment",
    "cross_validate": "emokeras.training.cross_validation",
    "search_hyperparameters": "emokeras.training.tuning",
    # Deployment
    "export_saved_model": "emokeras.serving.export",
    "Recognizer": "emokeras.serving.recognizer",
    "CLASS_NAMES": "emokeras.models.specs",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # resolved once
        return value
    raise AttributeError(f"module 'emokeras' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
