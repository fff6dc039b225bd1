"""Live signals: what the gateways report, merged into the simulator's `FleetSignals`.

Each gateway answers ``GET /admin/endpoints`` (per replica: state, in-flight requests,
scraped engine queue, running requests and KV usage) and ``GET /metrics``
(``gpufleet_queue_depth`` by model, ``gpufleet_requests_total`` by model and outcome).
`parse_endpoints` and `parse_gateway_metrics` read those bodies (no I/O); `SignalBuilder`
merges the snapshots of every gateway replica:

- a replica seen by several gateways is one replica: it is *draining* if any gateway
  drains it, else *ready* if any finds it healthy, else *starting* if any is still
  waiting for its first probe, else it is down (counted nowhere); its in-flight requests
  add up over gateways, its engine-side figures (scraped by each) are the maximum;
- per deployment (``pool/model``): ready, starting (plus the actuator's requested
  replicas not visible yet), draining; in-flight over all its replicas; waiting, running
  and mean KV usage over its ready replicas (as the simulator does);
- arrivals per model: a cumulative count, by conservation ``completed + in flight +
  queued`` (completed: the gateways' outcome counters), and the rate over the last
  interval (``"*"``: all models), the growth of that count over Δt (a counter that went
  down — a restarted gateway — counts from zero);
- from the control plane itself: replicas under a preemption notice and notices so far
  per deployment.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import orjson
from prometheus_client.parser import text_string_to_metric_families

from gpufleet.autoscale.signals import DeploymentSignals, FleetSignals

READY, STARTING, DRAINING, DOWN = "ready", "starting", "draining", "down"


@dataclass(frozen=True, slots=True)
class ReplicaState:
    """One replica as one gateway (or, merged, all of them) sees it."""

    id: str
    model: str
    pool: str
    state: str
    """ready, starting, draining or down."""
    num_in_flight: int
    num_waiting: float
    num_running: float
    kv_usage: float


@dataclass(frozen=True, slots=True)
class GatewaySnapshot:
    url: str
    replicas: tuple[ReplicaState, ...]
    queued_by_model: Mapping[str, int]
    completed_by_model: Mapping[str, float]
    """Cumulative requests finished (any outcome) per model."""


def parse_endpoints(body: bytes) -> tuple[ReplicaState, ...]:
    """The replicas of a ``/admin/endpoints`` answer; ValueError when it is not one."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ValueError("/admin/endpoints did not answer JSON") from None
    items = document.get("endpoints") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise ValueError("/admin/endpoints has no 'endpoints' list")
    out = []
    for item in items:
        if not isinstance(item, dict):
            raise ValueError("/admin/endpoints lists something that is not an object")
        try:
            out.append(
                ReplicaState(
                    id=str(item["id"]),
                    model=str(item["model"]),
                    pool=str(item["pool"]),
                    state=_state(str(item["state"])),
                    num_in_flight=int(item.get("in_flight") or 0),
                    num_waiting=float(item.get("num_waiting") or 0.0),
                    num_running=float(item.get("num_running") or 0.0),
                    kv_usage=float(item.get("kv_usage") or 0.0),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"/admin/endpoints: a malformed endpoint ({exc!r})") from None
    return tuple(out)


def _state(gateway_state: str) -> str:
    if gateway_state == "healthy":
        return READY
    if gateway_state in (STARTING, DRAINING):
        return gateway_state
    return DOWN


def parse_gateway_metrics(text: str) -> tuple[dict[str, int], dict[str, float]]:
    """(queued requests per model, finished requests per model) from a gateway's
    ``/metrics``; ValueError when it is not the Prometheus text format."""
    queued: dict[str, int] = defaultdict(int)
    completed: dict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            model = sample.labels.get("model")
            if model is None:
                continue
            if sample.name == "gpufleet_queue_depth":
                queued[model] += int(sample.value)
            elif sample.name == "gpufleet_requests_total":
                completed[model] += sample.value
    return dict(queued), dict(completed)


def merge_replicas(snapshots: Iterable[GatewaySnapshot]) -> dict[str, ReplicaState]:
    """Every replica once, as the module doc merges it."""
    seen: dict[str, list[ReplicaState]] = defaultdict(list)
    for snapshot in snapshots:
        for replica in snapshot.replicas:
            seen[replica.id].append(replica)
    merged = {}
    for replica_id, views in seen.items():
        states = {v.state for v in views}
        state = next(s for s in (DRAINING, READY, STARTING, DOWN) if s in states)
        first = views[0]
        merged[replica_id] = ReplicaState(
            id=replica_id,
            model=first.model,
            pool=first.pool,
            state=state,
            num_in_flight=sum(v.num_in_flight for v in views),
            num_waiting=max(v.num_waiting for v in views),
            num_running=max(v.num_running for v in views),
            kv_usage=max(v.kv_usage for v in views),
        )
    return merged


class SignalBuilder:
    """Builds `FleetSignals` from gateway snapshots; remembers the last round's totals
    for the arrival rates (one instance per control loop)."""

    def __init__(self, keys: Sequence[str]):
        self._keys = tuple(keys)
        self._last: tuple[float, dict[str, float], dict[str, float]] | None = None

    def build(
        self,
        snapshots: Sequence[GatewaySnapshot],
        now_s: float,
        pending: Mapping[str, int] | None = None,
        under_notice: Mapping[str, int] | None = None,
        notices_total: Mapping[str, int] | None = None,
    ) -> FleetSignals:
        """``pending``: replicas per key the actuator requested that no gateway lists yet;
        ``under_notice``/``notices_total``: per key, from the preemption handler."""
        replicas = merge_replicas(snapshots)
        by_key: dict[str, list[ReplicaState]] = defaultdict(list)
        for replica in replicas.values():
            by_key[f"{replica.pool}/{replica.model}"].append(replica)
        deployments = {}
        for key in self._keys:
            pool, _, model = key.partition("/")
            mine = by_key.get(key, [])
            ready = [r for r in mine if r.state == READY]
            deployments[key] = DeploymentSignals(
                model=model,
                pool=pool,
                num_ready=len(ready),
                num_starting=sum(r.state == STARTING for r in mine) + (pending or {}).get(key, 0),
                num_draining=sum(r.state == DRAINING for r in mine),
                num_in_flight=sum(r.num_in_flight for r in mine),
                num_waiting=sum(r.num_waiting for r in ready),
                num_running=sum(r.num_running for r in ready),
                mean_kv_usage=sum(r.kv_usage for r in ready) / len(ready) if ready else 0.0,
                num_notice=(under_notice or {}).get(key, 0),
                num_notices_total=(notices_total or {}).get(key, 0),
            )
        queued: dict[str, int] = defaultdict(int)
        completed: dict[str, float] = defaultdict(float)
        for snapshot in snapshots:
            for model, n in snapshot.queued_by_model.items():
                queued[model] += n
            for model, total in snapshot.completed_by_model.items():
                completed[model] += total
        in_system: dict[str, float] = defaultdict(float, queued)
        for replica in replicas.values():
            in_system[replica.model] += replica.num_in_flight
        rates = self._rates(now_s, dict(completed), dict(in_system))
        arrivals = {
            m: int(completed.get(m, 0.0) + in_system.get(m, 0.0))
            for m in set(completed) | set(in_system)
        }
        return FleetSignals(now_s, deployments, dict(queued), rates, arrivals)

    def _rates(
        self, now_s: float, completed: dict[str, float], in_system: dict[str, float]
    ) -> dict[str, float]:
        last = self._last
        self._last = (now_s, completed, in_system)
        if last is None or now_s <= last[0]:
            return {"*": 0.0}
        then, completed_before, in_system_before = last
        rates = {}
        for model in set(completed) | set(in_system) | set(completed_before):
            done = completed.get(model, 0.0) - completed_before.get(model, 0.0)
            if done < 0:  # the counter restarted
                done = completed.get(model, 0.0)
            change = in_system.get(model, 0.0) - in_system_before.get(model, 0.0)
            rates[model] = max(0.0, (done + change) / (now_s - then))
        rates["*"] = sum(rates.values())
        return rates
