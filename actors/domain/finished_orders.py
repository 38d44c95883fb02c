"""The venue's memory of finished client orders, kept encoded.

A finished order never changes again; the venue only needs it to answer a duplicate new-order request,
a status request or a cancel of it, which are rare. So each one is kept as its snapshot entry, already
encoded (`["<cl_ord_id>",<epoch>,"<the order and its reports as a JSON string>"]`), and decoded only
when asked about. A snapshot joins these bytes as they are; a restore reads them back as strings
without building a model of any of them. Against keeping pydantic models, a remembered order takes
about a fifth of the memory and a restore does no per-order validation (see bench/venue_restart.py).

`epoch` is the count of ends of day when the order finished: the venue forgets an order at the second
end of day after it finished.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

from pydantic import TypeAdapter

from messages.venue import ExecReport, NewOrderSingle

__all__ = ["FinishedOrders"]

_quote = encode_basestring_ascii

_ENTRY: TypeAdapter[tuple[NewOrderSingle, list[ExecReport]]] = TypeAdapter(tuple[NewOrderSingle, list[ExecReport]])


def _frame(cl_ord_id: str, epoch: int, text: str) -> bytes:
    """`json.dumps([cl_ord_id, epoch, text])`, compact, the fast way (the C string encoder alone)."""
    return b"[%s,%d,%s]" % (_quote(cl_ord_id).encode(), epoch, _quote(text).encode())


class FinishedOrders:
    """cl_ord_id -> (epoch it finished in, its encoded snapshot entry)."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[int, bytes]] = {}

    def __contains__(self, cl_ord_id: object) -> bool:
        return cl_ord_id in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def ids(self) -> list[str]:
        return list(self._entries)

    def add(self, order: NewOrderSingle, history: Sequence[ExecReport], epoch: int) -> None:
        text = _ENTRY.dump_json((order, list(history))).decode()
        self._entries[order.cl_ord_id] = (epoch, _frame(order.cl_ord_id, epoch, text))

    def get(self, cl_ord_id: str) -> tuple[NewOrderSingle, tuple[ExecReport, ...]] | None:
        """The order and every report of it, or None when it is not here."""
        found = self._entries.get(cl_ord_id)
        if found is None:
            return None
        order, history = _ENTRY.validate_json(json.loads(found[1])[2])
        return order, tuple(history)

    def forget_before(self, epoch: int) -> int:
        """Forget the orders that finished before `epoch`; how many were forgotten."""
        stale = [cl_ord_id for cl_ord_id, (finished, _) in self._entries.items() if finished < epoch]
        for cl_ord_id in stale:
            del self._entries[cl_ord_id]
        return len(stale)

    # --- snapshots -----------------------------------------------------------------------------

    def to_json(self) -> list[list[Any]]:
        """JSON-safe: one `[cl_ord_id, epoch, text]` per order, in the order they finished."""
        return [json.loads(entry) for _, entry in self._entries.values()]

    def encoded(self) -> bytes:
        """`to_json()` as compact JSON (a list), joined from the stored entries."""
        return b"[%s]" % b",".join(entry for _, entry in self._entries.values())

    @classmethod
    def from_json(cls, entries: Iterable[Any]) -> FinishedOrders:
        """What `to_json` (or `encoded`, parsed) gave. Checks each entry's shape, not its content (that is
        validated when the order is asked about). Raises ValueError for a malformed entry."""
        out = cls()
        for entry in entries:
            if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)
                    and isinstance(entry[1], int) and isinstance(entry[2], str)):
                raise ValueError(f"malformed finished-order entry in a venue snapshot: {str(entry)[:200]}")
            cl_ord_id, epoch, text = entry
            out._entries[cl_ord_id] = (epoch, _frame(cl_ord_id, epoch, text))
        return out

    def add_decoded(self, order: dict[str, Any], history: list[Any], epoch: int) -> None:
        """An order from a snapshot of the earlier shape (JSON-safe data, not validated here)."""
        text = json.dumps([order, history], separators=(",", ":"))
        self._entries[str(order["cl_ord_id"])] = (epoch, _frame(str(order["cl_ord_id"]), epoch, text))
