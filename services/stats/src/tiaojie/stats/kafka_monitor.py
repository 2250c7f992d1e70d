"""Consumer lag and dead-letter sizes of the whole mesh, read from Kafka itself.

Neither FastStream nor the runtime exposes them, and operations need both (a growing lag
means a service cannot keep up; a non-empty DLQ means messages wait for a person). Stats
reads the committed offsets of every service's consumer group and the end offsets of the
contract topics and their DLQs in this deployment's namespace.
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from tiaojie.contracts.topics import ALL_TOPICS, dlq
from tiaojie.runtime.kafka import client_kwargs
from tiaojie.runtime.mongo import sweep_forever
from tiaojie.runtime.settings import RuntimeSettings
from tiaojie.stats.metrics import StatsMetrics

SERVICES = ("intake", "referral", "registry", "stats", "console")


class KafkaMonitor:
    def __init__(self, settings: RuntimeSettings, metrics: StatsMetrics, interval: float) -> None:
        self.settings = settings
        self.metrics = metrics
        self.interval = interval

    async def run_forever(self) -> None:
        if self.interval <= 0:
            return
        await sweep_forever(self.sample, self.interval, what="kafka monitor")

    async def sample(self) -> dict[str, Any]:
        """Read offsets once and set the gauges; returns what was measured."""
        s = self.settings
        admin = AIOKafkaAdminClient(**client_kwargs(s), request_timeout_ms=10000)
        consumer = AIOKafkaConsumer(**client_kwargs(s), group_id=None, enable_auto_commit=False)
        await admin.start()
        await consumer.start()
        try:
            existing = set(await admin.list_topics())
            physical = {s.topic(t): t for t in ALL_TOPICS if s.topic(t) in existing}
            dlqs = {s.topic(dlq(t)): dlq(t) for t in ALL_TOPICS if s.topic(dlq(t)) in existing}
            partitions = [
                TopicPartition(topic, p)
                for topic in [*physical, *dlqs]
                for p in (consumer.partitions_for_topic(topic) or await _partitions(consumer, topic))
            ]
            ends = await consumer.end_offsets(partitions) if partitions else {}
            starts = await consumer.beginning_offsets(partitions) if partitions else {}
            dlq_sizes = {
                name: sum(ends[tp] - starts[tp] for tp in ends if tp.topic == topic)
                for topic, name in dlqs.items()
            }
            for name, size in dlq_sizes.items():
                self.metrics.dlq_messages.labels(name).set(size)
            groups = {s.group(service): service for service in SERVICES}
            listed = {
                g[0] if isinstance(g, tuple) else getattr(g, "group_id", g)
                for g in await admin.list_consumer_groups()
            }
            lags: dict[tuple[str, str], int] = {}
            for group, service in groups.items():
                if group not in listed:
                    continue
                committed = await admin.list_consumer_group_offsets(group)
                per_topic: dict[str, int] = {}
                for tp, meta in committed.items():
                    if tp.topic in physical and tp in ends and meta.offset >= 0:
                        per_topic[physical[tp.topic]] = per_topic.get(physical[tp.topic], 0) + max(
                            0, ends[tp] - meta.offset
                        )
                for topic, lag in per_topic.items():
                    lags[(service, topic)] = lag
                    self.metrics.consumer_lag.labels(service, topic).set(lag)
            return {"dlq": dlq_sizes, "lag": lags}
        finally:
            await consumer.stop()
            await admin.close()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()  # metadata of topics not subscribed to
    return consumer.partitions_for_topic(topic) or set()
