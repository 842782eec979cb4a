"""Figures as PNG bytes, for TensorBoard images.

The paper's confusion matrices (Figures 9 and 10) and its attention view (Figure 3). matplotlib only, drawn on a bare
`Figure` (no pyplot, no display).
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

ACOUSTIC_COLOUR, LEXICAL_COLOUR = "tab:blue", "tab:red"


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def confusion_matrix_png(matrix, class_names, title: str = "") -> bytes:
    """A confusion matrix (rows: truth, columns: prediction), shaded by per-class recall, counts in the cells."""
    matrix = np.asarray(matrix, dtype=np.int64)
    support = matrix.sum(axis=1, keepdims=True)
    recall = np.divide(matrix, support, out=np.zeros(matrix.shape), where=support > 0)
    figure = Figure(figsize=(4.6, 4.2))
    axes = figure.subplots()
    axes.imshow(recall, cmap="Blues", vmin=0.0, vmax=1.0)
    ticks = np.arange(len(class_names))
    axes.set_xticks(ticks, class_names, rotation=30, ha="right")
    axes.set_yticks(ticks, class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for row in range(matrix.shape[0]):
        for column in range(matrix.shape[1]):
            axes.text(column, row, f"{matrix[row, column]}\n{recall[row, column]:.0%}", ha="center", va="center",
                      fontsize=8, color="white" if recall[row, column] > 0.5 else "black")
    axes.set_title(title, fontsize=9)
    figure.tight_layout()
    return _png(figure)


def attention_png(utterances) -> bytes:
    """The paper's Figure 3 for a few utterances.

    Each word's background is shaded by its context-attention weight (darker:
    more weight, scaled to the utterance's largest); above it, where the model
    has a GMU, two bars show the mean of the gate `z` (acoustic, blue) and of
    `1 − z` (lexical, red).

    Args:
      utterances: dicts with `words` (strings), `attention` (`[words]` or
        None), `acoustic_share` (`[words]` mean of z, or None) and `title`.
    """
    rows = len(utterances)
    figure = Figure(figsize=(10, 1.25 * rows + 0.3))
    axes = figure.subplots()
    axes.set_xlim(0, 100)
    axes.set_ylim(0, 10 * rows)
    axes.axis("off")
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.99)
    for row, utterance in enumerate(utterances):
        base = 10 * (rows - row - 1)
        axes.text(0, base + 8.8, utterance.get("title", ""), fontsize=8, va="center")
        words = list(utterance["words"])
        attention = utterance.get("attention")
        share = utterance.get("acoustic_share")
        peak = float(np.max(attention)) if attention is not None and len(words) else 1.0
        x = 0.0
        for index, word in enumerate(words):
            width = 1.2 * len(word) + 1.6
            if x + width > 100:  # the rest would not fit on the line
                axes.text(x, base + 2.5, "…", fontsize=9, va="center")
                break
            if attention is not None:
                axes.add_patch(Rectangle((x, base + 1), width - 0.4, 3, color="black",
                                         alpha=0.85 * float(attention[index]) / max(peak, 1e-9), linewidth=0))
            axes.text(x + 0.5, base + 2.5, word, fontsize=9, va="center",
                      color="white" if attention is not None and attention[index] > 0.6 * peak else "black")
            if share is not None:
                half = (width - 0.4) / 2
                axes.add_patch(Rectangle((x, base + 4.3), half - 0.2, 3.5 * float(share[index]),
                                         color=ACOUSTIC_COLOUR, linewidth=0))
                axes.add_patch(Rectangle((x + half, base + 4.3), half - 0.2, 3.5 * (1 - float(share[index])),
                                         color=LEXICAL_COLOUR, linewidth=0))
            x += width
    return _png(figure)
