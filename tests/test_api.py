"""The public API: `import emokeras` loads no TensorFlow, and every public name resolves to what it says.

The modules openSMILE's side and the TensorFlow-free paths import never load it; `python -m emokeras` runs commands.
"""

import subprocess
import sys


def test_every_public_name_resolves_to_what_it_says():
    """In this process; that `import emokeras` and its recogniser load no TensorFlow is tested with it blocked."""
    import emokeras
    from emokeras.models.builders import build_model

    assert len(emokeras.__all__) >= 20
    for name in emokeras.__all__:
        value = getattr(emokeras, name)
        assert isinstance(value, tuple) or value.__module__.startswith("emokeras"), name
    assert emokeras.build_model is build_model


def test_an_unknown_name_is_an_attribute_error():
    import pytest

    import emokeras

    with pytest.raises(AttributeError, match="module 'emokeras' has no attribute 'Trainer'"):
        emokeras.Trainer  # noqa: B018 (the attribute access is what is tested)


# The modules that must load without TensorFlow (ARCHITECTURE.md, Data flow): openSMILE aborts in a process that
# has loaded it, and the ONNX recogniser, compare and the commands' start run without it.
TENSORFLOW_FREE = ("emokeras", "emokeras.config", "emokeras.settings", "emokeras.cli", "emokeras.quiet",
                   "emokeras.files", "emokeras.data", "emokeras.data.corpus", "emokeras.data.corpus.records",
                   "emokeras.data.corpus.iemocap", "emokeras.data.corpus.msp_podcast", "emokeras.data.corpus.crema_d",
                   "emokeras.data.corpus.ravdess", "emokeras.data.corpus.manifest", "emokeras.data.corpus.demo",
                   "emokeras.data.alignments", "emokeras.data.features.acoustic", "emokeras.models",
                   "emokeras.models.specs", "emokeras.serving", "emokeras.serving.segments", "emokeras.serving.frames",
                   "emokeras.serving.inputs", "emokeras.serving.runtimes", "emokeras.serving.recognizer",
                   "emokeras.training", "emokeras.training.predictions", "emokeras.training.paired_tests",
                   "emokeras.training.supervisor", "emokeras.__main__", "emokeras.train", "emokeras.prepare",
                   "emokeras.crossval", "emokeras.tune", "emokeras.predict", "emokeras.compare")


def test_these_modules_import_with_tensorflow_blocked():
    from helpers.commands import TENSORFLOW_BLOCKED

    script = (TENSORFLOW_BLOCKED + "import importlib\n"
              f"for name in {TENSORFLOW_FREE!r}:\n"
              "    importlib.import_module(name)\n"
              "from emokeras import Recognizer, __all__\n"  # the public names load lazily
              "print('ok')\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


def test_python_dash_m_emokeras_lists_the_commands_and_runs_one():
    listed = subprocess.run([sys.executable, "-m", "emokeras", "--help"], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0
    for command in ("prepare", "train", "crossval", "tune", "predict", "compare"):
        assert f"\n  {command} " in listed.stdout
    helped = subprocess.run([sys.executable, "-m", "emokeras", "train", "--help"], capture_output=True, text=True,
                            timeout=60)
    assert helped.returncode == 0 and "--fold" in helped.stdout and "emokeras.train" in helped.stdout
    assert helped.stderr == ""  # a quiet start: no TensorFlow log line
    unknown = subprocess.run([sys.executable, "-m", "emokeras", "trian"], capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 1 and "'trian' is not an emokeras command" in unknown.stderr


def test_a_level_the_user_sets_applies_to_the_lines_tensorflow_writes_before_reading_it():
    """TensorFlow 2.21 writes such lines at import whatever TF_CPP_MIN_LOG_LEVEL says (the I and E ones here)."""
    from emokeras.quiet import at_level

    lines = ["WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
             "I0000 00:00:1796181593.707290    1657 port.cc:153] oneDNN custom operations are on.\n",
             "I0000 00:00:1796181593.765392    1657 cpu_feature_guard.cc:227] This TensorFlow binary is optimized\n",
             "To enable the following instructions: AVX2 AVX512F, in other operations, rebuild TensorFlow.\n",
             "E0000 00:00:1796180366.949877   20069 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)\n",
             "W0000 00:00:1796180366.950001   20069 something.cc:1] a warning\n"]
    text = "".join(lines)
    assert at_level(text, 0) == text
    assert at_level(text, 1) == lines[4] + lines[5]
    assert at_level(text, 2) == lines[4]
    assert at_level(text, 3) == ""
    assert at_level("not TensorFlow's\n" + text, 3) == "not TensorFlow's\n"


def test_a_quiet_start_holds_back_tensorflows_log_lines_unless_asked():
    import re

    from helpers.commands import TF_LOG_LINE, user_environment

    script = ("import os, sys\nfrom emokeras import quiet\nquiet.start(tensorflow=True)\n"
              "print('started', os.environ.get('GRPC_VERBOSITY'))\n")
    environment = user_environment()
    quiet = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                           env=environment)
    assert quiet.returncode == 0 and quiet.stdout == "started ERROR\n"  # gRPC's INFO lines held back too
    assert not re.search(TF_LOG_LINE, quiet.stderr, re.M), quiet.stderr
    loud = subprocess.run([sys.executable, "-c", script, "--verbose"], capture_output=True, text=True, timeout=120,
                          env=environment)
    assert re.search(TF_LOG_LINE, loud.stderr, re.M), "--verbose shows TensorFlow's own lines"
    assert loud.stdout == "started None\n"  # and gRPC's
    chosen = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            env={**environment, "TF_CPP_MIN_LOG_LEVEL": "0"})
    assert re.search(TF_LOG_LINE, chosen.stderr, re.M), "a level the user sets is respected"
