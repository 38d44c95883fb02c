"""Continuous pull from a durable JetStream consumer, with backpressure and reconnect handling.

nats-py's `fetch(batch)` waits for the whole batch (or its timeout) once the first message of a
lingering request has arrived, which adds the timeout to latency when traffic is light. This keeps
one pull request outstanding instead: the server pushes each message to it as soon as it is stored,
and a new request is sent when the previous one is used up, expires, or the connection comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

__all__ = ["PullConsumer"]

log = logging.getLogger(__name__)

_STATUS = "Status"
_HEARTBEAT = "100"


class PullConsumer:
    """Messages of one durable consumer, taken in batches from an in-process buffer (the
    `actors.runtime.broker.PullSource` of a real broker; its messages are nats-py's `Msg`)."""

    def __init__(self, nc: Client, stream: str, durable: str, batch: int, expires: float = 2.0) -> None:
        self._nc = nc
        self._subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self.stream = stream
        self.durable = durable
        self._batch = batch
        self._expires = expires
        self._buffer: asyncio.Queue[Msg] = asyncio.Queue()
        self._space = asyncio.Event()
        self._request_done = asyncio.Event()
        self._requested = 0
        self._received = 0
        self._sub: Subscription | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._closed = False
        self._running = asyncio.Event()
        self._running.set()
        self.last_status: str | None = None

    async def start(self) -> None:
        inbox = self._nc.new_inbox()
        self._sub = await self._nc.subscribe(inbox, cb=self._on_msg, pending_msgs_limit=-1,
                                             pending_bytes_limit=-1)
        self._inbox = inbox
        self._pump_task = asyncio.create_task(self._pump(), name=f"pull-{self.durable}")

    def pause(self) -> None:
        """Stop asking for more messages (those already buffered stay buffered)."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def buffered_msgs(self) -> list[Msg]:
        return list(self._buffer._queue)  # type: ignore[attr-defined]

    def wake(self) -> None:
        """Send a fresh pull request now (after a reconnect the server forgot the old one)."""
        self._request_done.set()

    async def _on_msg(self, msg: Msg) -> None:
        status = msg.headers.get(_STATUS) if msg.headers and not msg.data else None
        if status is not None:
            if status != _HEARTBEAT:
                # 404 no messages, 408 request expired, 409 limits/leadership/consumer deleted.
                self.last_status = f"{status} {msg.headers.get('Description', '') if msg.headers else ''}"
                if status == "409":
                    log.info("pull %s: %s", self.durable, self.last_status)
                self._request_done.set()
            return
        self._received += 1
        self._buffer.put_nowait(msg)
        if self._received >= self._requested:
            self._request_done.set()

    async def _pump(self) -> None:
        expires_ns = int(self._expires * 1e9)
        while not self._closed:
            await self._running.wait()
            while self._buffer.qsize() >= self._batch and not self._closed:
                self._space.clear()
                await self._space.wait()
            want = self._batch - self._buffer.qsize()
            self._requested, self._received = want, 0
            self._request_done.clear()
            request = json.dumps({"batch": want, "expires": expires_ns}).encode()
            try:
                await self._nc.publish(self._subject, request, reply=self._inbox)
            except Exception as exc:  # closed or reconnecting: try again shortly
                log.debug("pull %s: request failed: %s", self.durable, exc)
                await asyncio.sleep(0.1)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._request_done.wait(), self._expires + 0.5)
            if self.last_status and self.last_status.startswith("409"):
                await asyncio.sleep(0.05)  # e.g. max ack pending reached: do not spin

    async def next_batch(self, max_n: int, timeout: float) -> list[Msg]:
        """Up to `max_n` messages: waits up to `timeout` for the first, then takes what is buffered."""
        if self._buffer.empty():
            try:
                async with asyncio.timeout(timeout):  # no task per call, unlike wait_for
                    first = await self._buffer.get()
            except TimeoutError:
                return []
        else:
            first = self._buffer.get_nowait()
        msgs = [first]
        while len(msgs) < max_n and not self._buffer.empty():
            msgs.append(self._buffer.get_nowait())
        self._space.set()
        return msgs

    def buffered(self) -> int:
        return self._buffer.qsize()

    async def stop(self) -> list[Msg]:
        """Stop pulling; returns messages buffered but not handed out (the caller naks them)."""
        self._closed = True
        self._running.set()
        self._space.set()
        self._request_done.set()
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._pump_task
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
        left = []
        while not self._buffer.empty():
            left.append(self._buffer.get_nowait())
        return left
