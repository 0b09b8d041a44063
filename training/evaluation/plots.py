"""ROC curves as PNG files (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
from sklearn.metrics import roc_curve


def plot_roc(
    curves: Mapping[str, tuple[npt.ArrayLike, npt.ArrayLike]],
    out_file: Path,
    title: str,
    points: Mapping[str, tuple[float, float]] | None = None,
) -> Path:
    """Plot one ROC curve per entry ``name -> (labels, scores)``; mark operating points.

    Args:
        points: name -> (sensitivity, specificity) markers (e.g. the stored operating point).
    """
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    for name, (labels, scores) in curves.items():
        y = np.asarray(labels)
        if y.min(initial=1) == y.max(initial=0):
            continue
        fpr, tpr, _ = roc_curve(y, np.asarray(scores))
        ax.plot(fpr, tpr, label=name)
    for name, (sens, spec) in (points or {}).items():
        ax.plot([1 - spec], [sens], marker="o", linestyle="none", label=name)
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle="--")
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity")
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_file, bbox_inches="tight")
    plt.close(fig)
    return out_file
