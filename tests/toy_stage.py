"""A stage that exists only for the tests: it sees every order and publishes one event per order to a
stream of its own. One module (this) plus one registry entry (in the test) is all it takes."""

from __future__ import annotations

from actors.domain.settings import Settings
from actors.runtime.stage import InputMeta, Outgoing
from actors.stages.definition import Built, Consumes, Handler, StageDef, StageRun
from messages import AlarmRaised, Envelope, Event, OrderReceived, subjects, wrap

__all__ = ["TOY", "ToySettings"]


class ToySettings(Settings):
    tag: str = "seen"
    partitions: int = 1


class Tagger:
    stage = "toy"
    concurrent = False

    def __init__(self, settings: ToySettings) -> None:
        self._settings = settings

    async def handle(self, envelope: Envelope, event: Event, meta: InputMeta) -> list[Outgoing]:
        if not isinstance(event, OrderReceived):
            return []
        partition = subjects.partition_of(event.account, self._settings.partitions)
        seen = AlarmRaised(order_id=event.order_id, source="toy", kind="toy", detail=f"{self._settings.tag}")
        return [Outgoing(f"toy.{self._settings.tag}.{partition}", wrap(seen, cause=envelope))]


async def build(run: StageRun) -> Built:
    return Built({"orders": Handler(Tagger(run.settings))})


TOY = StageDef(
    name="toy",
    scope="partition",
    consumes=(Consumes("orders", "ORDERS_RECEIVED", "orders.received.{partition}", "toy-p{partition}"),),
    publishes=("toy.>",),
    settings=ToySettings,
    build=build,
    streams=(("TOY", ("toy.>",)),),
)
