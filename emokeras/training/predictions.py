"""Per-utterance predictions of a run (`predictions.csv`) and the scores they give (numpy and pandas; no TensorFlow).

Every run folder holds `predictions.csv` beside `results.json`: one row per evaluated utterance (validation, test,
and any further test split), with its speaker, fold, split, seed, true and predicted class and one probability
column per class. UA and WA recomputed from it are the results' (`scores`), and `results.json` records, per split,
`split_hash`: a SHA-256 of its sorted `(utterance_id, label)` pairs, so that two runs can be checked to have been
tested on the same utterances with the same labels before they are compared.
"""

from __future__ import annotations

import hashlib
import io
import math

import numpy as np
import pandas as pd

PREDICTIONS = "predictions.csv"
COLUMNS = ("utterance_id", "speaker", "fold", "split", "seed", "label", "predicted")


class DamagedPredictions(ValueError):
    """A predictions.csv that cannot be read as one; the message names the file and the problem."""


def table(split: str, fold: int, seed: int, class_names, utterance_ids, speakers, labels,
          probabilities: np.ndarray) -> pd.DataFrame:
    """The rows of one evaluated split: `labels` are class ids, `probabilities` `[utterances, classes]`."""
    class_names = list(class_names)
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape(len(utterance_ids), len(class_names))
    labels = np.asarray(labels, dtype=np.int64)
    frame = pd.DataFrame({
        "utterance_id": list(utterance_ids), "speaker": list(speakers), "fold": fold, "split": split, "seed": seed,
        "label": [class_names[k] for k in labels],
        "predicted": [class_names[k] for k in np.argmax(probabilities, axis=1)] if len(labels) else [],
    })
    for index, name in enumerate(class_names):
        frame[name] = probabilities[:, index]
    return frame


def to_csv(frame: pd.DataFrame) -> str:
    """The CSV text, probabilities with every digit a float32 holds."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, float_format="%.9g", lineterminator="\n")
    return buffer.getvalue()


def read(path: str, class_names=None) -> pd.DataFrame:
    """A predictions.csv, checked: its columns, a probability column per class, known labels and finite values.

    Args:
      path: the predictions.csv to read.
      class_names: the classes its probability columns must name, in order; None takes those it has.

    Raises:
      DamagedPredictions: naming the file and what is wrong.
    """
    try:
        frame = pd.read_csv(path, dtype={"utterance_id": str, "speaker": str, "split": str, "label": str,
                                         "predicted": str}, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise DamagedPredictions(f"{path}: not a readable predictions file ({str(error).splitlines()[0]})") from None
    missing = [column for column in COLUMNS if column not in frame.columns]
    if missing:
        raise DamagedPredictions(f"{path}: no column {', '.join(missing)}; it was not written by emokeras, or is cut "
                                 "short (train the run again, or remove the file and run train to rewrite it)")
    found = [column for column in frame.columns if column not in COLUMNS]
    if class_names is not None and found != list(class_names):
        raise DamagedPredictions(f"{path}: probability columns {found}, expected {list(class_names)}")
    if not found:
        raise DamagedPredictions(f"{path}: no probability column")
    unknown = sorted(set(frame["label"]) - set(found))
    if unknown:
        raise DamagedPredictions(f"{path}: labels {unknown} are not among its classes {found}")
    values = frame[found].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0]) + 2  # the header is line 1
        raise DamagedPredictions(f"{path}:{row}: a probability is missing or not a number")
    frame[found] = values
    if frame.duplicated(["split", "seed", "utterance_id"]).any():
        raise DamagedPredictions(f"{path}: an utterance appears twice in one split")
    return frame


def class_columns(frame: pd.DataFrame) -> list[str]:
    """The probability columns (the class names, in label order)."""
    return [column for column in frame.columns if column not in COLUMNS]


def confusion(labels, predicted, num_classes: int) -> np.ndarray:
    """`[num_classes, num_classes]` counts, rows the truth and columns the prediction (class ids)."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, np.int64), np.asarray(predicted, np.int64)), 1)
    return matrix


def unweighted_accuracy(matrix: np.ndarray) -> float:
    """The mean recall over the classes present (as `emokeras.models.metrics.UnweightedAccuracy`)."""
    support = matrix.sum(axis=1)
    present = support > 0
    if not present.any():
        return math.nan
    return float(np.mean(np.diag(matrix)[present] / support[present]))


def weighted_accuracy(matrix: np.ndarray) -> float:
    """WA of a confusion matrix: the share of utterances classified correctly (NaN for none)."""
    total = matrix.sum()
    return float(np.trace(matrix) / total) if total else math.nan


def scores(frame: pd.DataFrame, class_names) -> dict:
    """UA, WA and the confusion matrix of one split's rows, as `results.json` records them."""
    index = {name: k for k, name in enumerate(class_names)}
    matrix = confusion(frame["label"].map(index), frame["predicted"].map(index), len(index))
    return {"unweighted_accuracy": unweighted_accuracy(matrix), "weighted_accuracy": weighted_accuracy(matrix),
            "confusion_matrix": matrix.tolist()}


def split_hash(utterance_ids, labels) -> str:
    """SHA-256 of the sorted `(utterance_id, label)` pairs (labels as class names).

    Which utterances a split tests, and with which labels.
    """
    lines = sorted(f"{utterance}\t{label}\n" for utterance, label in zip(utterance_ids, labels))
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()
