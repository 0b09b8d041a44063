"""Delivery of the objects the node produces to PACS destinations (durable outbox + C-STORE SCU)."""

from dicom_node.delivery.outbox import (
    DeliverySweeper,
    attempt_delivery,
    backoff_seconds,
    enqueue_delivery,
    sweep_due,
)

__all__ = [
    "DeliverySweeper",
    "attempt_delivery",
    "backoff_seconds",
    "enqueue_delivery",
    "sweep_due",
]
