"""Limits on request bodies, enforced before any of the body is parsed.

A declared ``Content-Length`` over the limit is refused at once; a body sent without
one (chunked) is counted as it arrives and refused as soon as it passes the limit, so
no request can make the server buffer more than ``max_bytes``.  A body that stops
arriving -- no part of it for ``idle_seconds`` -- is answered 408 rather than waited for
forever (a slow upload that keeps moving is fine).
"""

from __future__ import annotations

import json

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    pass


class BodyStalled(Exception):
    pass


class BodySizeLimit:
    """ASGI middleware answering 413 for request bodies over ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int, idle_seconds: float = 10.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.idle_seconds = idle_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            try:
                with anyio.fail_after(self.idle_seconds):
                    message = await receive()
            except TimeoutError:
                raise BodyStalled from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started |= message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not response_started:
                await self._refuse(send)
        except BodyStalled:
            if not response_started:
                detail = f"no part of the request body arrived for {self.idle_seconds:g} s"
                await _answer(send, 408, detail)

    async def _refuse(self, send: Send) -> None:
        await _answer(send, 413, f"request body too large (limit {self.max_bytes} bytes)")


async def _answer(send: Send, status: int, detail: str) -> None:
    """A JSON error answer ``{"detail": ...}`` sent straight through ASGI."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps({"detail": detail}).encode()})
