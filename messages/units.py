"""Human units in config files: durations ("250ms", "5s", "7d") and byte sizes ("10GiB")."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator

__all__ = ["ByteSize", "Duration", "parse_bytes", "parse_duration"]

_DUR = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ns|us|ms|s|m|h|d)?\s*$")
_DUR_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?\s*$")
_SIZE_UNITS = {
    None: 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
    "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40,
}


def parse_duration(value: Any) -> float:
    """Seconds from a number (seconds) or a string with a unit: ns, us, ms, s, m, h, d."""
    if isinstance(value, bool):
        raise ValueError("a duration must be a number of seconds or a string such as '250ms'")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DUR.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration (examples: 250ms, 5s, 2m, 7d)")
        seconds = float(match.group(1)) * _DUR_UNITS[match.group(2)]
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError("a duration must be a finite, non-negative number of seconds")
    return seconds


def parse_bytes(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("a size must be a number of bytes or a string such as '10GiB'")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a size (examples: 512MiB, 10GiB)")
        size = int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])
    if size <= 0:
        raise ValueError("a size must be positive")
    return size


Duration = Annotated[float, BeforeValidator(parse_duration)]
ByteSize = Annotated[int, BeforeValidator(parse_bytes)]
