"""Watching a KV bucket for as long as a task runs, without ever dying quietly.

Each entry is handed to `apply`. A value `apply` refuses (it raises) is reported to `on_refused` (an
alarm, a log line) and skipped: the last good value stays in force and the watch goes on. If the watch
itself fails (the broker went away, the bucket is being recreated), it is started again after a short
wait, and the current values are applied again first. A watch is an ephemeral consumer, which a broker
restart loses: while no change comes, the watch checks every `check_s` that its consumer still exists,
and starts again when it does not (nats-py's own check takes two missed heartbeats, 10 s, and can die
with the connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from nats.js import JetStreamContext

__all__ = ["watch_bucket"]

log = logging.getLogger(__name__)


class _WatchEnded(Exception):
    """The watcher was stopped under us (by the client library): start another."""


async def watch_bucket(js: JetStreamContext, bucket: str, apply: Callable[[str, bytes | None], None], *,
                       ready: asyncio.Event | None = None, on_change: Callable[[], None] | None = None,
                       on_refused: Callable[[str, Exception], None] | None = None, retry_s: float = 1.0,
                       check_s: float = 2.0) -> None:
    """Apply every entry of `bucket` (a deleted key as None) until cancelled; `ready` is set once the
    values present at the start are applied, `on_change` is called after each entry applied."""
    while True:
        try:
            await _watch_once(js, bucket, apply, ready, on_change, on_refused, check_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("watch of %s ended (%r); starting it again in %.1fs", bucket, exc, retry_s)
        await asyncio.sleep(retry_s)


async def _watch_once(js: JetStreamContext, bucket: str, apply: Callable[[str, bytes | None], None],
                      ready: asyncio.Event | None, on_change: Callable[[], None] | None,
                      on_refused: Callable[[str, Exception], None] | None, check_s: float) -> None:
    kv = await js.key_value(bucket)
    watcher = await kv.watchall()
    try:
        while True:
            try:
                entry = await asyncio.wait_for(watcher._updates.get(), check_s)  # the watcher's own queue
            except TimeoutError:
                await watcher._sub.consumer_info()  # raises when the broker lost the consumer: start again
                continue
            if entry is None:  # the end of the values present at the start
                if ready is not None:
                    ready.set()
                continue
            if not hasattr(entry, "key"):
                raise _WatchEnded(bucket)
            try:
                apply(entry.key, entry.value if entry.operation is None else None)
            except Exception as exc:  # a bad value: refused, the last good state stays
                if on_refused is not None:
                    on_refused(entry.key, exc)
                else:
                    log.warning("%s: value of %s refused: %r", bucket, entry.key, exc)
                continue
            if on_change is not None:
                on_change()
    finally:
        with contextlib.suppress(Exception):
            await watcher.stop()
