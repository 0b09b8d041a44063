"""``dicom-node-train bundle``: calibrate on validation and write a model bundle."""

from __future__ import annotations

import json
from pathlib import Path

import click

from dicom_node.errors import TrainingError
from pipeline.model.operating_points import OPERATING_POINTS, parse_operating_points
from pipeline.model.queries import QueryBank
from pipeline.model.scoring import FUSIONS, Fusion
from training.bundles.build import build_bundle
from training.bundles.calibrate import (
    ROBUST_FUSIONS,
    SEQUENCE_RULES,
    parse_heatmap_sequences,
    parse_heatmap_sources,
)
from training.data.prepare import sequences_arg


@click.command("bundle")
@click.option(
    "--cache",
    "cache_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
)
@click.option(
    "--report-encoder",
    "text_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
)
@click.option(
    "--image-encoders",
    "image_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--name", default="neurotriage-demo", show_default=True)
@click.option("--version", "version", default="0.1.0", show_default=True, help="Semantic version.")
@click.option(
    "--queries",
    "queries_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Query bank JSON (default: the built-in bank).",
)
@click.option(
    "--operating-point",
    default="sens90",
    show_default=True,
    help=(
        f"Point of the present/absent call, one of {', '.join(OPERATING_POINTS)}: for every "
        "finding, or a default with FINDING=POINT overrides, e.g. 'youden,abnormal=sens90'."
    ),
)
@click.option(
    "--labels",
    type=click.Choice(["truth", "reports"]),
    default="truth",
    show_default=True,
    help="Validation labels: known truth or extracted from the reports.",
)
@click.option(
    "--sequences", default="", help="Comma-separated sequences (default: every trained one)."
)
@click.option("--description", default="", help="Free text about the training data.")
@click.option(
    "--fusions",
    default=",".join(ROBUST_FUSIONS),
    show_default=True,
    help=f"Sequence fusions tried on validation (of {', '.join(FUSIONS)}).",
)
@click.option(
    "--heatmap-sequence",
    "heatmap_sequences",
    default="",
    help="Where to draw some findings' heatmaps instead of the sequence that ranks them "
    "best on validation, e.g. haemorrhage=FLAIR (comma-separated).",
)
@click.option(
    "--heatmap-sources",
    default="",
    help="Draw some findings from the mean of several sequences' maps, e.g. tumour=all or "
    "tumour=FLAIR+T1C (comma-separated).",
)
@click.option(
    "--sequence-rule",
    type=click.Choice(SEQUENCE_RULES),
    default="gain",
    show_default=True,
    help="How each finding's sequences are chosen on validation: 'gain' (a subset beating "
    "all sequences by 0.02 AUC) or 'one_se' (the fewest sequences within one bootstrap "
    "standard error of the best subset).",
)
def bundle(
    cache_dir: Path,
    text_dir: Path,
    image_dir: Path,
    out_dir: Path,
    name: str,
    version: str,
    queries_file: Path | None,
    operating_point: str,
    labels: str,
    sequences: str,
    description: str,
    fusions: str,
    heatmap_sequences: str,
    heatmap_sources: str,
    sequence_rule: str,
) -> None:
    """Choose scoring and thresholds on validation; write manifest.json + fp16 weights."""
    bank = (
        QueryBank.model_validate_json(queries_file.read_text(encoding="utf-8"))
        if queries_file
        else None
    )
    try:
        overrides = parse_heatmap_sequences(heatmap_sequences)
    except TrainingError as exc:
        raise click.BadParameter(str(exc), param_hint="--heatmap-sequence") from exc
    try:
        parse_operating_points(operating_point)
    except TrainingError as exc:
        raise click.BadParameter(str(exc), param_hint="--operating-point") from exc
    try:
        sources = parse_heatmap_sources(heatmap_sources)
    except TrainingError as exc:
        raise click.BadParameter(str(exc), param_hint="--heatmap-sources") from exc
    result = build_bundle(
        cache_dir,
        text_dir,
        image_dir,
        out_dir,
        name=name,
        version=version,
        bank=bank,
        operating_point=operating_point,
        labels=labels,  # type: ignore[arg-type]  # click.Choice checked it
        sequences=list(sequences_arg(sequences)) or None,
        description=description,
        fusions=_fusions(fusions),
        heatmap_sequences=overrides,
        heatmap_sources=sources,
        sequence_rule=sequence_rule,  # type: ignore[arg-type]  # click.Choice checked it
    )
    m = result.manifest
    click.echo(
        json.dumps(
            {
                "bundle": str(result.path),
                "device_uid": m.device_uid,
                "sequences": m.sequences,
                "scoring": m.scoring.model_dump(),
                "thresholds": {f.id: f.thresholds for f in m.queries.findings},
                "validation_mean_auc": m.metrics["validation"]["mean_auc"],
            },
            indent=2,
        )
    )


def _fusions(text: str) -> list[Fusion]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in FUSIONS]
    if unknown or not names:
        raise click.BadParameter(f"fusions must be among {', '.join(FUSIONS)}; got {text!r}")
    return [n for n in FUSIONS if n in names]
