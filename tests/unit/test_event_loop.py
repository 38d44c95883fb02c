"""The processes the system starts outside Ray run on uvloop unless switched off."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from actors.runtime import event_loop


async def _loop_type() -> type:
    return type(asyncio.get_running_loop())


def test_run_uses_uvloop_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(event_loop.ENV_SWITCH, raising=False)
    assert event_loop.run(_loop_type()) is uvloop.Loop


def test_run_falls_back_to_asyncio_when_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(event_loop.ENV_SWITCH, "0")
    assert not issubclass(event_loop.run(_loop_type()), uvloop.Loop)


def test_new_event_loop_follows_the_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(event_loop.ENV_SWITCH, "off")
    loop = event_loop.new_event_loop()
    try:
        assert not isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def test_run_returns_the_coroutines_result() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert event_loop.run(answer()) == 42
