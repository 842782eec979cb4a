"""The public API: `import emokeras` loads no TensorFlow, and every public name resolves to what it says."""

import subprocess
import sys


def test_import_emokeras_loads_no_tensorflow_and_every_public_name_resolves():
    script = ("import sys, emokeras\n"
              "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'loaded by import emokeras'\n"
              "from emokeras import Recognizer\n"
              "assert 'tensorflow' not in sys.modules, 'loaded by the recogniser'\n"
              "for name in emokeras.__all__:\n"
              "    value = getattr(emokeras, name)\n"
              "    assert isinstance(value, tuple) or value.__module__.startswith('emokeras'), name\n"
              "from emokeras import build_model, MultiViewModel, Experiment, TrainConfig\n"
              "from emokeras.models import build_model as defined\n"
              "assert build_model is defined\n"
              "print(len(emokeras.__all__))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert int(result.stdout) >= 20


def test_an_unknown_name_is_an_attribute_error():
    import pytest

    import emokeras

    with pytest.raises(AttributeError, match="module 'emokeras' has no attribute 'Trainer'"):
        emokeras.Trainer  # noqa: B018 (the attribute access is what is tested)
