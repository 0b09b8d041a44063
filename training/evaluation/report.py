"""Evaluation of scored studies: per-finding AUC (95 % CI) overall and per site,
sens/spec at the stored operating points, retrieval precision@k, ROC PNGs, and
JSON + Markdown reports.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dicom_node.errors import TrainingError
from training.evaluation.metrics import bootstrap_auc, precision_at_k
from training.evaluation.plots import plot_roc

REPORT_JSON = "evaluation.json"
REPORT_MD = "evaluation.md"


@dataclass
class ScoredStudies:
    """Scores and labels of a set of studies, aligned by position."""

    keys: list[str]
    sites: list[str | None]
    scores: dict[str, np.ndarray]
    """finding id -> (N,) exam scores"""
    labels: dict[str, np.ndarray]
    """finding id -> (N,) 0/1 labels"""

    def __post_init__(self) -> None:
        n = len(self.keys)
        for what, table in (("scores", self.scores), ("labels", self.labels)):
            for fid, values in table.items():
                if len(values) != n:
                    raise TrainingError(f"{what}[{fid!r}] has {len(values)} values for {n} studies")


def _sens_spec(y: np.ndarray, s: np.ndarray, threshold: float) -> tuple[float, float]:
    called = s >= threshold
    sens = float(called[y == 1].mean()) if (y == 1).any() else math.nan
    spec = float((~called[y == 0]).mean()) if (y == 0).any() else math.nan
    return sens, spec


def evaluate_scores(
    scored: ScoredStudies,
    thresholds: Mapping[str, Mapping[str, float]] | None = None,
    k: int = 15,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """The evaluation report (a JSON-ready dict) of every finding with labels and scores."""
    thresholds = thresholds or {}
    sites = np.asarray([s or "unknown" for s in scored.sites])
    findings: dict[str, Any] = {}
    for fid, scores in scored.scores.items():
        if fid not in scored.labels:
            continue
        y = np.asarray(scored.labels[fid], dtype=np.int64)
        s = np.asarray(scores, dtype=np.float64)
        entry: dict[str, Any] = {
            "overall": bootstrap_auc(y, s, n_boot=n_boot, seed=seed).as_dict(),
            "sites": {
                site: bootstrap_auc(y[sites == site], s[sites == site], n_boot, seed=seed).as_dict()
                for site in sorted(set(sites.tolist()))
            },
            f"precision_at_{k}": precision_at_k(y, s, k),
            "operating_points": {},
        }
        for op, t in thresholds.get(fid, {}).items():
            sens, spec = _sens_spec(y, s, t)
            entry["operating_points"][op] = {
                "threshold": t,
                "sensitivity": sens,
                "specificity": spec,
            }
        findings[fid] = entry
    return {
        "n_studies": len(scored.keys),
        "sites": sorted(set(sites.tolist())),
        "k": k,
        "n_boot": n_boot,
        "findings": findings,
    }


def _fmt(auc: Mapping[str, Any]) -> str:
    if auc["auc"] is None or math.isnan(auc["auc"]):
        return "n/a"
    return f"{auc['auc']:.3f} ({auc['low']:.3f}–{auc['high']:.3f})"


def markdown_report(report: Mapping[str, Any], title: str = "Evaluation") -> str:
    """A Markdown rendering of :func:`evaluate_scores`' report."""
    k = report["k"]
    sites: Sequence[str] = report["sites"]
    lines = [
        f"# {title}",
        "",
        f"{report['n_studies']} studies; sites: {', '.join(sites)}; "
        f"95 % CIs from {report['n_boot']} bootstrap resamples.",
        "",
        "| finding | positives | AUC (95 % CI) | "
        + " | ".join(f"AUC {s}" for s in sites)
        + f" | P@{k} |",
        "|---|---:|---|" + "---|" * len(sites) + "---:|",
    ]
    for fid, entry in report["findings"].items():
        site_cells = " | ".join(_fmt(entry["sites"].get(s, {"auc": None})) for s in sites)
        lines.append(
            f"| {fid} | {entry['overall']['positives']} | {_fmt(entry['overall'])} | "
            f"{site_cells} | {entry[f'precision_at_{k}']:.2f} |"
        )
    lines += [
        "",
        "## Operating points",
        "",
        "| finding | point | threshold | sensitivity | specificity |",
        "|---|---|---:|---:|---:|",
    ]
    for fid, entry in report["findings"].items():
        for op, v in entry["operating_points"].items():
            lines.append(
                f"| {fid} | {op} | {v['threshold']:.4f} | {v['sensitivity']:.3f} "
                f"| {v['specificity']:.3f} |"
            )
    return "\n".join(lines) + "\n"


def write_report(
    report: Mapping[str, Any],
    scored: ScoredStudies,
    out_dir: Path,
    title: str = "Evaluation",
) -> list[Path]:
    """Write ``evaluation.json``, ``evaluation.md`` and one ROC PNG per finding."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / REPORT_JSON, out_dir / REPORT_MD]
    written[0].write_text(json.dumps(report, indent=2, sort_keys=True), encoding="utf-8")
    written[1].write_text(markdown_report(report, title), encoding="utf-8")
    sites = np.asarray([s or "unknown" for s in scored.sites])
    for fid, entry in report["findings"].items():
        y, s = scored.labels[fid], scored.scores[fid]
        curves = {"all": (y, s)} | {
            f"site {site}": (y[sites == site], s[sites == site]) for site in report["sites"]
        }
        points = {
            f"{op} (t={v['threshold']:.3f})": (v["sensitivity"], v["specificity"])
            for op, v in entry["operating_points"].items()
        }
        written.append(
            plot_roc(
                curves, out_dir / f"roc_{fid}.png", f"{fid}: AUC {_fmt(entry['overall'])}", points
            )
        )
    return written
