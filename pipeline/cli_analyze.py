"""``dicom-node analyze PATH``: the node's analysis of one study folder, offline.

Same stages as the worker's task (:mod:`pipeline.study_analysis`), without the
network or the registry: prints per-finding scores and calls, the triage
result, the sequences used (and those skipped, with why), the heatmaps and the
stage timings; ``--out DIR`` writes the SR and the heatmap captures there.

``--queries FILE`` adds user findings, embedded on the fly and scored (not
called: they have no calibrated threshold). JSON or TOML, finding id -> list of
sentences, e.g. ``{"arachnoid_cyst": ["arachnoid cyst", "extra-axial cyst"]}``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from dicom_node.errors import ConfigError, DicomNodeError
from pipeline.model.user_queries import read_queries


def render(doc: dict[str, Any]) -> str:
    """Human-readable summary of :meth:`pipeline.study_analysis.StudyAnalysis.to_dict`."""
    model = doc["model"]
    lines = [
        f"study {doc['study_uid']}: {doc['status']} by {model['name']} {model['version']}",
        "AI result - not for diagnostic use",
    ]
    if doc["reason"]:
        lines.append(f"reason: {doc['reason']}")
    lines.append("sequences used: " + (", ".join(doc["sequences_used"]) or "none"))
    for seq, why in doc["skipped"].items():
        lines.append(f"  skipped {seq}: {why}")
    triage = doc["triage"]
    if triage is not None:
        call = "ABNORMAL" if triage["abnormal"] else "normal"
        lines.append(
            f"triage: {call} (score {triage['score']:.3f}, threshold {triage['threshold']:.3f})"
        )
    if doc["findings"]:
        lines.append(f"{'finding':<28} {'score':>7} {'thresh':>7}  call")
    for fid, f in doc["findings"].items():
        threshold = "-" if f["threshold"] is None else f"{f['threshold']:.3f}"
        call = "-" if f["present"] is None else ("PRESENT" if f["present"] else "absent")
        if f["user_defined"]:
            call = "(user query, not called)"
        lines.append(f"{fid:<28} {f['score']:>7.3f} {threshold:>7}  {call}")
    for h in doc["heatmaps"]:
        if h["peak_lps"] is None:
            where = "empty map (no positive evidence)"
        else:
            where = "peak at LPS (" + ", ".join(f"{v:.1f}" for v in h["peak_lps"]) + ") mm"
        lines.append(f"heatmap {h['finding_id']} on {h['sequence']}: {where}")
    timings = ", ".join(f"{k} {v:.2f}s" for k, v in doc["stage_timings"].items())
    lines.append(f"stages: {timings}")
    if "files" in doc:
        lines.append(f"wrote {len(doc['files'])} file(s): SR {doc['sr']['path']}")
    return "\n".join(lines)


@click.command()
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--bundle",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Model bundle folder (default: the configured bundle, else the demo bundle).",
)
@click.option(
    "--queries",
    "queries_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON/TOML file: finding id -> query sentences, scored on the fly.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the SR and heatmap captures to this folder.",
)
@click.option("--device", help="cpu, cuda or cuda:N (default: the configured device).")
@click.option("--no-heatmaps", is_flag=True, help="Skip the heatmaps.")
@click.option(
    "--operating-points",
    help="Points of the calls instead of the bundle's, e.g. 'youden,abnormal=sens90'.",
)
@click.option("--config", type=click.Path(path_type=Path), help="TOML settings file.")
def analyze(
    path: Path,
    bundle: Path | None,
    queries_file: Path | None,
    as_json: bool,
    out: Path | None,
    device: str | None,
    no_heatmaps: bool,
    operating_points: str | None,
    config: Path | None,
) -> None:
    """Analyse the study in folder PATH offline (no network, no registry)."""
    from dicom_node.config import load_settings
    from pipeline.analysis import NO_BUNDLE_REASON, bundle_path, get_bundle
    from pipeline.study_analysis import analyse_folder

    try:
        settings = load_settings(
            config, bundle=bundle, device=device, operating_points=operating_points
        )
        chosen = bundle_path(settings)
        if chosen is None:
            raise ConfigError(f"{NO_BUNDLE_REASON}: pass --bundle DIR")
        queries = read_queries(queries_file) if queries_file is not None else None
        model = get_bundle(chosen, settings.device, settings.operating_points)
        analysis = analyse_folder(path, model, out, extra_queries=queries, heatmaps=not no_heatmaps)
    except DicomNodeError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    doc = analysis.to_dict()
    click.echo(json.dumps(doc, indent=2) if as_json else render(doc))
