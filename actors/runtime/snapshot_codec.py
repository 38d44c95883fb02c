"""How state snapshots are stored in KV: zlib-compressed JSON (plain JSON, as earlier versions wrote,
still reads)."""

from __future__ import annotations

import contextlib
import json
import zlib
from typing import Any

__all__ = ["pack", "unpack"]


def pack(data: dict[str, Any]) -> bytes:
    # Level 1: 2.5 times faster than the default for 7% more bytes (a snapshot blocks its event loop).
    return zlib.compress(json.dumps(data).encode(), 1)


def unpack(value: bytes | None) -> dict[str, Any]:
    raw = value or b"{}"
    with contextlib.suppress(zlib.error):
        raw = zlib.decompress(raw)
    return dict(json.loads(raw))
