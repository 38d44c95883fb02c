"""The supervision tree's state in the KV bucket SUPERVISION, for the next incarnation of the root:
the plan, the core's snapshot (children's actor names, states and counters) and the spares' names.
After a restart, the root adopts what still runs from it; actors of the system that nobody
supervises any more (e.g. a replacement the old root started but had not recorded) are killed."""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

import ray

from supervision.nats import NatsLink

__all__ = ["STATE_BUCKET", "StateStore"]

log = logging.getLogger(__name__)

STATE_BUCKET = "SUPERVISION"


class StateStore:
    def __init__(self, link: NatsLink, key: str = "root") -> None:
        self._link = link
        self._key = key

    async def save(self, state: dict[str, Any]) -> bool:
        """True when saved; a failure is logged (the next change saves again)."""
        try:
            kv = await (await self._link.jetstream()).key_value(STATE_BUCKET)
            await kv.put(self._key, json.dumps(state).encode())
            return True
        except Exception as exc:
            log.warning("supervision state not saved: %r", exc)
            return False

    async def load(self) -> dict[str, Any] | None:
        """The saved state, or None (a fresh deployment)."""
        kv = await (await self._link.jetstream()).key_value(STATE_BUCKET)
        try:
            entry = await kv.get(self._key)
        except Exception:
            return None
        state = json.loads(entry.value or b"{}")
        return state if isinstance(state, dict) else None

    async def forget(self) -> None:
        with contextlib.suppress(Exception):
            kv = await (await self._link.jetstream()).key_value(STATE_BUCKET)
            await kv.delete(self._key)

    @staticmethod
    def kill_strays(system: str, namespace: str, keep: set[str]) -> list[str]:
        """Kill the system's named actors (`<system>-...` in its namespace) that are not in `keep`, so
        no partition has two consumers. Returns their names."""
        from ray.util import list_named_actors

        killed = []
        for entry in list_named_actors(all_namespaces=True):
            name = entry["name"] if isinstance(entry, dict) else entry
            ns = entry.get("namespace") if isinstance(entry, dict) else namespace
            if ns == namespace and name.startswith(f"{system}-") and name not in keep:
                with contextlib.suppress(Exception):
                    ray.kill(ray.get_actor(name, namespace=namespace), no_restart=True)
                    log.warning("killed stray actor %s", name)
                    killed.append(name)
        return killed
