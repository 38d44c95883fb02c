"""Querying the live positions projection, and rebuilding it from the log to check it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import NotFoundError

from actors.domain.positions import PositionBook
from actors.runtime.refprices import read_reference_prices
from actors.runtime.snapshot_codec import unpack
from actors.runtime.streams import read_stream
from actors.stages.positions import (
    POSITIONS_BUCKET,
    QUERY_SUBJECT,
    SNAPSHOT_KEY,
    fold,
    positions_rows,
)
from cluster.client.errors import TradingError

__all__ = ["ProjectionUnavailable", "RebuildResult", "query_positions", "rebuild", "verify"]


class ProjectionUnavailable(TradingError):
    """The positions projection did not answer."""


@dataclass
class RebuildResult:
    equal: bool
    seq: int
    from_snapshot_seq: int
    live_rows: list[dict[str, Any]] = field(default_factory=list)
    rebuilt_rows: list[dict[str, Any]] = field(default_factory=list)

    def differences(self) -> list[dict[str, Any]]:
        live = {(r["account"], r["symbol"]): r for r in self.live_rows}
        rebuilt = {(r["account"], r["symbol"]): r for r in self.rebuilt_rows}
        return [{"account": k[0], "symbol": k[1], "live": live.get(k), "rebuilt": rebuilt.get(k)}
                for k in sorted(set(live) | set(rebuilt)) if live.get(k) != rebuilt.get(k)]


async def query_positions(nc: Client, account: str | None = None, full: bool = False,
                          timeout: float = 5.0, marks: dict[str, Decimal] | None = None) -> dict[str, Any]:
    """The live positions (quantity, average cost, realised P&L) with unrealised P&L at the venues'
    reference prices (`marks` overrides them); each row carries the mark it used."""
    if marks is None:
        marks = (await read_reference_prices(nc.jetstream())).by_symbol()
    request = json.dumps({"account": account, "full": full,
                          "marks": {k: str(v) for k, v in marks.items()}}).encode()
    try:
        reply = await nc.request(QUERY_SUBJECT, request, timeout=timeout)
    except (NatsTimeout, TimeoutError, NoRespondersError) as exc:
        raise ProjectionUnavailable(f"the positions projection did not answer ({type(exc).__name__})") from exc
    result = json.loads(reply.data)
    for row in result["positions"]:
        row["mark"] = str(marks[row["symbol"]]) if row["symbol"] in marks else None
    return result


async def rebuild(nc: Client, until_seq: int | None = None, from_snapshot: bool = False) -> tuple[PositionBook, int]:
    """Fold EXECUTIONS from the start (or from the last snapshot) up to `until_seq` (default: all)."""
    js = nc.jetstream()
    book, start = PositionBook(), 0
    if from_snapshot:
        kv = await js.key_value(POSITIONS_BUCKET)
        try:
            data = unpack((await kv.get(SNAPSHOT_KEY)).value)
            book, start = PositionBook.restore(data["book"]), int(data["seq"])
        except NotFoundError:
            pass
    for msg in await read_stream(js, "EXECUTIONS"):
        if msg.seq <= start or (until_seq is not None and msg.seq > until_seq):
            continue
        fold(book, msg.data)
    return book, start


async def verify(nc: Client, from_snapshot: bool = False) -> RebuildResult:
    """Rebuild up to exactly the sequence the live projection has folded, and compare."""
    live = await query_positions(nc, full=True)
    live_book = PositionBook.restore(live["book"])
    rebuilt, start = await rebuild(nc, until_seq=live["seq"], from_snapshot=from_snapshot)
    return RebuildResult(equal=rebuilt == live_book, seq=live["seq"], from_snapshot_seq=start,
                         live_rows=positions_rows(live_book), rebuilt_rows=positions_rows(rebuilt))
