"""Configuration as typed dataclasses holding the paper's defaults (no TensorFlow import here).

Each run writes its resolved configuration (`dataclasses.asdict`) into its folder.
"""

from __future__ import annotations

import dataclasses
import os


@dataclasses.dataclass
class ModelConfig:
    """Model sizes; defaults are the paper's (§4.2, Appendix B).

    Attributes:
      hidden_units: output size of each BLSTM layer, both directions together
        (each direction has half). The paper's "BLSTM layers of 256
        dimensions" give "word representations ... with 256 dimensions"
        (§4.2), so 256 is the concatenated size. The GMU and the attention
        use the same size.
      blstm_layers: BLSTM layers in each stack (the paper: two).
      dropout: drop probability after each BLSTM layer and before the softmax
        (the paper: 0.4-0.5).
      l2: L2 coefficient on every kernel (the paper: 1e-5).
    """

    hidden_units: int = 256
    blstm_layers: int = 2
    dropout: float = 0.5
    l2: float = 1e-5


@dataclasses.dataclass
class MultiViewConfig:
    """Multi-view learning (paper §3.4, Appendix B); `mode=None` trains one model alone.

    Attributes:
      mode: "joint" (both views learn: Lc + βa·La + βm·Lm), "frozen" (a trained
        second view, not updated: Lc + βa·La) or "teacher" (a trained teacher:
        Lc + LKL); None for no multi-view learning.
      student: the acoustic view (B-ACO-1 or B-ACO-1+attention).
      view: joint mode's second view, built and trained alongside.
      teacher: frozen and teacher modes: a finished run folder of the same
        fold (e.g. runs/H-MM-4/fold-3), whose best weights are loaded; `{fold}`
        in it stands for the run's fold (`teacher_dir`).
      beta_a, beta_m: the cross-entropy weights (the paper's best: 1 and 0.3).
      beta_decay: ρ of `β = β0 / (1 + ρ·epoch)`; 0 keeps β constant.
      margin: the contrastive margin m (0.5).
      negatives: "random" or "similar" (anger ↔ happiness, neutral ↔ sadness).
    """

    mode: str | None = None
    student: str = "B-ACO-1"
    view: str = "H-MM-4"
    teacher: str | None = None
    beta_a: float = 1.0
    beta_m: float = 0.3
    beta_decay: float = 0.0
    margin: float = 0.5
    negatives: str = "random"

    def teacher_dir(self, fold: int) -> str | None:
        """`teacher` for `fold`: a `{fold}` in it is replaced, so one flag serves every fold of a sweep."""
        return self.teacher.replace("{fold}", str(fold)) if self.teacher else None


@dataclasses.dataclass
class TrainConfig:
    """One training run; the defaults are the paper's settings (Appendix B) on fold 3 of the demo corpus.

    Attributes:
      model: a name from the paper's Table 2 (`emokeras.models.MODEL_NAMES`).
      fold: 0..9, speaker-exclusive (DESIGN.md, Folds).
      epochs, batch_size, learning_rate: Adam's schedule (30, 64, 1e-4).
      clipnorm: the global gradient norm is clipped to this (5).
      seed: weights, dropout and shuffling.
      data: a prepared TFRecord folder; None prepares and uses the demo corpus.
      output: runs go to `<output>/<model>/fold-<fold>/`.
      saved_models: the best model is exported to `<saved_models>/<model>/fold-<fold>/`.
      overwrite: retrain a run that already has results.
      model_config: sizes and regularisation (`ModelConfig`).
      multiview: multi-view learning; with a mode, `model` is ignored and the
        run is named `<student>.<mode>.<second view>`.
    """

    model: str = "H-MM-4"
    fold: int = 3
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 1e-4
    clipnorm: float = 5.0
    seed: int = 0
    data: str | None = None
    output: str = "runs"
    saved_models: str = "saved_models"
    overwrite: bool = False
    model_config: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    multiview: MultiViewConfig = dataclasses.field(default_factory=MultiViewConfig)

    def experiment(self) -> str:
        """The run's name: the model, or `<student>.<mode>.<second view>` for multi-view learning."""
        views = self.multiview
        if views.mode is None:
            return self.model
        if views.mode == "joint":
            second = views.view
        elif views.teacher:
            second = os.path.basename(os.path.dirname(os.path.normpath(views.teacher)))
        else:
            raise ValueError(f"multi-view mode {views.mode!r} needs --teacher, a finished run folder "
                             "such as runs/H-MM-4/fold-3")
        return f"{views.student}.{views.mode}.{second}"

    def hyperparameters(self) -> dict:
        """What shapes the result, flat, for TensorBoard's HParams dashboard: the model and its sizes,
        the schedule, and with multi-view learning its settings (`multiview` is the mode)."""
        values = {"model": self.model, "fold": self.fold, "epochs": self.epochs, "batch_size": self.batch_size,
                  "learning_rate": self.learning_rate, "clipnorm": self.clipnorm, "seed": self.seed,
                  **dataclasses.asdict(self.model_config)}
        views = dataclasses.asdict(self.multiview)
        values["multiview"] = views.pop("mode")
        if values["multiview"] is not None:
            values.update(views, model=self.multiview.student)
        return values

    def run_dir(self) -> str:
        return os.path.join(self.output, self.experiment(), f"fold-{self.fold}")

    def export_dir(self) -> str:
        return os.path.join(self.saved_models, self.experiment(), f"fold-{self.fold}")


@dataclasses.dataclass
class TuneConfig:
    """A Keras Tuner search over multi-view learning's settings (Appendix B's values by default).

    Only the settings the mode uses are searched: `joint` searches all four,
    `frozen` all but βm, `teacher` (Lc + LKL) the margin and the negatives.

    Attributes:
      tuner: "grid", "random" or "bayesian".
      max_trials: trials to run in all (a resumed search counts those done).
      directory: the tuner's state goes to `<directory>/<experiment>.fold-<k>/`.
      beta_a, beta_m, margin, negatives: the values to choose from.
    """

    tuner: str = "random"
    max_trials: int = 10
    directory: str = "tuning"
    beta_a: tuple[float, ...] = (1.0, 1.2)
    beta_m: tuple[float, ...] = (0.3, 0.5, 1.0)
    margin: tuple[float, ...] = (0.3, 0.5, 0.7)
    negatives: tuple[str, ...] = ("random", "similar")
