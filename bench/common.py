"""What every benchmark shares: run the measuring body, write the JSON, and stop everything it
started, also on failure, Ctrl-C or SIGTERM."""

from __future__ import annotations

import json
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console

from actors.runtime.event_loop import uses_uvloop
from cluster.config import SystemConfig, VenueMode, load_config

__all__ = ["Closable", "bench_config", "fmt", "fmt_latency", "raise_interrupt", "ratio", "run_guarded",
           "write_results"]


class Closable(Protocol):
    def close(self) -> list[str]: ...


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b to 3 places; None when either is missing or b is 0."""
    return round(a / b, 3) if a is not None and b not in (None, 0) else None


def fmt(value: Any, nd: int = 1, suffix: str = "") -> str:
    """A figure for a table: '-' when missing, thousands separated, floats to `nd` places."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{nd}f}{suffix}"
    return f"{value:,}{suffix}"


def fmt_latency(d: dict[str, Any]) -> str:
    """'p50 / p99 / p99.9' of a step's latency figures, in ms."""
    return " / ".join(fmt(d.get(f"latency_{q}_ms"), 1) for q in ("p50", "p99", "p999"))


def raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def write_results(console: Console, results: dict[str, Any], out: str, suffix: str = "") -> Path:
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    results.setdefault("event_loop", "uvloop" if uses_uvloop() else "asyncio")
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    console.print(f"wrote {path}{suffix}")
    return path


def run_guarded(console: Console, stack: Closable, base: Path, keep_logs: bool, body: Callable[[], None],
                stopping: str) -> int:
    """Run `body`; exit code 0, 130 (interrupted) or 1. The stack is closed in every case; its logs
    (under `base`) are removed after a clean run unless `keep_logs`."""
    previous_term = signal.signal(signal.SIGTERM, raise_interrupt)
    ok = False
    try:
        body()
        ok = True
        return 0
    except KeyboardInterrupt:
        console.print("[red]interrupted[/red]: stopping everything this benchmark started")
        return 130
    except Exception:
        console.print_exception(max_frames=8)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        with console.status(stopping):
            problems = stack.close()
        for problem in problems:
            console.print(f"[yellow]cleanup[/yellow] {problem}")
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, previous_term)
        if ok and not keep_logs:
            shutil.rmtree(base, ignore_errors=True)
        else:
            console.print(f"logs kept in {base}")


def bench_config(path: str, name: str) -> SystemConfig:
    """The system's config for a benchmark: its own name, and every venue in fill_all mode (every order
    fills at once, so the figures measure the pipeline, not the order book's liquidity)."""
    cfg = load_config(path)
    return cfg.model_copy(update={
        "name": name,
        "venues": {v: vc.model_copy(update={"mode": VenueMode.FILL_ALL}) for v, vc in cfg.venues.items()},
    })
