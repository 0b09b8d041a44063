"""Event-driven reactors for pynetdicom associations (no idle polling).

pynetdicom runs two loops per association, both polling:

* the DUL thread sleeps ``_run_loop_delay`` whenever it finds nothing to do,
  then checks its send queue and ``select()``s the socket with a zero timeout;
* the association thread sleeps 1 ms per loop before looking for a DIMSE message.

Within one association every C-STORE waits for the previous response, so the
sleeps add latency to every instance, and the polling costs CPU (19 % of a core
per idle association, measured) that concurrent associations need.

:func:`install` replaces both loops of one association, before it starts, by
copies that *wait* instead: the DUL thread blocks in ``select()`` on the socket
and on a wake-up pipe written whenever a primitive is queued for sending; the
association thread blocks on its DIMSE message queue. Everything else (state
machine, ARTIM and idle timers, release, abort) is pynetdicom's own code,
called exactly as its loops call it; timers are still checked at least every
:data:`IDLE_WAIT` seconds.

The loops mirror pynetdicom 3.0 (``DULServiceProvider.run_reactor`` and
``Association._run_reactor``). :func:`supported` checks the version; with
another pynetdicom the node keeps pynetdicom's loops (see
:class:`dicom_node.scp.tuning.LoopDelays`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import queue
import select
import ssl
import threading
import time
from typing import Any, Final

import pynetdicom
from pynetdicom import evt
from pynetdicom.pdu import A_ABORT_RQ

logger = logging.getLogger(__name__)

#: Longest wait (s) of either loop before it re-checks timers, kill and release flags.
IDLE_WAIT: Final = 0.02

_SUPPORTED_MAJOR_MINOR: Final = ("3", "0")


def supported() -> bool:
    """True when the installed pynetdicom is the version these loops mirror."""
    return tuple(pynetdicom.__version__.split(".")[:2]) == _SUPPORTED_MAJOR_MINOR


class WakePipe:
    """A non-blocking pipe that wakes the DUL loop; closed exactly once."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self.write_fd, False)
        self._lock = threading.Lock()
        self._closed = False

    def wake(self) -> None:
        with self._lock:
            if self._closed:
                return
            with contextlib.suppress(BlockingIOError, OSError):
                os.write(self.write_fd, b"!")

    def drain(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.read(self.read_fd, 4096)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for fd in (self.read_fd, self.write_fd):
                with contextlib.suppress(OSError):
                    os.close(fd)


def install(assoc: Any) -> WakePipe:
    """Make ``assoc`` (not yet started) wait for work instead of polling for it.

    Returns the association's wake-up pipe. The DUL loop closes it when it ends;
    once the association is over the caller closes it if the DUL thread is not
    alive (it never ran), never while the loop may still read its descriptors.
    """
    dul = assoc.dul
    pipe = WakePipe()
    outgoing: queue.Queue[Any] = dul.to_provider_queue
    put = outgoing.put

    def put_and_wake(item: Any, block: bool = True, timeout: float | None = None) -> None:
        put(item, block, timeout)
        pipe.wake()

    outgoing.put = put_and_wake  # type: ignore[method-assign]
    # The DUL is a Thread whose target was bound at construction.
    dul._target = functools.partial(_run_dul, dul, pipe)
    assoc._run_reactor = functools.partial(_run_association, assoc)
    messages: queue.Queue[Any] = assoc.dimse.msg_queue

    def get_msg(block: bool = False) -> Any:
        try:
            return messages.get(timeout=assoc.dimse.dimse_timeout if block else IDLE_WAIT)
        except queue.Empty:
            return None, None

    assoc.dimse.get_msg = get_msg
    return pipe


def _wait_for_io(dul: Any, pipe: WakePipe) -> None:
    """Block until the socket is readable, a primitive is queued, or IDLE_WAIT passes."""
    fds: list[Any] = [pipe.read_fd]
    raw = getattr(dul.socket, "socket", None)
    if isinstance(raw, ssl.SSLSocket) and raw.pending():
        return  # TLS bytes already decrypted: select() cannot see them
    if raw is not None and raw.fileno() >= 0:
        fds.append(raw)
    try:
        ready, _, _ = select.select(fds, [], [], IDLE_WAIT)
    except (OSError, ValueError):
        # The socket went away between the check and the select: pynetdicom's
        # own transport check reports it (Evt17) on the next pass.
        time.sleep(dul._run_loop_delay)
        return
    if pipe.read_fd in ready:
        pipe.drain()


def _run_dul(dul: Any, pipe: WakePipe) -> None:
    """``DULServiceProvider.run_reactor`` with a blocking wait in place of the sleep."""
    try:
        dul._idle_timer.start()
        idle = False
        while True:
            if not dul.assoc._dul_ready.is_set():
                dul.assoc._dul_ready.set()
                idle = True
            if idle:
                _wait_for_io(dul, pipe)
            if dul._kill_thread:
                break
            if dul.artim_timer.expired:
                dul.event_queue.put("Evt18")
            try:
                if dul._process_recv_primitive():
                    pass
                elif dul._is_transport_event():
                    dul._idle_timer.restart()
            except Exception:
                logger.exception("DUL reactor failed; aborting the association")
                _abort_hard(dul)
                return
            try:
                event = dul.event_queue.get(block=False)
            except queue.Empty:
                idle = True
                continue
            dul.state_machine.do_action(event)
            idle = False
    finally:
        pipe.close()


def _abort_hard(dul: Any) -> None:
    """What pynetdicom's DUL does on an unexpected error: A-ABORT, bypassing the FSM."""
    abort_pdu = A_ABORT_RQ()
    abort_pdu.source = 0x02
    abort_pdu.reason_diagnostic = 0x00
    with contextlib.suppress(Exception):
        dul.socket.send(abort_pdu.encode())
    dul.assoc.is_aborted = True
    dul.assoc.is_established = False
    dul.assoc._kill = True
    dul._kill_thread = True


def _run_association(assoc: Any) -> None:
    """``Association._run_reactor`` (acceptor loop) without the 1 ms sleep per pass.

    The pass blocks in ``dimse.get_msg`` (up to IDLE_WAIT) instead.
    """
    assoc._is_paused = False
    while not assoc._kill:
        assoc._is_paused = True
        assoc._reactor_checkpoint.wait()
        assoc._is_paused = False

        context_id, msg = assoc.dimse.get_msg(block=False)
        if msg:
            assoc._serve_request(msg, context_id)

        if assoc.is_established and assoc.acse.is_release_requested():
            assoc.acse.send_release(is_response=True)
            logger.debug("association released")
            assoc.is_released = True
            assoc.is_established = False
            evt.trigger(assoc, evt.EVT_RELEASED, {})
            assoc.kill()
            return

        if assoc.acse.is_aborted():
            assoc.dul.receive_pdu(wait=False)
            assoc.is_aborted = True
            assoc.is_established = False
            evt.trigger(assoc, evt.EVT_ABORTED, {})
            assoc.kill()
            return

        if not assoc.dul.is_alive():
            assoc.kill()
            return

        if assoc.dul.idle_timer_expired():
            logger.error("network timeout reached; aborting the association")
            if assoc.network_timeout_response == "A-RELEASE":
                assoc._is_paused = True
                assoc._reactor_checkpoint.wait()
                assoc.release()
                assoc._is_paused = False
            else:
                assoc.abort()
            assoc.kill()
            return
