"""Connections that send nothing are closed: uvicorn's HTTP/1.1 protocol with a deadline
for each request's headers.

uvicorn closes a connection that stays idle *after* a response (its keep-alive timeout),
but not one that opens and then sends nothing, or only part of its headers: a slow or
stalled client -- or many of them -- would hold connections forever.  Here a connection
must deliver a complete request head within :data:`HEADER_TIMEOUT` seconds of opening,
and of every response that leaves it open.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT = 5.0


class TimelyH11Protocol(H11Protocol):
    """:class:`H11Protocol` that closes a connection whose next request head does not
    arrive in time."""

    _head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and not self.cycle.response_complete:
            self._cancel_deadline()  # a request has begun: its head is complete

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _await_head(self) -> None:
        self._cancel_deadline()
        self._head_deadline = self.loop.call_later(HEADER_TIMEOUT, self._close_if_waiting)

    def _cancel_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _close_if_waiting(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()
