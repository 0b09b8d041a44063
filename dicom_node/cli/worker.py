"""``dicom-node worker``: a Celery worker for the node's queues (``gpu``, ``io``)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import click

from dicom_node.errors import ConfigError

logger = logging.getLogger(__name__)


def _exit_with_parent(parent_pid: int, interval: float = 1.0) -> None:
    """Warm-shutdown this worker when ``parent_pid`` is gone (the node was killed)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval)
        logger.warning("parent process %d is gone: stopping the managed worker", parent_pid)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


@click.command()
@click.option("--config", type=click.Path(path_type=Path), help="TOML settings file.")
@click.option("--broker", help="Celery broker URL (e.g. redis://127.0.0.1:6379/0).")
@click.option("--database", help="Registry URL (default: SQLite in the data dir).")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Node data dir.")
@click.option("--queues", default="gpu,io", show_default=True, help="Queues to consume.")
@click.option("--concurrency", type=int, help="Worker processes (default: worker_concurrency).")
@click.option(
    "--pool",
    type=click.Choice(["prefork", "solo", "threads"]),
    default="prefork",
    show_default=True,
)
@click.option("--loglevel", default="INFO", show_default=True)
@click.option("--exit-with-parent", type=int, hidden=True, help="Stop when this process ends.")
def worker(
    config: Path | None,
    broker: str | None,
    database: str | None,
    data_dir: Path | None,
    queues: str,
    concurrency: int | None,
    pool: str,
    loglevel: str,
    exit_with_parent: int | None,
) -> None:
    """Consume analysis (gpu) and delivery (io) tasks."""
    from dicom_node.config import load_settings
    from dicom_node.node import settings_to_env

    try:
        settings = load_settings(config, broker=broker, database=database, data_dir=data_dir)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if not settings.broker:
        click.echo(
            "error: invalid setting 'broker': no broker URL (flag --broker, environment "
            "DICOM_NODE_BROKER); `dicom-node serve` without a broker runs its own worker",
            err=True,
        )
        sys.exit(2)
    # The pool processes read their settings from the environment (see pipeline.tasks).
    os.environ.update(settings_to_env(settings))
    if config is not None:
        from pipeline.tasks import CONFIG_ENV

        os.environ[CONFIG_ENV] = str(config.resolve())

    if exit_with_parent is not None:
        _exit_with_parent(exit_with_parent)

    from pipeline.celery_app import configure

    app = configure(settings.broker)
    import pipeline.tasks  # noqa: F401 - registers the tasks

    app.worker_main(
        [
            "worker",
            "--queues",
            queues,
            "--concurrency",
            str(concurrency or settings.worker_concurrency),
            "--pool",
            pool,
            "--hostname",
            f"dicom-node-{os.getpid()}@%h",
            "--loglevel",
            loglevel,
            "--without-gossip",
            "--without-mingle",
        ]
    )


if __name__ == "__main__":  # the managed worker of `dicom-node serve`
    from dicom_node.logging_setup import configure_logging

    configure_logging(1)
    worker(prog_name="dicom-node worker")
