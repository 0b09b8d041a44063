"""``dicom-node-train report-encoder``: train the tokenizer and the report encoder."""

from __future__ import annotations

import json
from pathlib import Path

import click

from dicom_node.errors import TrainingError
from pipeline.model.scoring import CONTRASTS, ScoringSpec
from training.data.cache import read_cache
from training.data.reports import ReportRecord, load_reports
from training.evaluation.text_ceiling import report_zero_shot_auc
from training.text.configs import TEXT_CONFIGS
from training.text.train import (
    ReportEncoderTrainConfig,
    load_report_encoder,
    train_report_encoder,
)


@click.command("report-encoder")
@click.option(
    "--cache",
    "cache_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Prepared cache: train on its train split's reports.",
)
@click.option(
    "--reports",
    "reports_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Or a reports file (every report is used).",
)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option(
    "--config",
    "config_name",
    type=click.Choice(sorted(TEXT_CONFIGS)),
    default="small",
    show_default=True,
)
@click.option("--epochs", type=int, default=3, show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--lr", "learning_rate", type=float, default=5e-4, show_default=True)
@click.option(
    "--section-weight",
    type=float,
    default=1.0,
    show_default=True,
    help="Weight of the findings/impression matching loss.",
)
@click.option(
    "--vocab-size", type=int, default=None, help="Tokenizer vocabulary (default: the config's)."
)
@click.option("--max-steps", type=int, default=None)
@click.option("--device", default="cpu", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=None, help="CPU threads (1 on a busy machine).")
def report_encoder(
    cache_dir: Path | None,
    reports_file: Path | None,
    out_dir: Path,
    config_name: str,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    section_weight: float,
    vocab_size: int | None,
    max_steps: int | None,
    device: str,
    seed: int,
    threads: int | None,
) -> None:
    """Train the report tokenizer and encoder (MLM + section matching).

    With a cache whose validation studies have labels, also prints the text-only
    ceiling: the AUC of scoring each validation report by its own embedding.
    """
    val: list[ReportRecord] = []
    if cache_dir is not None:
        cache = read_cache(cache_dir)
        train = [s.report for s in cache.split("train")]
        val = [s.report for s in cache.split("val")]
    elif reports_file is not None:
        train = load_reports(reports_file)
    else:
        raise TrainingError("give --cache or --reports")
    result = train_report_encoder(
        train,
        out_dir,
        ReportEncoderTrainConfig(
            config=config_name,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            section_weight=section_weight,
            vocab_size=vocab_size,
            max_steps=max_steps,
            device=device,
            seed=seed,
            threads=threads,
        ),
        val=val,
    )
    ceiling: dict[str, dict[str, float]] = {}
    if val and all(r.labels for r in val):
        encoder = load_report_encoder(out_dir)
        for contrast in CONTRASTS:
            ceiling[contrast] = report_zero_shot_auc(
                encoder, val, spec=ScoringSpec(contrast=contrast)
            )
    click.echo(
        json.dumps(
            {
                "out": str(result.out_dir),
                "steps": result.steps,
                "history": result.history,
                "text_only_ceiling_auc_val": ceiling,
            },
            indent=2,
        )
    )
