"""JetStream publishes whose acknowledgements are awaited together: what a stage's loop stores.

Each message goes out with its own reply subject, `<inbox>.<n>`, and one subscription on `<inbox>.*`
takes the broker's answers (a PubAck, or an error) and settles the message's future. nats-py's
`publish_async` does the same, but for each message it also draws random bytes from the OS (a
system call), takes a semaphore through `asyncio.wait_for` and keeps a done-callback. In a stage that
stores a few thousand messages a second that was 8 to 10% of its CPU.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.errors import APIError, NoStreamResponseError

from actors.runtime.broker import Stored

__all__ = ["AckedPublisher", "Stored", "Submitted"]

_NO_RESPONDERS = "503"
#: Unanswered messages kept before the ones whose waiter gave up are swept.
_SWEEP_AT = 10_000


class AckedPublisher:
    """Publishes to JetStream on one connection and awaits the broker's acknowledgements (the
    `actors.runtime.broker.Publisher` of a real broker; its `Submitted` are the `PendingAcks`)."""

    def __init__(self, nc: Client) -> None:
        self._nc = nc
        self._prefix = ""
        self._next = 0
        self._waiting: dict[str, asyncio.Future[int]] = {}
        self._sub: Subscription | None = None

    async def start(self) -> None:
        """Subscribe for the answers (`send` and `store` do it on first use)."""
        self._prefix = f"{self._nc.new_inbox()}."
        self._sub = await self._nc.subscribe(f"{self._prefix}*", cb=self._answered, pending_msgs_limit=-1,
                                             pending_bytes_limit=-1)

    async def stop(self) -> None:
        if self._sub is not None:
            sub, self._sub = self._sub, None
            await sub.unsubscribe()
        for future in self._waiting.values():
            future.cancel()
        self._waiting.clear()

    def discard(self, tokens: Iterable[str]) -> None:
        """Stop waiting for these messages' answers (settled, or their waiter gave up)."""
        for token in tokens:
            self._waiting.pop(token, None)

    def waiting(self) -> int:
        """Messages sent whose acknowledgement has not come (nor timed out)."""
        return len(self._waiting)

    async def send(self, subject: str, payload: bytes, headers: dict[str, str] | None = None) -> asyncio.Future[int]:
        """Publish one message; the future gets its stream sequence (or the broker's error). The caller
        awaits it with a timeout: an answer that never comes (a lost connection) is swept later."""
        future, _ = await self._send(subject, payload, headers)
        return future

    async def _send(self, subject: str, payload: bytes, headers: dict[str, str] | None
                    ) -> tuple[asyncio.Future[int], str]:
        if self._sub is None:
            await self.start()
        if len(self._waiting) >= _SWEEP_AT:
            self._waiting = {t: f for t, f in self._waiting.items() if not f.done()}
        self._next += 1
        token = str(self._next)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting[token] = future
        try:
            await self._nc.publish(subject, payload, reply=self._prefix + token, headers=headers)
        except BaseException:
            self._waiting.pop(token, None)
            raise
        return future, token

    async def store(self, messages: Iterable[Stored], timeout: float) -> list[int]:
        """Publish every message, then wait for all their acknowledgements; returns their stream
        sequences. Raises the broker's error (`APIError`, `NoStreamResponseError`) or TimeoutError."""
        return await (await self.submit(messages)).wait(timeout)

    async def submit(self, messages: Iterable[Stored]) -> Submitted:
        """Publish every message now; their acknowledgements are awaited later, with `wait`."""
        submitted = Submitted(self)
        try:
            for subject, payload, headers in messages:
                future, token = await self._send(subject, payload, headers)
                submitted.tokens.append(token)
                submitted.futures.append(future)
        except BaseException:
            submitted.forget()
            raise
        return submitted

    async def _answered(self, msg: Msg) -> None:
        future = self._waiting.pop(msg.subject[len(self._prefix):], None)
        if future is None or future.done():
            return  # answered after its wait timed out
        if not msg.data and msg.headers and msg.headers.get("Status") == _NO_RESPONDERS:
            future.set_exception(NoStreamResponseError())
            return
        try:
            answer = json.loads(msg.data)
        except ValueError as exc:
            future.set_exception(exc)
            return
        if "error" in answer:
            try:
                APIError.from_error(answer["error"])  # raises the error's own type (400, 404, 503 ...)
            except APIError as exc:
                future.set_exception(exc)
        else:
            future.set_result(int(answer.get("seq", 0)))


class Submitted:
    """Messages published by `AckedPublisher.submit`, whose acknowledgements are still to be awaited."""

    def __init__(self, publisher: AckedPublisher) -> None:
        self._publisher = publisher
        self.tokens: list[str] = []
        self.futures: list[asyncio.Future[int]] = []

    def __len__(self) -> int:
        return len(self.futures)

    async def wait(self, timeout: float) -> list[int]:
        """Their stream sequences, once the broker acknowledged all of them. Raises the broker's error
        (`APIError`, `NoStreamResponseError`) or TimeoutError. Call it once."""
        try:
            if not self.futures:
                return []
            async with asyncio.timeout(timeout):
                return [await future for future in self.futures]
        finally:
            self.forget()

    def forget(self) -> None:
        self._publisher.discard(self.tokens)
        for future in self.futures:  # the first error is raised; the others count as seen, not as lost
            if future.done() and not future.cancelled():
                future.exception()
