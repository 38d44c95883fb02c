"""The positions projection: event sourced from executions, snapshotted, rebuildable.

State = the last snapshot (a PositionBook and the EXECUTIONS stream sequence it covers) + every
fill after it, read through an ordered consumer. The snapshot is the commit point, so a restarted
projection resumes exactly where its state ends. Queries are answered on `query.positions`.
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from actors.domain.positions import PositionBook
from actors.runtime.snapshot_codec import pack, unpack
from messages import DecodeError, OrderFilled, decode

__all__ = [
    "POSITIONS_BUCKET",
    "QUERY_SUBJECT",
    "SNAPSHOT_KEY",
    "PositionsProjection",
    "fold",
    "positions_rows",
]

log = logging.getLogger(__name__)

POSITIONS_BUCKET = "POSITIONS"
SNAPSHOT_KEY = "book"
QUERY_SUBJECT = "query.positions"


def fold(book: PositionBook, data: bytes) -> bool:
    """Apply one EXECUTIONS message to the book; True when it changed the book."""
    try:
        _, event = decode(data)
    except DecodeError:
        return False  # not an event: the stages dead-letter such messages
    if not isinstance(event, OrderFilled):
        return False
    return book.apply_fill(event.account, event.symbol, event.side, event.last_qty, event.last_px, event.exec_id)


def positions_rows(book: PositionBook, account: str | None = None) -> list[dict[str, Any]]:
    return [
        {"account": acct, "symbol": sym, "quantity": p.quantity, "avg_cost": str(p.avg_cost),
         "realised": str(p.realised), "cost": str(p.cost)}
        for (acct, sym), p in book.positions(account).items()
    ]


class PositionsProjection:
    def __init__(self, nc: Client, js: JetStreamContext, snapshot_every: int = 5000) -> None:
        self._nc = nc
        self._js = js
        self._snapshot_every = snapshot_every
        self.book = PositionBook()
        self.seq = 0  # the last EXECUTIONS sequence folded into the book
        self._since_snapshot = 0
        self._subs: list[Any] = []

    async def load_snapshot(self) -> int:
        kv = await self._js.key_value(POSITIONS_BUCKET)
        try:
            entry = await kv.get(SNAPSHOT_KEY)
        except NotFoundError:
            return 0
        data = unpack(entry.value)
        self.book = PositionBook.restore(data["book"])
        self.seq = int(data["seq"])
        return self.seq

    async def snapshot(self) -> None:
        kv = await self._js.key_value(POSITIONS_BUCKET)
        await kv.put(SNAPSHOT_KEY, pack({"seq": self.seq, "book": self.book.snapshot()}))
        self._since_snapshot = 0

    async def start(self) -> None:
        await self.load_snapshot()
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self.seq + 1)
        self._subs.append(await self._js.subscribe("executions.>", stream="EXECUTIONS", cb=self._on_msg,
                                                   ordered_consumer=True, config=config, idle_heartbeat=2.0))
        self._subs.append(await self._nc.subscribe(QUERY_SUBJECT, cb=self._on_query))

    async def _on_msg(self, msg: Msg) -> None:
        fold(self.book, msg.data)
        self.seq = msg.metadata.sequence.stream
        self._since_snapshot += 1
        if self._since_snapshot >= self._snapshot_every:
            try:
                await self.snapshot()
            except Exception as exc:  # the next one will be taken; state is safe in the stream
                log.warning("positions snapshot failed: %r", exc)

    async def _on_query(self, msg: Msg) -> None:
        request = json.loads(msg.data or b"{}") if msg.data else {}
        rows = positions_rows(self.book, request.get("account"))
        marks = {k: Decimal(v) for k, v in (request.get("marks") or {}).items()}
        for row in rows:
            if row["symbol"] in marks:
                position = self.book.position(row["account"], row["symbol"])
                row["unrealised"] = str(position.unrealised(marks[row["symbol"]]))
        await msg.respond(json.dumps({"seq": self.seq, "positions": rows,
                                      "book": self.book.snapshot() if request.get("full") else None}).encode())

    async def stop(self) -> None:
        for sub in self._subs:
            try:
                await sub.unsubscribe()
            except Exception as exc:
                log.debug("unsubscribe: %r", exc)
        await self.snapshot()
