"""Latency tuning of pynetdicom's association reactors (measured in ``bench/ingest.py``).

pynetdicom's DUL thread sleeps ``_run_loop_delay`` (1 ms) whenever it finds
nothing to do. Within one association every C-STORE waits for the previous
response, so these idle sleeps add up to a large share of the per-instance
time. A shorter delay costs a little CPU while an association is open.
"""

from __future__ import annotations

from typing import Any, Final

#: Seconds the DUL reactor sleeps when idle (pynetdicom's default: 0.001).
DUL_LOOP_DELAY: Final = 0.0002


def tune_association(assoc: Any) -> None:
    """Shorten the idle sleep of ``assoc``'s DUL reactor (before it starts)."""
    assoc.dul._run_loop_delay = DUL_LOOP_DELAY
