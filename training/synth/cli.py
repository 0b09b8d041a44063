"""``dicom-node-train synth``: write a folder of synthetic brain MRI studies."""

from __future__ import annotations

import time
from pathlib import Path

import click

from training.synth.sites import SITES


@click.command("synth")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option("--studies", type=int, default=10, show_default=True, help="Number of studies.")
@click.option("--seed", type=int, default=0, show_default=True, help="Dataset seed.")
@click.option(
    "--site",
    "sites",
    type=click.Choice(SITES),
    multiple=True,
    help="Site(s) to use, in turn (default: all). Repeat for several.",
)
@click.option("--workers", type=int, default=1, show_default=True, help="Processes.")
@click.option(
    "--size",
    type=click.Choice(["full", "small"]),
    default="full",
    show_default=True,
    help="'small' makes reduced matrices for quick tests.",
)
def synth(
    out: Path, studies: int, seed: int, sites: tuple[str, ...], workers: int, size: str
) -> None:
    """Generate synthetic studies: DIR/dicom, reports.jsonl, labels.csv, masks/."""
    from training.synth.dataset import generate_dataset

    start = time.perf_counter()
    generate_dataset(out, studies, seed, list(sites) or None, workers, size=size)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - start
    click.echo(f"{studies} studies written to {out} in {elapsed:.1f} s")
