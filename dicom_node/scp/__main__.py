"""Run the SCP alone (benchmarks, fault tests): ``python -m dicom_node.scp --port ...``.

Settings come from ``--config``, the ``DICOM_NODE_*`` environment and these
flags, as for ``dicom-node serve``. Stops on SIGTERM / SIGINT.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click

from dicom_node.errors import DicomNodeError
from dicom_node.logging_setup import configure_logging


@click.command()
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None)
@click.option("--ae-title", default=None)
@click.option("--port", type=int, default=None)
@click.option("--bind", default=None)
@click.option("--storage", type=click.Path(path_type=Path), default=None)
@click.option("--database", default=None, help="Registry URL (sqlite:///... or postgresql://...).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
@click.option("--allow", multiple=True, help="AET or AET@HOST allowed to associate (repeatable).")
@click.option("--allow-any", is_flag=True, default=None)
@click.option("--max-associations", type=int, default=None)
@click.option("--processes", "scp_processes", type=int, default=None)
@click.option("--min-free-disk-mb", type=int, default=None)
@click.option("-v", "--verbose", count=True)
def main(config_file: Path | None, verbose: int, allow: tuple[str, ...], **flags: Any) -> None:
    """Run the node's SCP (no completeness watcher, no dispatch) until SIGTERM/SIGINT."""
    configure_logging(verbose)
    from dicom_node.config import load_settings
    from dicom_node.scp.service import ScpService

    try:
        settings = load_settings(config_file, allow=list(allow) or None, **flags)
        service = ScpService(settings)
        service.start()
    except DicomNodeError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    done = threading.Event()

    def _stop(_signum: int, _frame: object) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while not done.wait(1.0):
        if not service.is_alive():
            click.echo("error: SCP service died", err=True)
            service.stop()
            sys.exit(1)
    service.stop()


if __name__ == "__main__":
    main()
