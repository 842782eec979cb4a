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

    def run_dir(self) -> str:
        return os.path.join(self.output, self.model, f"fold-{self.fold}")

    def export_dir(self) -> str:
        return os.path.join(self.saved_models, self.model, f"fold-{self.fold}")
