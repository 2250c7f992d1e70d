"""What an assignment costs in database commands, counted by a CommandListener."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.registry.commands import CommandTally, counted_client
from tests.registry.conftest import RegistryHarness, make_world
from tests.registry.test_assignment import mediator, organisations, registered

pytestmark = pytest.mark.integration

CASES = 20


def _report(label: str, seen: Counter[tuple[str, str]], assigned: int) -> float:
    total = sum(seen.values())
    writes = CommandTally.writes(seen)
    print(
        f"\n{label}: {total / assigned:.1f} commands per assignment ({writes / assigned:.1f} writes); "
        f"{dict(sorted(seen.items()))}"
    )
    return total / assigned


async def test_commands_per_assignment(registry: RegistryHarness) -> None:
    tally = CommandTally()
    client = counted_client(registry.settings, tally)
    try:
        world = await make_world(registry, mongo=client)
        await organisations(world)
        for n in range(4):
            await mediator(world, f"m-{n}", capacity=50)
        one = [registered(f"c-one-{n}") for n in range(CASES)]
        with tally.counting() as single:
            for event in one:
                await world.assignments.case_registered(event=event, case=event.payload())  # type: ignore[arg-type]
        assert len(await world.assignments.repo.decisions.find({}).to_list()) == CASES
        alone = _report("one at a time", single, CASES)
        many = [registered(f"c-batch-{n}") for n in range(CASES)]
        with tally.counting() as batch:
            await world.assignments.case_events(events=[(e, e.payload()) for e in many])  # type: ignore[misc]
        assert len(await world.assignments.repo.decisions.find({}).to_list()) == 2 * CASES
        together = _report(f"one batch of {CASES}", batch, CASES)
        revisions = sum(n for (name, c), n in batch.items() if name == "insert" and c.endswith("_revisions"))
        print(f"claim commands for the batch: {revisions}")
        # Not a timing: the batch reads and claims once what the one-case path does per case.
        assert together < alone / 2
    finally:
        await client.close()
