"""Heatmap faithfulness: the pointing game on synthetic studies with known lesion masks.

For each synthetic study with a finding, the analysis's saliency map of that finding
(on the sequence the analysis draws it on, :mod:`pipeline.study_analysis`) is taken at
its maximum; a "hit" is a maximum within 5 mm of the finding's truth mask (the mask
dilated by 5 mm). The score is hits / positive findings. Target: >= 0.8 with the demo
bundle. Also printed: the same over the positives the model calls present (the maps a
radiologist is shown: the node draws a finding only when it is called present), hits
per finding, and, for the misses, whether the maximum fell within 5 mm of the lesion's
whole extent (perilesional oedema included: a map that points at a tumour's oedema
rather than at the tumour counts there, not as a hit). A tiny or untrained bundle
scores near chance: the number is only meaningful for a trained bundle.

Usage::

    .venv/bin/python bench/heatmaps.py --bundle deploy/models/demo [--studies 12]
        [--seed 100] [--size small|full] [--device cpu] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.heatmaps import HEATMAP_METHODS, onto_grid, peak_world
from pipeline.model import ModelBundle, load_bundle
from pipeline.series import select_series
from pipeline.study_analysis import PreparedSequence, StageTimer, make_heatmaps, prepare_sequences
from training.machine import describe_machine
from training.synth import FINDINGS, generate_study

TOLERANCE_MM = 5.0


def distance_to_mask(point: tuple[float, float, float], mask_points: np.ndarray) -> float:
    """Distance (mm) from an LPS point to the nearest voxel of a mask (0 inside)."""
    return float(np.min(np.linalg.norm(mask_points - np.asarray(point), axis=1)))


def synth_sequences(sequences: list[str]) -> list[str]:
    """Truth classes to acquire for a bundle's sequences (ADC comes with DWI)."""
    wanted = {"DWI" if s == "ADC" else s for s in sequences}
    return sorted(wanted)


def oracle_peaks(
    study: Any, prepared: dict[str, PreparedSequence], findings: list[str]
) -> list[tuple[str, str, tuple[float, float, float] | None]]:
    """Peaks of "maps" that ARE the truth masks, resampled onto each sequence's preprocessed
    grid: checks the geometry chain (preprocessing affine -> peak -> mask) without a model;
    a correct chain scores ~1.0."""
    peaks: list[tuple[str, str, tuple[float, float, float] | None]] = []
    for finding in findings:
        mask = study.masks[finding]
        sequence, item = next(iter(prepared.items()))
        heat = onto_grid(
            mask.array.astype(np.float32), mask.affine_lps, item.tensor.shape[1:], item.affine_lps
        )
        peaks.append((finding, sequence, peak_world(heat, item.affine_lps)))
    return peaks


def play(
    bundle: ModelBundle,
    studies: int,
    seed: int,
    size: str,
    *,
    oracle: bool = False,
    methods: tuple[str, ...] = HEATMAP_METHODS[:1],
    only: frozenset[str] = frozenset(),
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Run the pointing game for each of ``methods`` on the same studies.

    Study ``i`` has finding ``i mod 6``; with ``only``, the studies of other findings
    are skipped (not generated), so one finding is measured on the same studies as
    in a full run.

    Returns per-(finding, method) rows and the seconds each method's maps took.
    """
    candidates = [f for f in FINDINGS if f in bundle.queries.findings]
    if not candidates:
        raise SystemExit(f"bundle {bundle.name} has none of the synthetic findings {FINDINGS}")
    rows: list[dict[str, Any]] = []
    seconds = dict.fromkeys(("oracle",) if oracle else methods, 0.0)
    for index in range(studies):
        finding = candidates[index % len(candidates)]
        if only and finding not in only:
            continue
        study = generate_study(
            seed + index,
            findings={finding: True},
            size=size,  # type: ignore[arg-type]
            sequences=synth_sequences(bundle.sequences),
        )
        datasets = [ds for series in study.series for ds in series.datasets]
        selection = select_series(datasets)
        prepared, _skipped = prepare_sequences(selection, bundle, StageTimer())
        if not prepared:
            continue
        import torch

        with torch.inference_mode():
            embeddings = {
                s: bundle.encode_image(s, torch.from_numpy(p.tensor)) for s, p in prepared.items()
            }
        scores = bundle.score(embeddings)
        positives = [f for f, present in study.findings.items() if present and f in study.masks]
        positives = [f for f in positives if f in bundle.queries.findings]
        for method in seconds:
            start = time.perf_counter()
            if oracle:
                peaks = oracle_peaks(study, prepared, positives)
            else:
                _inputs, peaks = make_heatmaps(
                    bundle,
                    scores,
                    prepared,
                    targets=positives,
                    study_uid=study.study_uid,
                    method=method,
                )
            seconds[method] += time.perf_counter() - start
            rows += _rows(study, index, method, peaks, scores)
    return rows, seconds


def _rows(
    study: Any,
    index: int,
    method: str,
    peaks: list[tuple[str, str, tuple[float, float, float] | None]],
    scores: Any,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for key, sequence, peak in peaks:
        points = study.masks[key].world_points()
        distance = float("inf") if peak is None else distance_to_mask(peak, points)
        whole = study.extents[key].world_points() if key in study.extents else points
        to_extent = float("inf") if peak is None else distance_to_mask(peak, whole)
        rows.append(
            {
                "study": index,
                "method": method,
                "finding": key,
                "sequence": sequence,
                "score": scores.findings[key].score,
                "called_present": bool(scores.findings[key].present),
                "distance_mm": None if peak is None else round(distance, 2),
                "empty_map": peak is None,
                "hit": distance <= TOLERANCE_MM,
                "distance_extent_mm": None if peak is None else round(to_extent, 2),
                "hit_extent": to_extent <= TOLERANCE_MM,
            }
        )
    return rows


def _summary(rows: list[dict[str, Any]], seconds_per_study: float) -> dict[str, Any]:
    """Pointing game of one method's rows, over all positives and over those called present."""
    called = [r for r in rows if r["called_present"]]
    hits, hits_called = sum(r["hit"] for r in rows), sum(r["hit"] for r in called)
    return {
        "positive_findings": len(rows),
        "hits": hits,
        "pointing_game": hits / len(rows) if rows else float("nan"),
        "hits_extent": sum(r["hit_extent"] for r in rows),
        "called_present": len(called),
        "hits_called_present": hits_called,
        "pointing_game_called_present": hits_called / len(called) if called else float("nan"),
        "seconds_per_study": round(seconds_per_study, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=Path("deploy/models/demo"))
    parser.add_argument("--studies", type=int, default=12)
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--size", choices=("small", "full"), default="small")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--method",
        default=HEATMAP_METHODS[0],
        help=f"comma-separated, of {', '.join(HEATMAP_METHODS)} (default: the analysis default)",
    )
    parser.add_argument(
        "--findings",
        default="",
        help="comma-separated: only the studies of these findings (the same studies as in a "
        "full run)",
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--oracle", action="store_true", help="maps = truth masks: checks the geometry chain"
    )
    args = parser.parse_args()
    methods = tuple(args.method.split(","))
    unknown = [m for m in methods if m not in HEATMAP_METHODS]
    if unknown:
        parser.error(f"unknown method(s) {unknown}; choose from {HEATMAP_METHODS}")
    logging.basicConfig(level=logging.WARNING)
    bundle = load_bundle(args.bundle, device=args.device)
    only = frozenset(filter(None, args.findings.split(",")))
    rows, seconds = play(
        bundle, args.studies, args.seed, args.size, oracle=args.oracle, methods=methods, only=only
    )
    for row in rows:
        print(
            f"study {row['study']:>3} {row['method']:<15} {row['finding']:<15} "
            f"on {row['sequence']:<6} "
            + ("empty map" if row["empty_map"] else f"distance {row['distance_mm']:6.1f} mm")
            + ("  HIT" if row["hit"] else "  miss")
            + ("  (in the lesion's extent)" if row["hit_extent"] and not row["hit"] else "")
        )
    summary: dict[str, Any] = {
        "bundle": f"{bundle.name} {bundle.version}",
        "device_uid": bundle.device_uid,
        "studies": args.studies,
        "seed": args.seed,
        "machine": describe_machine(),
        "tolerance_mm": TOLERANCE_MM,
        "methods": {},
        "rows": rows,
    }
    print(f"\npointing game, {bundle.name} {bundle.version}, target >= 0.8")
    print(
        f"{'method':<16}{'hits':>6}{'positives':>11}{'score':>8}"
        f"{'called present':>16}{'score':>8}{'map s/study':>13}"
    )
    for method, spent in seconds.items():
        mine = [r for r in rows if r["method"] == method]
        played = len({r["study"] for r in mine})
        summary["methods"][method] = _summary(mine, spent / max(1, played))
        m = summary["methods"][method]
        print(
            f"{method:<16}{m['hits']:>6}{m['positive_findings']:>11}{m['pointing_game']:>8.2f}"
            f"{m['hits_called_present']:>8}/{m['called_present']:<7}"
            f"{m['pointing_game_called_present']:>8.2f}{m['seconds_per_study']:>13.2f}"
        )
    for method, m in summary["methods"].items():
        print(
            f"{method}: {m['hits_extent'] - m['hits']} of the "
            f"{m['positive_findings'] - m['hits']} misses peak within {TOLERANCE_MM:g} mm "
            "of the lesion's whole extent (perilesional oedema included)"
        )
    findings = sorted({r["finding"] for r in rows})
    print("\nhits / positives by finding (called present in brackets)")
    print(f"{'method':<16}" + "".join(f"{f[:13]:>15}" for f in findings))
    for method in seconds:
        cells = []
        for finding in findings:
            m = _summary([r for r in rows if r["method"] == method and r["finding"] == finding], 0)
            cell = (
                f"{m['hits']}/{m['positive_findings']}"
                f" ({m['hits_called_present']}/{m['called_present']})"
            )
            cells.append(f"{cell:>15}")
        print(f"{method:<16}" + "".join(cells))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
