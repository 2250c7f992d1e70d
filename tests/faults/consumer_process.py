"""A service-like process running one ReliableConsumer, for fault tests that need a real
process (SIGTERM during a slow handler, CPU use while a poison message is retried).

    python -m tests.faults.consumer_process <topic> <group> <journal> <mode>

mode "slow": the handler of message 1 announces itself in the journal, then blocks for
longer than the grace period; every other message is journalled at once.
mode "poison": message -1 always fails (a bug); every other message is journalled.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry

from tiaojie.contracts.envelope import CloudEvent, EventData
from tiaojie.runtime.consumer import ConsumerMetrics, ReliableConsumer
from tiaojie.runtime.kafka import EventPublisher, make_broker
from tiaojie.runtime.settings import RuntimeSettings


class FaultProbed(EventData):
    event_type = "tiaojie.test.FaultProbed"
    n: int


async def main(topic: str, group: str, journal: Path, mode: str) -> None:
    settings = RuntimeSettings()
    broker = make_broker(settings, service=group)
    consumer = ReliableConsumer(
        broker=broker,
        settings=settings,
        service=group,
        publisher=EventPublisher(broker, settings),
        metrics=ConsumerMetrics(CollectorRegistry(), group),
    )

    def note(line: str) -> None:
        with journal.open("a") as fh:
            fh.write(line + "\n")

    @consumer.on(topic, FaultProbed)
    async def handle(event: CloudEvent, data: FaultProbed) -> None:
        if mode == "slow" and data.n == 1:
            note("started 1")
            await asyncio.sleep(3600)
        if mode == "poison" and data.n == -1:
            note("attempt -1")
            raise RuntimeError("poison: this message always breaks the handler")
        note(f"handled {data.n}")

    consumer.bind()
    await broker.start()
    note("ready")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    note("stopping")
    await broker.stop()  # waits graceful_timeout, then cancels the slow handler unacknowledged
    note("stopped")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4]))
