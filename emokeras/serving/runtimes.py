"""What runs an exported model: `model.onnx` on onnxruntime (no TensorFlow), or the SavedModel through TensorFlow.

`open_runtime` reads the export's metadata, picks the runtime, and names a damaged export in one line with what
still answers: a `model.onnx` that cannot be loaded or that the metadata names but is gone, a SavedModel whose
variables are missing or cut short, metadata whose class names do not match the model's output.
"""

from __future__ import annotations

import json
import os

import numpy as np

from emokeras.models.specs import METADATA, ONNX_MODEL, SIGNATURE

RUNTIMES = ("auto", "onnx", "savedmodel")


class DamagedExport(ValueError):
    """An export that cannot be used as it is; the message names it, the problem, and what still works."""


def read_metadata(model_dir: str) -> dict:
    """`assets.extra/emokeras.json` of an exported model.

    Raises:
      FileNotFoundError: `model_dir` is not a model folder emokeras exported.
      ValueError: its metadata is not readable, or lacks what a recogniser needs.
    """
    if not os.path.isfile(os.path.join(model_dir, "saved_model.pb")):
        raise FileNotFoundError(f"{model_dir}: no saved_model.pb; expected an exported model folder such as "
                                "saved_models/<model>/fold-<k>")
    path = os.path.join(model_dir, METADATA)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{model_dir}: no {METADATA}; this SavedModel was not exported by emokeras")
    try:
        with open(path, encoding="utf-8") as handle:
            metadata = json.load(handle)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not readable JSON ({error}); export the model again") from None
    missing = [key for key in ("inputs", "class_names") if not isinstance(metadata, dict) or key not in metadata]
    if missing:
        raise ValueError(f"{path}: no {', '.join(missing)}; export the model again")
    return metadata


def _positive_threads(threads):
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    return threads


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


class OnnxRuntime:
    """`model.onnx` on onnxruntime: `{name: array}` batches in, probabilities `[batch, classes]` out.

    Args:
      path: the `.onnx` file.
      threads: onnxruntime's intra-op threads (None: its default, every core).

    Raises:
      DamagedExport: the file cannot be loaded as a model.
    """

    name = "onnx"

    def __init__(self, path: str, threads: int | None = None):
        # Imported here: only this runtime needs onnxruntime, and a SavedModel user need not install it.
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if _positive_threads(threads):
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        # onnxruntime's arena keeps every size of input it has seen; the recogniser's batches vary in length.
        options.enable_cpu_mem_arena = False
        try:
            self._session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own types (InvalidProtobuf, Fail, ...)
            raise DamagedExport(f"{path} is damaged ({_first_line(error)})") from None
        self._inputs = {item.name.split(":")[0]: item.name for item in self._session.get_inputs()}
        output = next(item for item in self._session.get_outputs() if item.name.split(":")[0] == "probabilities")
        self._output = output.name
        self.classes = output.shape[-1] if isinstance(output.shape[-1], int) else None

    def __call__(self, inputs: dict) -> np.ndarray:
        """Class probabilities `[batch, classes]` for a batch of named inputs."""
        return self._session.run([self._output], {self._inputs[name]: inputs[name] for name in self._inputs})[0]


class SavedModelRuntime:
    """The SavedModel's serving signature through TensorFlow.

    Args:
      path: the SavedModel folder.
      threads: TensorFlow's intra-op threads (None: its default).

    Raises:
      DamagedExport: the SavedModel cannot be loaded (its variables missing or damaged).
    """

    name = "savedmodel"

    def __init__(self, path: str, threads: int | None = None):
        # Imported here: the ONNX runtime must not load TensorFlow (openSMILE aborts in a process that has).
        import tensorflow as tf

        if _positive_threads(threads):
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        self._tf = tf
        try:
            self._serve = tf.saved_model.load(path).signatures[SIGNATURE]
        except Exception as error:  # TensorFlow raises many types for a folder it cannot read
            raise DamagedExport(f"{path}: the SavedModel cannot be loaded (its variables are missing or damaged: "
                                f"{_first_line(error)})") from None
        self.classes = self._serve.structured_outputs["probabilities"].shape[-1]

    def __call__(self, inputs: dict) -> np.ndarray:
        """Class probabilities `[batch, classes]` for a batch of named inputs."""
        return self._serve(**{name: self._tf.constant(value) for name, value in inputs.items()})[
            "probabilities"].numpy()


def needs_transcript(metadata: dict) -> bool:
    """Whether the model reads word vectors or word spans (speaker frames, acoustic words)."""
    return bool({"word_vectors", "word_spans"} & set(metadata["inputs"]))


def uses_tensorflow(metadata: dict, runtime: str = "auto") -> bool:
    """Whether answering with this export and runtime loads TensorFlow.

    It does for the SavedModel runtime, and for a model that reads words (its text encoder is a TensorFlow Hub module).
    """
    return runtime == "savedmodel" or not metadata.get("onnx") or needs_transcript(metadata)


def open_runtime(export_dir: str, metadata: dict, runtime: str = "auto", threads: int | None = None):
    """The runtime of an export.

    `"onnx"`, `"savedmodel"`, or `"auto"` (ONNX where the metadata names a `model.onnx`, else the SavedModel).

    Raises:
      FileNotFoundError: ONNX asked for, and the export has none (a model that reads words; or a file the metadata
        names that is gone).
      DamagedExport: the chosen model cannot be loaded, or answers another number of classes than its metadata
        names; the message says which runtime still answers.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime {runtime!r}: choose one of {', '.join(RUNTIMES)}")
    _positive_threads(threads)
    onnx_name = metadata.get("onnx")
    onnx_path = os.path.join(export_dir, onnx_name or ONNX_MODEL)
    saved_model_answers = "the SavedModel beside it still answers: --runtime savedmodel"
    if runtime == "onnx" and not onnx_name:
        reason = ("it reads transcripts (words), which only the SavedModel serves" if needs_transcript(metadata)
                  else "it was exported without one (train --noonnx, or before emokeras wrote ONNX)")
        raise FileNotFoundError(f"{export_dir}: no {ONNX_MODEL}: {reason}")
    if runtime in ("onnx", "auto") and onnx_name:
        if not os.path.isfile(onnx_path):
            raise FileNotFoundError(f"{export_dir}: its metadata names {onnx_name}, which is missing; "
                                    f"{saved_model_answers}")
        try:
            chosen = OnnxRuntime(onnx_path, threads)
        except DamagedExport as error:
            raise DamagedExport(f"{error}; {saved_model_answers}") from None
    else:
        try:
            chosen = SavedModelRuntime(export_dir, threads)
        except DamagedExport as error:
            also = (f"; {onnx_name} beside it still answers: --runtime onnx"
                    if onnx_name and os.path.isfile(onnx_path) else "; export it again")
            raise DamagedExport(f"{error}{also}") from None
    names = metadata["class_names"]
    if chosen.classes is not None and chosen.classes != len(names):
        raise DamagedExport(f"{export_dir}: its metadata names {len(names)} classes ({', '.join(names)}), the model "
                            f"answers {chosen.classes}; export it again")
    return chosen
