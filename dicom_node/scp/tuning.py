"""Latency tuning of pynetdicom's association reactors (measured with ``bench/ingest.py``).

Within one association every C-STORE waits for the previous response, so the
idle sleeps of pynetdicom's two polling loops add up to a large share of the
per-instance time:

* the DUL thread sleeps ``_run_loop_delay`` (1 ms) whenever it finds nothing to
  do, also between queueing a C-STORE response and sending it. While a worker
  process serves a single association the delay is shortened to
  :data:`DUL_DELAY_SINGLE` (latency bound: ~1.4x instances/s on one
  association); with several, each wake-up costs CPU the other associations
  need, and :data:`DUL_DELAY_SHARED` (pynetdicom's default) measured faster;
* the association thread sleeps 1 ms per loop and then *polls* the DIMSE
  message queue: here the poll waits on the queue for up to
  :data:`MESSAGE_WAIT`, so a request that arrives while it waits is served at
  once instead of at the next tick. Release, abort and the idle timer are still
  checked at least every ``1 ms + MESSAGE_WAIT``.

Both are per-association attribute settings; pynetdicom itself is not modified.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Final

#: DUL idle sleep (s) while the process serves one association.
DUL_DELAY_SINGLE: Final = 0.0002
#: DUL idle sleep (s) while the process serves several (pynetdicom's default).
DUL_DELAY_SHARED: Final = 0.001
#: Seconds the association reactor waits for the next DIMSE message per loop.
MESSAGE_WAIT: Final = 0.005


def wait_for_messages(assoc: Any) -> None:
    """Make ``assoc``'s reactor wait on its DIMSE queue instead of polling it."""
    dimse = assoc.dimse
    messages: queue.Queue[Any] = dimse.msg_queue

    def get_msg(block: bool = False) -> Any:
        try:
            return messages.get(timeout=dimse.dimse_timeout if block else MESSAGE_WAIT)
        except queue.Empty:
            return None, None

    dimse.get_msg = get_msg


class LoopDelays:
    """Keeps the DUL idle sleep of this process's open associations right for their number."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: set[Any] = set()

    def opened(self, assoc: Any) -> None:
        """Tune a new association (before it starts) and re-tune the others."""
        wait_for_messages(assoc)
        with self._lock:
            self._open.add(assoc)
            self._apply()

    def closed(self, assoc: Any) -> None:
        with self._lock:
            self._open.discard(assoc)
            self._apply()

    def _apply(self) -> None:
        delay = DUL_DELAY_SINGLE if len(self._open) <= 1 else DUL_DELAY_SHARED
        for assoc in self._open:
            assoc.dul._run_loop_delay = delay
