"""``dicom-node-train prepare``: pair studies with reports and cache preprocessed tensors."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pipeline.preprocess import PreprocessSpec
from training.data.prepare import DEFAULT_SEQUENCES, PrepareConfig, prepare_cache, sequences_arg


@click.command("prepare")
@click.option(
    "--dicom",
    "dicom_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="Folder of DICOM studies (searched recursively).",
)
@click.option(
    "--reports",
    "reports_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Reports: .jsonl, .json or .csv keyed by Study Instance UID or accession.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Cache folder (resumed if it exists).",
)
@click.option(
    "--labels",
    "labels_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Optional CSV of known labels (evaluation truth).",
)
@click.option(
    "--sequences",
    default=",".join(DEFAULT_SEQUENCES),
    show_default=True,
    help="Comma-separated sequences to cache.",
)
@click.option(
    "--size",
    type=int,
    default=None,
    help="Cube side of the preprocessed volumes (default: the spec's 120).",
)
@click.option(
    "--spec",
    "spec_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="PreprocessSpec JSON file (overrides --size).",
)
@click.option("--test-sites", default="", help="Comma-separated sites held out entirely as test.")
@click.option("--val-fraction", type=float, default=0.15, show_default=True)
@click.option(
    "--test-fraction",
    type=float,
    default=0.15,
    show_default=True,
    help="Used only when no test site is given.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--limit", type=int, default=None, help="Prepare at most this many new studies.")
@click.option("--workers", type=int, default=1, show_default=True, help="Processes.")
def prepare(
    dicom_dir: Path,
    reports_file: Path,
    out_dir: Path,
    labels_file: Path | None,
    sequences: str,
    size: int | None,
    spec_file: Path | None,
    test_sites: str,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    limit: int | None,
    workers: int,
) -> None:
    """Pair studies with reports, preprocess every usable sequence and cache the tensors."""
    if spec_file is not None:
        spec = PreprocessSpec.model_validate_json(spec_file.read_text(encoding="utf-8"))
    elif size is not None:
        spec = PreprocessSpec(output_shape=(size, size, size))
    else:
        spec = PreprocessSpec()
    summary = prepare_cache(
        dicom_dir,
        reports_file,
        out_dir,
        PrepareConfig(
            spec=spec,
            sequences=sequences_arg(sequences),
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            test_sites=sequences_arg(test_sites),
            labels_file=labels_file,
            seed=seed,
            limit=limit,
            workers=workers,
        ),
    )
    click.echo(json.dumps(summary.as_dict(), indent=2))
