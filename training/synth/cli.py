"""``dicom-node-train synth``: write a folder of synthetic brain MRI studies.

With ``--prepared T2,FLAIR`` it writes a training cache instead (the ``prepare``
format, see :mod:`training.synth.stream`): no DICOM on disk.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from training.synth.sites import SITES

if TYPE_CHECKING:
    from pipeline.preprocess import PreprocessSpec


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
@click.option(
    "--preprocess-like",
    "like_bundle",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help=(
        "With --prepared: preprocess as this model bundle does (its manifest's spec), "
        "so that the cache can evaluate it. Default: the default spec."
    ),
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
    like_bundle: Path | None,
) -> None:
    """Generate synthetic studies: DIR/dicom, reports.jsonl, labels.csv, masks/."""
    start = time.perf_counter()
    if prepared:
        from training.data.prepare import PrepareConfig
        from training.synth.stream import stream_to_cache

        sequences = tuple(s.strip().upper() for s in prepared.split(",") if s.strip())
        cfg = PrepareConfig(sequences=sequences, test_sites=test_sites)
        if like_bundle is not None:
            cfg.spec = _bundle_spec(like_bundle)
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
        if like_bundle is not None:
            raise click.UsageError("--preprocess-like applies to --prepared caches only")
        from training.synth.dataset import generate_dataset

        generate_dataset(out, studies, seed, list(sites) or None, workers, size=size)  # type: ignore[arg-type]
        click.echo(f"{studies} studies written to {out}")
    click.echo(f"{time.perf_counter() - start:.1f} s")


def _bundle_spec(bundle_dir: Path) -> PreprocessSpec:
    """The preprocessing spec of a bundle's manifest (a clear error when unreadable)."""
    from dicom_node.errors import BundleError
    from pipeline.model.bundle import read_manifest
    from pipeline.preprocess import PreprocessSpec

    try:
        return PreprocessSpec.model_validate(read_manifest(bundle_dir).preprocessing)
    except (BundleError, ValueError) as exc:
        raise click.BadParameter(str(exc), param_hint="--preprocess-like") from exc
