"""Prometheus metrics at /metrics and a health answer at /healthz."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from outputd import logs
from outputd.errors import ConfigError
from outputd.store import Store

log = logging.getLogger(__name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class _StoreCollector(Collector):
    """Gauges read from the store at scrape time: jobs by status, queue, oldest wait."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            counts = self.store.jobs.counts()
            depth, oldest = self.store.jobs.queue()
            outbox = self.store.outbox.depth()
        except Exception:  # the store is down: /healthz says so; keep /metrics answering
            return
        jobs = GaugeMetricFamily("outputd_jobs", "Jobs in the store by status", labels=["status"])
        for status, count in sorted(counts.items()):
            jobs.add_metric([status], count)
        yield jobs
        yield GaugeMetricFamily("outputd_queue_depth", "Jobs with work due now", value=depth)
        yield GaugeMetricFamily("outputd_outbox_depth", "Notifications waiting to be sent",
                                value=outbox)
        age = time.time() - oldest.updated_at if oldest else 0.0
        yield GaugeMetricFamily("outputd_oldest_waiting_job_age_seconds",
                                "How long the job waiting longest has waited", value=age)


class Metrics:
    """The daemon's counters and histograms, in a registry of its own."""

    def __init__(self, store: Store) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.status_changes = Counter("outputd_job_status_changes", "Status changes by new status",
                                      ["status"], registry=r)
        self.deliveries = Counter("outputd_deliveries", "Delivery attempts by outcome",
                                  ["hotfolder", "outcome"], registry=r)
        self.delivered_bytes = Counter("outputd_delivered_bytes", "Bytes delivered",
                                       ["hotfolder"], registry=r)
        self.delivery_seconds = Histogram("outputd_delivery_duration_seconds",
                                          "Time of one delivery attempt", ["hotfolder"],
                                          buckets=DURATION_BUCKETS, registry=r)
        self.stage_seconds = Histogram("outputd_stage_duration_seconds", "Time of a pipeline stage",
                                       ["stage"], buckets=DURATION_BUCKETS, registry=r)
        self.last_delivery = Gauge("outputd_last_successful_delivery_timestamp_seconds",
                                   "When the last delivery to a hot folder succeeded",
                                   ["hotfolder"], registry=r)
        self.intake_deferred = Gauge("outputd_intake_deferred_tickets",
                                     "Tickets the intake cannot take in yet (a full disk)",
                                     registry=r)
        self.idle_claims = Counter("outputd_idle_claims", "Jobs claimed with nothing to do "
                                   "(always 0: a job is due only when a stage can work it)",
                                   registry=r)
        r.register(_StoreCollector(store))

    def delivery(self, hotfolder: str, outcome: str, seconds: float, size: int) -> None:
        self.deliveries.labels(hotfolder, outcome).inc()
        self.delivery_seconds.labels(hotfolder).observe(seconds)
        if outcome == "delivered":
            self.delivered_bytes.labels(hotfolder).inc(size)
            self.last_delivery.labels(hotfolder).set(time.time())


Health = Callable[[], list[str]]  # the reasons the daemon is unhealthy; empty when healthy


def serve(listen: str, metrics: Metrics, health: Health) -> ThreadingHTTPServer:
    """Serve /metrics and /healthz on `listen` ("host:port") from a background thread."""
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"metrics.listen {listen!r} is not host:port")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server name
            if self.path == "/metrics":
                self._send(200, generate_latest(metrics.registry), CONTENT_TYPE)
            elif self.path == "/healthz":
                reasons = health()
                body = {"ok": not reasons, "reasons": reasons}
                self._send(503 if reasons else 200, json.dumps(body).encode(),
                           "application/json")
            else:
                self._send(404, b"not found\n", "text/plain")

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    try:
        server = ThreadingHTTPServer((host.strip("[]"), int(port)), Handler)
    except OSError as exc:
        raise ConfigError(f"metrics.listen {listen}: {exc.strerror}") from None
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    logs.event(log, logging.INFO, "metrics.listening", listen=listen)
    return server
