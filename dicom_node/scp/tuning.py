"""Latency tuning of pynetdicom's association reactors (measured with ``bench/ingest.py``).

Within one association every C-STORE waits for the previous response, so the
idle sleeps of pynetdicom's two polling loops add up to a large share of the
per-instance time:

* the DUL thread sleeps ``_run_loop_delay`` (1 ms) whenever it finds nothing to
  do, also between queueing a C-STORE response and sending it: shortened to
  :data:`DUL_LOOP_DELAY`;
* the association thread sleeps 1 ms per loop and then *polls* the DIMSE
  message queue: here the poll waits on the queue for up to
  :data:`MESSAGE_WAIT`, so a request that arrives while it waits is served at
  once instead of at the next tick. Release, abort and the idle timer are still
  checked at least every ``1 ms + MESSAGE_WAIT``.

Both are per-association attribute settings; pynetdicom itself is not modified.
"""

from __future__ import annotations

import queue
from typing import Any, Final

#: Seconds the DUL reactor sleeps when idle (pynetdicom's default: 0.001).
DUL_LOOP_DELAY: Final = 0.0002
#: Seconds the association reactor waits for the next DIMSE message per loop.
MESSAGE_WAIT: Final = 0.005


def tune_association(assoc: Any) -> None:
    """Apply the latency settings to ``assoc`` (call before it starts)."""
    assoc.dul._run_loop_delay = DUL_LOOP_DELAY
    dimse = assoc.dimse
    messages: queue.Queue[Any] = dimse.msg_queue

    def get_msg(block: bool = False) -> Any:
        try:
            return messages.get(timeout=dimse.dimse_timeout if block else MESSAGE_WAIT)
        except queue.Empty:
            return None, None

    dimse.get_msg = get_msg
