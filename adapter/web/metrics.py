"""``/metrics`` in Prometheus' text format, read from the store at each scrape.

The store is the one truth every adapter process shares: counted there, the figures are the same whichever
process answers the scrape, equal to ``messages stats``, and survive a restart. So they are gauges (a refused
hint that expires takes its message and attempts with it), except the delivery latency, a histogram over
every delivered message (delivered rows are never deleted, so its counts only grow). No label carries
personal data or a free text: channel, message type, state, job, postbox and status are closed sets.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import BigInteger, Engine, Float, case, cast, func, or_, select
from sqlalchemy.types import JSON

from adapter.store.db import aware, reading
from adapter.store.outbox import DState
from adapter.store.tables import (
    deliveries,
    delivery_attempts,
    delivery_steps,
    job_runs,
    messages,
    postbox_files,
    postbox_uploads,
)

#: Seconds from receipt to delivered: a werkmap fetch and a zaak take seconds, a postbus wait hours.
LATENCY_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0)


def _seconds_between(engine: Engine, start: Any, end: Any) -> Any:
    if engine.dialect.name == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 86400.0
    return func.extract("epoch", end - start)


def _json_size(engine: Engine) -> Any:
    """The ``grootte`` of a werkmap step's stored result (``adapter.delivery.sources.StoredDocument``)."""
    if engine.dialect.name == "sqlite":
        return cast(func.json_extract(delivery_steps.c.result, "$.grootte"), BigInteger)
    return cast(cast(delivery_steps.c.result, JSON)["grootte"].as_string(), BigInteger)


class StoreCollector(Collector):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        with reading(self.engine) as conn:
            yield from self._messages(conn)
            yield from self._deliveries(conn)
            yield from self._jobs(conn)
            yield from self._postboxes(conn)

    def _messages(self, conn: Any) -> Iterable[Metric]:
        m = messages.c
        g = GaugeMetricFamily(
            "loket_messages",
            "Messages in the store by channel, message type and state",
            labels=["channel", "type", "state"],
        )
        rows = conn.execute(
            select(m.channel, m.message_type, m.state, func.count()).group_by(m.channel, m.message_type, m.state)
        )
        for channel, kind, state, n in rows:
            g.add_metric([channel, kind, state], n)
        yield g

    def _deliveries(self, conn: Any) -> Iterable[Metric]:
        d = deliveries.c
        g = GaugeMetricFamily(
            "loket_deliveries",
            "Deliveries by state (dead and needs-attention wait for an operator)",
            labels=["state"],
        )
        found = dict(conn.execute(select(d.state, func.count()).group_by(d.state)).tuples().all())
        for state in DState:
            g.add_metric([state.value], found.get(state.value, 0))
        yield g
        waiting = GaugeMetricFamily(
            "loket_deliveries_for_an_operator", "Deliveries that wait for an operator: dead plus needs-attention"
        )
        waiting.add_metric([], found.get(DState.DEAD.value, 0) + found.get(DState.NEEDS_ATTENTION.value, 0))
        yield waiting
        a = GaugeMetricFamily("loket_delivery_attempts", "Delivery attempts recorded, by outcome", labels=["status"])
        at = delivery_attempts.c
        for status, n in conn.execute(select(at.status, func.count()).group_by(at.status)):
            a.add_metric([status], n)
        yield a

        took = _seconds_between(self.engine, messages.c.received_at, d.updated_at)
        done = (
            select(
                *(func.coalesce(func.sum(case((took <= b, 1), else_=0)), 0) for b in LATENCY_BUCKETS),
                func.count(),
                func.coalesce(func.sum(cast(took, Float)), 0.0),
            )
            .select_from(deliveries.join(messages, messages.c.id == d.message_id))
            .where(d.state == DState.DONE.value)
        )
        *le, count, total = conn.execute(done).one()
        h = HistogramMetricFamily(
            "loket_delivery_latency_seconds", "From receipt of a message to its delivery (delivered messages)"
        )
        h.add_metric(
            [],
            [(str(b), int(n)) for b, n in zip(LATENCY_BUCKETS, le, strict=True)] + [("+Inf", int(count))],
            float(total),
        )
        yield h

    def _jobs(self, conn: Any) -> Iterable[Metric]:
        j = job_runs.c
        runs = GaugeMetricFamily(
            "loket_job_runs", "Scheduled job runs recorded, by job and outcome", labels=["job", "status"]
        )
        for name, status, n in conn.execute(select(j.name, j.status, func.count()).group_by(j.name, j.status)):
            runs.add_metric([name, status], n)
        yield runs
        last = GaugeMetricFamily(
            "loket_job_last_start_seconds", "When each job last started (Unix time)", labels=["job"]
        )
        for name, started in conn.execute(select(j.name, func.max(j.started_at)).group_by(j.name)):
            if (at := aware(started)) is not None:
                last.add_metric([name], at.timestamp())
        yield last

    def _postboxes(self, conn: Any) -> Iterable[Metric]:
        for table, name, what in (
            (postbox_files, "loket_postbox_pickup_bytes", "Bytes of postbus files picked up, by postbox and state"),
            (
                postbox_uploads,
                "loket_postbox_upload_bytes",
                "Bytes of files mirrored to postboxes, by postbox and state",
            ),
        ):
            g = GaugeMetricFamily(name, what, labels=["postbox", "state"])
            c = table.c
            for box, state, n in conn.execute(
                select(c.postbox, c.state, func.coalesce(func.sum(c.size), 0)).group_by(c.postbox, c.state)
            ):
                g.add_metric([box, state], int(n))
            yield g
        s = delivery_steps.c
        werkmap = GaugeMetricFamily("loket_werkmap_bytes", "Bytes of documents fetched from the werkmap (STAM)")
        fetched = conn.execute(
            select(func.coalesce(func.sum(_json_size(self.engine)), 0)).where(
                s.state == "done", or_(s.key.like("werkmap:document:%"), s.key == "werkmap:pdf")
            )
        ).scalar_one()
        werkmap.add_metric([], int(fetched))
        yield werkmap


def registry(engine: Engine) -> CollectorRegistry:
    """The figures ``/metrics`` serves: the store's, and this process's own (CPU, memory, open files)."""
    r = CollectorRegistry(auto_describe=False)
    r.register(StoreCollector(engine))
    ProcessCollector(registry=r)
    return r
