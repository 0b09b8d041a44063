"""``dicom-node-train``: offline data generation, training, evaluation and bundles.

Sub-commands live in their own modules and are imported lazily.
"""

from __future__ import annotations

import click

from dicom_node.cli import LazyGroup
from dicom_node.logging_setup import configure_logging

_COMMANDS: dict[str, str] = {
    "synth": "training.synth.cli:synth",
    "prepare": "training.cli_prepare:prepare",
    "report-encoder": "training.cli_report_encoder:report_encoder",
    "image-encoders": "training.cli_image_encoders:image_encoders",
    "evaluate": "training.cli_evaluate:evaluate",
    "bundle": "training.cli_bundle:bundle",
}


@click.group(cls=LazyGroup, lazy=_COMMANDS)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """NeuroTriage training: synthetic data, encoders, evaluation, model bundles."""
    configure_logging(verbose)
