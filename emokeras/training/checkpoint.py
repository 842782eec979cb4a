"""A run's training state.

Committed whole at the end of every epoch, so that a run interrupted at any point resumes to the state an uninterrupted
run passes through.

The state lives in `<run>/state/`: the weights with the optimizer's variables (`latest.weights.h5`), the best epoch's
weights (`best.weights.h5`) and `state.json` (finished epochs, every epoch's logs, the best epoch and its value).
An epoch's state is written to `state.partial/` and swapped in by renames; `history.csv`, `best.json` and
`best.weights.h5` in the run folder are views of the committed state, refreshed after each commit. Keras'
`BackupAndRestore` is not used: it overwrites its weights file in place and records the epoch in a second file
afterwards, and knows nothing of the history or the best epoch, so a kill between its writes leaves them
disagreeing.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import shutil

import keras

from emokeras.files import reported_write_errors, write_json, write_text

STATE = "state"
LATEST_WEIGHTS = "latest.weights.h5"
HISTORY = "history.csv"
BEST = "best.json"
BEST_WEIGHTS = "best.weights.h5"


@dataclasses.dataclass
class TrainingState:
    """What the committed state says: `epochs` finished, their logs, and the best of them by `monitor`."""

    monitor: str
    epochs: int = 0
    history: list = dataclasses.field(default_factory=list)
    best_epoch: int | None = None  # 1-based
    best_value: float = -math.inf

    @classmethod
    def read(cls, run_dir: str) -> TrainingState | None:
        """The committed state of `run_dir`, after finishing an interrupted swap; None for a fresh run."""
        state, old, partial = (os.path.join(run_dir, name) for name in (STATE, STATE + ".old", STATE + ".partial"))
        if not os.path.isdir(state) and os.path.isdir(old):  # killed between the two renames of a commit
            os.replace(old, state)
        shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(partial, ignore_errors=True)
        path = os.path.join(state, "state.json")
        if not os.path.isfile(path):
            return None
        with open(path, encoding="utf-8") as handle:
            return cls(**json.load(handle))


class RunCheckpoint(keras.callbacks.Callback):
    """Commits the run's state at the end of each epoch, and restores it before `fit`.

    Place it after every callback that adds to the epoch's logs (it records them) and before any that may stop
    training (an epoch counts once it is committed).

    Args:
      run_dir: the run folder.
      monitor: the log whose highest value is the best epoch (the paper keeps the model best on the validation
        speaker).
    """

    def __init__(self, run_dir: str, monitor: str = "val_unweighted_accuracy"):
        super().__init__()
        self.run_dir = run_dir
        self.monitor = monitor
        self.state = TrainingState.read(run_dir) or TrainingState(monitor)

    @property
    def best_weights(self) -> str:
        """The path of the best epoch's weights."""
        return os.path.join(self.run_dir, BEST_WEIGHTS)

    def restore(self, model) -> int:
        """Loads the committed weights and optimizer state into `model`; returns the epoch to start at."""
        if self.state.epochs:
            if model.optimizer is not None and not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)
            model.load_weights(os.path.join(self.run_dir, STATE, LATEST_WEIGHTS))
        return self.state.epochs

    def on_epoch_end(self, epoch, logs=None):
        """Commits the epoch: its weights, the optimizer, the history and the best epoch so far."""
        logs = logs or {}
        if self.monitor not in logs:
            raise KeyError(f"RunCheckpoint: no {self.monitor!r} in the epoch's logs (have: "
                           f"{', '.join(sorted(logs))}); is there validation data?")
        state = self.state
        history = [row for row in state.history if row["epoch"] < epoch]
        history.append({"epoch": epoch, **{key: float(value) for key, value in logs.items()}})
        value = float(logs[self.monitor])
        improved = value > state.best_value
        committed = os.path.join(self.run_dir, STATE)
        partial = committed + ".partial"
        shutil.rmtree(partial, ignore_errors=True)
        new_state = TrainingState(self.monitor, epoch + 1, history, epoch + 1 if improved else state.best_epoch,
                                  value if improved else state.best_value)
        with reported_write_errors(self.run_dir, f"epoch {epoch + 1}'s state"):
            os.makedirs(partial)
            self.model.save_weights(os.path.join(partial, LATEST_WEIGHTS))
            if improved:
                self.model.save_weights(os.path.join(partial, BEST_WEIGHTS))
            elif state.best_epoch is not None:
                _link_or_copy(os.path.join(committed, BEST_WEIGHTS), os.path.join(partial, BEST_WEIGHTS))
            write_json(os.path.join(partial, "state.json"), dataclasses.asdict(new_state))
        self.state = new_state
        # The commit: two renames. TrainingState.read finishes one that was interrupted.
        if os.path.isdir(committed):
            os.replace(committed, committed + ".old")
        os.replace(partial, committed)
        shutil.rmtree(committed + ".old", ignore_errors=True)
        self.publish()

    def publish(self) -> None:
        """Writes the run folder's views of the committed state: `history.csv`, `best.json`, `best.weights.h5`."""
        state = self.state
        write_text(os.path.join(self.run_dir, HISTORY), history_csv(state.history))
        if state.best_epoch is not None:
            _link_or_copy(os.path.join(self.run_dir, STATE, BEST_WEIGHTS), self.best_weights)
            write_json(os.path.join(self.run_dir, BEST),
                       {"monitor": state.monitor, "value": state.best_value, "epoch": state.best_epoch})

    def finish(self) -> None:
        """Drops the resumable state once the run's results are written (the views stay)."""
        shutil.rmtree(os.path.join(self.run_dir, STATE), ignore_errors=True)


def history_csv(rows: list[dict]) -> str:
    """Every epoch's logs as CSV: `epoch` first, then the logs in name order."""
    if not rows:
        return ""
    names = ["epoch", *sorted({key for row in rows for key in row} - {"epoch"})]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _link_or_copy(source: str, target: str) -> None:
    """`target` becomes `source`'s content, whole: a hard link where the file system allows, else a copy."""
    if os.path.exists(target) and os.path.samefile(source, target):
        return  # already linked: renaming a link onto its twin would leave the link behind
    partial = os.path.join(os.path.dirname(target), "." + os.path.basename(target) + ".partial")
    if os.path.lexists(partial):
        os.remove(partial)
    try:
        os.link(source, partial)
    except OSError:
        shutil.copyfile(source, partial)
    os.replace(partial, target)
