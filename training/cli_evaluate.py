"""``dicom-node-train evaluate``: AUC (95 % CI), operating points, P@k, ROC plots, reports."""

from __future__ import annotations

from pathlib import Path

import click

from training.data.prepare import sequences_arg
from training.evaluation.report import markdown_report
from training.evaluation.run import evaluate_bundle
from training.labels.agreement import agreement_table


@click.command("evaluate")
@click.option(
    "--bundle",
    "bundle_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
)
@click.option(
    "--cache",
    "cache_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option(
    "--split", type=click.Choice(["train", "val", "test"]), default="test", show_default=True
)
@click.option("--sites", default="", help="Comma-separated sites to restrict to.")
@click.option(
    "--labels",
    type=click.Choice(["truth", "reports"]),
    default="truth",
    show_default=True,
    help="Known truth, or labels extracted from the reports (NegEx).",
)
@click.option("-k", "k", type=int, default=15, show_default=True, help="Retrieval precision@k.")
@click.option("--n-boot", type=int, default=1000, show_default=True)
@click.option(
    "--store-in-bundle", is_flag=True, help="Add the AUCs to the bundle's manifest metrics."
)
@click.option("--title", default=None, help="Report title (default: bundle, version and split).")
def evaluate(
    bundle_dir: Path,
    cache_dir: Path,
    out_dir: Path,
    split: str,
    sites: str,
    labels: str,
    k: int,
    n_boot: int,
    store_in_bundle: bool,
    title: str | None,
) -> None:
    """Evaluate a bundle on a split of a prepared cache; print the Markdown table."""
    result = evaluate_bundle(
        bundle_dir,
        cache_dir,
        out_dir,
        split=split,
        sites=list(sequences_arg(sites)) or None,
        labels=labels,  # type: ignore[arg-type]  # click.Choice checked it
        k=k,
        n_boot=n_boot,
        store_in_bundle=store_in_bundle,
        title=title,
    )
    click.echo(markdown_report(result.report))
    if result.label_agreement is not None:
        click.echo("Agreement of the report label extractor (NegEx) with the truth:\n")
        click.echo(agreement_table(result.label_agreement))
    click.echo(f"\nwritten: {', '.join(str(p) for p in result.files)}")
