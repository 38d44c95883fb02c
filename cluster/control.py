"""The kill switch over the wire: trading states in the JetStream KV bucket CONTROL.

Every change is a new revision of its key (the bucket keeps the history), so each halt and resume
is a stored event; every risk replica watches the bucket and applies a change as it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable

from nats.js import JetStreamContext

from actors.risk_state import TradingState
from actors.trading_control import GLOBAL_KEY, TradingControl, account_key
from messages import MSG_ID_HEADER, TradingStateChanged, derive_event_id, encode, subjects, wrap

__all__ = ["CONTROL_BUCKET", "set_trading_state", "watch_control"]

log = logging.getLogger(__name__)

CONTROL_BUCKET = "CONTROL"


async def set_trading_state(js: JetStreamContext, state: TradingState, account: str | None = None,
                            reason: str = "") -> int:
    """Store the change in the CONTROL bucket (what every risk replica and gateway watch) and publish it
    as a TradingStateChanged event on `control.trading`; returns the bucket revision."""
    kv = await js.key_value(CONTROL_BUCKET)
    key = account_key(account) if account else GLOBAL_KEY
    reason = reason or f"set to {state.value} by an operator"
    value = {"state": state.value, "reason": reason, "ts": time.time_ns()}
    revision = int(await kv.put(key, json.dumps(value).encode()))
    event = TradingStateChanged(account=account, state=state.value, reason=reason)
    envelope = wrap(event, event_id=derive_event_id(CONTROL_BUCKET, key, str(revision)))
    await js.publish(subjects.control_trading(), encode(envelope), headers={MSG_ID_HEADER: str(envelope.event_id)})
    return revision


async def watch_control(js: JetStreamContext, control: TradingControl, ready: asyncio.Event | None = None,
                        on_change: Callable[[], None] | None = None) -> None:
    """Keep `control` up to date for as long as the task runs (the initial values first); `on_change`
    is called after each change is applied."""
    kv = await js.key_value(CONTROL_BUCKET)
    watcher = await kv.watchall()
    try:
        while True:
            entry = await watcher._updates.get()  # the watcher's own queue: no timeout between changes
            if entry is None:  # the end of the initial values
                if ready is not None:
                    ready.set()
                continue
            if not hasattr(entry, "key"):
                return  # stopped
            control.apply(entry.key, entry.value if entry.operation is None else None)
            if on_change is not None:
                on_change()
    finally:
        with contextlib.suppress(Exception):
            await watcher.stop()
