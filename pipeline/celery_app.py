"""The one Celery application of the node (cookiecutter-django / Weblate habit).

JSON-only serialisation, ``acks_late`` with idempotent tasks keyed by UIDs,
explicit routes to the ``gpu`` (models) and ``io`` (delivery) queues, soft time
limit below the hard one. The broker URL comes from ``DICOM_NODE_BROKER`` (set
by ``dicom-node serve`` / ``worker`` before the app is used).
"""

from __future__ import annotations

import os

from celery import Celery

BROKER_ENV = "DICOM_NODE_BROKER"
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"

QUEUE_GPU = "gpu"
QUEUE_IO = "io"

app = Celery("neurotriage", include=["pipeline.tasks"])


def configure(broker_url: str | None = None) -> Celery:
    """(Re)configure the app for ``broker_url`` (defaults to the environment)."""
    url = broker_url or os.environ.get(BROKER_ENV) or DEFAULT_BROKER
    app.conf.update(
        broker_url=url,
        result_backend=None,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=600,
        task_time_limit=720,
        task_default_queue=QUEUE_IO,
        task_routes={
            "pipeline.tasks.analyse_study": {"queue": QUEUE_GPU},
            "pipeline.tasks.deliver_object": {"queue": QUEUE_IO},
            "pipeline.tasks.*": {"queue": QUEUE_IO},
        },
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 3600},
        worker_hijack_root_logger=False,
        enable_utc=True,
    )
    return app


configure()
