"""``dicom-node-train synth``: write a folder of synthetic brain MRI studies.

With ``--prepared T2,FLAIR`` it writes a training cache instead (the ``prepare``
format, see :mod:`training.synth.stream`): no DICOM on disk.
"""

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
@click.option(
    "--prepared",
    default=None,
    help="Write a training cache of these sequences (e.g. T2,FLAIR) instead of DICOM.",
)
@click.option(
    "--test-site",
    "test_sites",
    type=click.Choice(SITES),
    multiple=True,
    help="With --prepared: every study of this site goes to the test split.",
)
def synth(
    out: Path,
    studies: int,
    seed: int,
    sites: tuple[str, ...],
    workers: int,
    size: str,
    prepared: str | None,
    test_sites: tuple[str, ...],
) -> None:
    """Generate synthetic studies: DIR/dicom, reports.jsonl, labels.csv, masks/."""
    start = time.perf_counter()
    if prepared:
        from training.data.prepare import PrepareConfig
        from training.synth.stream import stream_to_cache

        sequences = tuple(s.strip().upper() for s in prepared.split(",") if s.strip())
        cfg = PrepareConfig(sequences=sequences, test_sites=test_sites)
        summary = stream_to_cache(
            out,
            studies,
            seed,
            list(sites) or None,
            cfg,
            workers=workers,
            size=size,  # type: ignore[arg-type]
        )
        click.echo(f"{summary.cached} prepared studies cached in {out}")
    else:
        from training.synth.dataset import generate_dataset

        generate_dataset(out, studies, seed, list(sites) or None, workers, size=size)  # type: ignore[arg-type]
        click.echo(f"{studies} studies written to {out}")
    click.echo(f"{time.perf_counter() - start:.1f} s")
