"""Fairness over time against the real database: 1,000 assignments among equally suited
mediators, some of whom close their cases quickly and some never."""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest

from tests.registry.conftest import RegistryHarness, make_world
from tests.registry.test_assignment import COUNTY, mediator, organisations, registered
from tiaojie.contracts.common import CaseStatus
from tiaojie.contracts.envelope import new_event
from tiaojie.contracts.intake import CaseResolved
from tiaojie.infra import synthetic

# A thousand real assignments in batches, as the consumer hands them over: each batch is
# planned against one read of the ledgers (counting its own plans), so fairness must hold
# across a batch as well as between batches.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

ASSIGNMENTS = 1000
BATCH = 20


async def test_one_thousand_assignments_are_spread_evenly(registry: RegistryHarness) -> None:
    world = await make_world(registry)
    await organisations(world)
    rng = random.Random(1000)
    # Five equally suited mediators: same grade, no specialty, room for every case.
    speeds = {"m-fast": 1.0, "m-quick": 0.7, "m-steady": 0.4, "m-slow": 0.1, "m-never": 0.0}
    for name in speeds:
        await mediator(world, name, id_number=synthetic.id_number(rng, COUNTY), capacity=500)
    received: Counter[str] = Counter()
    started = time.perf_counter()
    for start in range(0, ASSIGNMENTS, BATCH):
        events = [registered(f"fair-{n}") for n in range(start, start + BATCH)]
        await world.assignments.case_events(events=[(e, e.payload()) for e in events])  # type: ignore[misc]
        closings = []
        stored = await world.assignments.repo.case_store.get_many([e.subject or "" for e in events])
        for e in events:
            case = stored[e.subject or ""]
            assert case.get("mediator_id") is not None
            received[case["mediator_id"]] += 1
            # Mediators close their cases at very different rates: load alone would favour the fast.
            if rng.random() < speeds[case["mediator_id"]]:
                data = CaseResolved(
                    case_id=case["_id"],
                    county=COUNTY,
                    status=CaseStatus.RESOLVED,
                    at=world.clock.now(),
                    agreement_form="oral",
                )
                closings.append((new_event(data, source="/tiaojie/intake", subject=case["_id"]), data))
        await world.assignments.case_events(events=closings)
    elapsed = time.perf_counter() - started
    spread = max(received.values()) / min(received.values())
    print(
        f"\n{ASSIGNMENTS} assignments in {elapsed:.1f}s ({elapsed / ASSIGNMENTS * 1000:.1f} ms each); "
        f"per mediator {dict(sorted(received.items()))}; max/min {spread:.3f}"
    )
    assert sum(received.values()) == ASSIGNMENTS
    assert spread <= 1.05
    loads = {m: await world.assignments.repo.load(m) for m in speeds}
    assert loads["m-never"] == received["m-never"] and loads["m-fast"] == 0
