"""Database commands per case event, one event at a time against one batch: the batch
path reads each case once, claims every revision in one insert and writes the recount
marks and party records together (counts of commands, never times)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from tests.stats.costs import Cost, measure, workload
from tiaojie.contracts.envelope import EventData
from tiaojie.runtime.settings import RuntimeSettings
from tiaojie.stats.handlers import dispatch
from tiaojie.stats.service import StatsService

pytestmark = pytest.mark.integration


async def one_by_one(service: StatsService, events: Sequence[EventData]) -> None:
    for data in events:
        await dispatch(service, data)


async def one_batch(service: StatsService, events: Sequence[EventData]) -> None:
    await service.case_events(events=events)


def show(label: str, cost: Cost) -> str:
    lines = [f"{label}: {cost.total:.0f} commands for {cost.events} events, {cost.per_event:.2f} per event"]
    lines += [f"    {k}: {v:.0f}" for k, v in sorted(cost.commands.items())]
    return "\n".join(lines)


async def test_a_batch_costs_fewer_commands_per_event(settings: RuntimeSettings) -> None:
    events = workload()
    single, single_again = await measure(settings, events, one_by_one)
    batch, batch_again = await measure(settings, events, one_batch)
    print()
    for label, cost in [
        ("one by one", single),
        ("one by one, redelivered", single_again),
        ("one batch", batch),
        ("one batch, redelivered", batch_again),
    ]:
        print(show(label, cost))
    assert batch.total < single.total / 2
    assert batch_again.total < single_again.total / 2
    # Each case is read and claimed once per batch, whatever number of its events it holds.
    cases = len({e.case_id for e in events})  # type: ignore[attr-defined]
    assert batch.commands.get("find cases", 0) <= cases
    assert batch.commands.get("insert cases_revisions", 0) <= 2  # one insert_many (chunks of 100)
