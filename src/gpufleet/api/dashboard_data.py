"""What the fleet page shows, as one JSON document (``GET /admin/fleet``).

Everything here runs when the page polls (about once every two seconds per open
page), never on the request path: it reads the live endpoints, the admission
queues, the decision log, and the gateway's own ``gpufleet_*`` histograms and
counters. "Recent" latency and throughput are deltas of those cumulative series
over a sliding window (``RecentWindow``): the mean and an interpolated p90 of
TTFT and inter-token latency, requests/s and generated tokens/s per replica.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

from prometheus_client import Counter, Histogram

from gpufleet import __version__
from gpufleet.gateway.proxy import Proxy
from gpufleet.metrics import ENDPOINT_LABELS, GatewayMetrics

WINDOW_S = 30.0
MIN_SPACING_S = 1.0
NUM_DECISIONS = 25
REUSE_S = 0.5


@dataclass(slots=True)
class Series:
    """One histogram's cumulative buckets (upper bounds ascending, last +Inf), sum, count."""

    bounds: list[float] = field(default_factory=list)
    buckets: list[float] = field(default_factory=list)
    sum: float = 0.0
    count: float = 0.0


@dataclass(slots=True)
class Counters:
    """The cumulative series of one endpoint at one moment."""

    ttft: Series = field(default_factory=Series)
    itl: Series = field(default_factory=Series)
    num_requests: float = 0.0
    generation_tokens: float = 0.0


def read_counters(metrics: GatewayMetrics) -> dict[str, Counters]:
    """Every endpoint's cumulative TTFT/ITL histograms, completed requests and generated
    tokens.

    Reads the labelled children's values directly (prometheus_client's ``_metrics``,
    ``_buckets``, ``_sum``, ``_value``; covered by a unit test): ``collect()`` builds a
    sample object per bucket and costs ~0.4 ms per replica, which at 64 replicas would
    hold the event loop for 25 ms on every poll of the page.
    """
    out: dict[str, Counters] = {}
    where = ENDPOINT_LABELS.index("endpoint")

    def entry(labels: Sequence[str]) -> Counters:
        found = out.get(labels[where])
        if found is None:
            found = out[labels[where]] = Counters()
        return found

    for attr, histogram in (("ttft", metrics.ttft), ("itl", metrics.itl)):
        for labels, wrapped in list(histogram._metrics.items()):
            child = cast(Histogram, wrapped)
            series: Series = getattr(entry(labels), attr)
            running = 0.0
            for bucket in child._buckets:
                running += bucket.get()
                series.buckets.append(running)
            series.bounds = list(child._upper_bounds)
            series.sum = child._sum.get()
            series.count = running
    for labels, wrapped in list(metrics.e2e._metrics.items()):
        buckets = cast(Histogram, wrapped)._buckets
        entry(labels).num_requests = sum(bucket.get() for bucket in buckets)
    for labels, wrapped in list(metrics.generation_tokens._metrics.items()):
        entry(labels).generation_tokens = cast(Counter, wrapped)._value.get()
    return out


def quantile(q: float, bounds: list[float], buckets: list[float]) -> float | None:
    """Prometheus' ``histogram_quantile``: linear interpolation inside the bucket holding
    rank ``q * total`` of cumulative ``buckets``; the +Inf bucket answers its lower bound.
    ``None`` without observations."""
    if not buckets or buckets[-1] <= 0:
        return None
    rank = q * buckets[-1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in zip(bounds, buckets, strict=True):
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            in_bucket = count - lower_count
            if in_bucket <= 0:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / in_bucket
        lower_bound, lower_count = bound, count
    return lower_bound


def _delta(new: Series, old: Series | None) -> Series:
    if old is None or old.bounds != new.bounds:
        return new
    return Series(
        new.bounds,
        [a - b for a, b in zip(new.buckets, old.buckets, strict=True)],
        new.sum - old.sum,
        new.count - old.count,
    )


def _latency(series: Series) -> dict[str, float | None]:
    if series.count <= 0:
        return {"mean_s": None, "p90_s": None}
    return {
        "mean_s": series.sum / series.count,
        "p90_s": quantile(0.9, series.bounds, series.buckets),
    }


@dataclass(frozen=True, slots=True)
class Rates:
    """One endpoint's figures over the window."""

    window_s: float
    requests_per_s: float
    tokens_per_s: float
    ttft: dict[str, float | None]
    itl: dict[str, float | None]

    def as_dict(self) -> dict[str, object]:
        return {
            "window_s": round(self.window_s, 1),
            "requests_per_s": self.requests_per_s,
            "tokens_per_s": self.tokens_per_s,
            "ttft": self.ttft,
            "itl": self.itl,
        }


class RecentWindow:
    """Snapshots of the cumulative counters, at most one per ``MIN_SPACING_S``, kept for
    ``window_s``: ``rates`` answers per-endpoint figures over (about) the last window.
    Until a window has passed, the baseline is the zero state at construction."""

    def __init__(self, now_s: float, window_s: float = WINDOW_S):
        self.window_s = window_s
        self._snapshots: deque[tuple[float, dict[str, Counters]]] = deque([(now_s, {})])

    def rates(self, now_s: float, current: dict[str, Counters]) -> dict[str, Rates]:
        if now_s - self._snapshots[-1][0] >= MIN_SPACING_S:
            self._snapshots.append((now_s, current))
        while len(self._snapshots) > 1 and self._snapshots[1][0] <= now_s - self.window_s:
            self._snapshots.popleft()
        since, baseline = self._snapshots[0]
        elapsed = max(now_s - since, 1e-9)
        out: dict[str, Rates] = {}
        for endpoint, counters in current.items():
            old = baseline.get(endpoint)
            num_requests = counters.num_requests - (old.num_requests if old else 0.0)
            tokens = counters.generation_tokens - (old.generation_tokens if old else 0.0)
            out[endpoint] = Rates(
                window_s=elapsed,
                requests_per_s=num_requests / elapsed,
                tokens_per_s=tokens / elapsed,
                ttft=_latency(_delta(counters.ttft, old.ttft if old else None)),
                itl=_latency(_delta(counters.itl, old.itl if old else None)),
            )
        return out


class FleetView:
    """Builds the fleet document of one gateway; owns its ``RecentWindow``. A document
    younger than ``REUSE_S`` is reused, so several open pages cost what one does."""

    def __init__(self, proxy: Proxy):
        self.proxy = proxy
        self.started_s = time.monotonic()
        self.window = RecentWindow(self.started_s)
        self._last: tuple[float, dict[str, object]] | None = None

    def document(self) -> dict[str, object]:
        now = time.monotonic()
        if self._last is not None and now - self._last[0] < REUSE_S:
            return self._last[1]
        document = self._build(now)
        self._last = (now, document)
        return document

    def _build(self, now: float) -> dict[str, object]:
        proxy = self.proxy
        recent = self.window.rates(now, read_counters(proxy.metrics))
        depth = proxy.gate.depth() if proxy.gate is not None else {}
        config = proxy.config
        pools = {pool.name: pool for pool in config.pools}
        models = []
        num_replicas = num_routable = num_in_flight = num_queued = 0
        tokens_per_s = 0.0
        for model in config.models:
            endpoints = sorted(proxy.fleet.by_model.get(model.name, ()), key=lambda e: e.id)
            by_pool: dict[str, list[dict[str, object]]] = {}
            for endpoint in endpoints:
                replica = endpoint.describe()
                rates = recent.get(endpoint.id)
                replica["recent"] = rates.as_dict() if rates is not None else None
                by_pool.setdefault(endpoint.pool, []).append(replica)
                num_replicas += 1
                num_routable += int(endpoint.routable)
                num_in_flight += endpoint.num_in_flight
                if rates is not None:
                    tokens_per_s += rates.tokens_per_s
            queue = sorted(
                ((p, count) for (name, p), count in depth.items() if name == model.name),
                reverse=True,
            )
            num_queued += sum(count for _, count in queue)
            models.append(
                {
                    "name": model.name,
                    "ready": any(e.routable for e in endpoints),
                    "queue": [{"priority": p, "depth": c} for p, c in queue],
                    "pools": [
                        {
                            "name": name,
                            "gpu": replicas[0]["gpu"],
                            "capacity": pools[name].capacity if name in pools else None,
                            "replicas": replicas,
                        }
                        for name, replicas in sorted(by_pool.items())
                    ],
                }
            )
        decisions = proxy.decisions.recent(NUM_DECISIONS)
        return {
            "gateway": {
                "version": __version__,
                "uptime_s": round(now - self.started_s, 1),
                "routing_profile": proxy.profile.name,
                "admission": proxy.gate is not None,
                "api_keys": proxy.tenancy is not None,
                "window_s": self.window.window_s,
            },
            "totals": {
                "replicas": num_replicas,
                "routable": num_routable,
                "in_flight": num_in_flight,
                "queued": num_queued,
                "tokens_per_s": tokens_per_s,
            },
            "models": models,
            "decisions": decisions,
        }
