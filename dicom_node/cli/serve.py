"""``dicom-node serve``: run the node (SCP, completeness, dispatch, delivery, metrics)."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import click

from dicom_node.config import NodeSettings, load_settings
from dicom_node.errors import ConfigError, DicomNodeError

logger = logging.getLogger(__name__)


def settings_from_flags(config: Path | None, **flags: Any) -> NodeSettings:
    """Map the CLI flags onto :func:`load_settings` ("not given" flags are dropped)."""
    overrides: dict[str, Any] = {}
    for name, value in flags.items():
        if value is None or value == () or value is False:
            continue  # not given: TOML / environment / default decide
        overrides[name] = list(value) if isinstance(value, tuple) else value
    return load_settings(config, **overrides)


@click.command()
@click.option("--config", type=click.Path(path_type=Path), help="TOML settings file.")
@click.option("--ae-title", help="AE title of the node (called AE of scanners/PACS).")
@click.option("--port", type=int, help="DICOM port to listen on.")
@click.option("--bind", help="Address to listen on.")
@click.option("--storage", type=click.Path(path_type=Path), help="Storage dir for instances.")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Node data dir.")
@click.option("--allow", multiple=True, help="Allowed calling AE, AET or AET@HOST (repeatable).")
@click.option("--allow-any", is_flag=True, default=False, help="Accept any calling AE title.")
@click.option(
    "--destination", "destinations", multiple=True, help="Deliver results to AET@HOST:PORT."
)
@click.option("--quiet-period", type=float, help="Seconds without new instance = complete.")
@click.option("--broker", help="Celery broker URL (default: embedded Redis).")
@click.option("--database", help="Registry URL (default: SQLite in the data dir).")
@click.option("--no-worker", is_flag=True, default=False, help="Do not start a managed worker.")
@click.option("--scp-processes", type=int, help="SCP processes sharing the port.")
@click.option("--max-associations", type=int, help="Concurrent associations accepted.")
@click.option("--worker-concurrency", type=int, help="Processes of the managed worker.")
@click.option("--min-free-disk-mb", type=int, help="Refuse C-STORE (0xA700) below this.")
@click.option("--metrics-port", type=int, help="Port of /metrics and /healthz (0: off).")
@click.option("--metrics-bind", help="Address of the metrics server.")
@click.option("--device", help="Inference device: cpu, cuda or cuda:N.")
@click.option("--bundle", type=click.Path(path_type=Path), help="Model bundle directory.")
@click.option(
    "--queries",
    type=click.Path(path_type=Path),
    help="User queries file (JSON/TOML, finding id -> sentences): scored in the SR, not called.",
)
@click.option(
    "--operating-points",
    help="Points of the present/absent calls instead of the bundle's, e.g. "
    "'youden,abnormal=sens90' (sens90 or youden; a default and FINDING=POINT overrides; "
    "findings not named get the default, else sens90).",
)
def serve(config: Path | None, **flags: Any) -> None:
    """Run the DICOM node until SIGTERM / Ctrl-C."""
    try:
        settings = settings_from_flags(config, **flags)
        if settings.queries is not None:
            from pipeline.model.user_queries import read_queries

            read_queries(settings.queries)  # a broken file stops the start, not an analysis
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)

    from dicom_node.node import Node

    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    node = Node(settings)
    try:
        node.run(stop)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except DicomNodeError as exc:
        logger.error("node stopped: %s", exc)
        sys.exit(1)
