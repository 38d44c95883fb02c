"""The kill switch over the wire: trading states in the JetStream KV bucket CONTROL.

Every change is a new revision of its key (the bucket keeps the history), so each halt and resume
is a stored event; every risk replica watches the bucket and applies a change as it arrives.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable

from nats.js import JetStreamContext

from actors.domain.risk_state import TradingState
from actors.domain.trading_control import GLOBAL_KEY, TradingControl, account_key
from actors.runtime.alarms import Alarms
from actors.runtime.kv_watch import watch_bucket
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
                        on_change: Callable[[], None] | None = None, alarms: Alarms | None = None) -> None:
    """Keep `control` up to date for as long as the task runs (the initial values first); `on_change`
    is called after each change is applied. A malformed value is refused with an alarm: the last good
    state of that key stays in force, and later changes still apply."""

    def refused(key: str, exc: Exception) -> None:
        if alarms is not None:
            alarms.raise_("control_value_refused", f"{CONTROL_BUCKET} {key}: {exc}; the last good state stays in "
                          "force", severity="critical")

    await watch_bucket(js, CONTROL_BUCKET, control.apply, ready=ready, on_change=on_change, on_refused=refused)
