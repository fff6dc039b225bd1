"""The gateway's own metrics, ``gpufleet_*``, defined once.

Labels are low-cardinality only: model, pool, GPU type, endpoint, outcome —
never prompts or request ids. Labelled children are cached per
(model, endpoint) so the request path does no label lookups.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

LATENCY_BUCKETS_S = (
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5,
    0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
)  # fmt: skip
ITL_BUCKETS_S = (
    0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075,
    0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5,
)  # fmt: skip
DECISION_BUCKETS_S = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2)
ENDPOINT_LABELS = ("model", "pool", "gpu", "endpoint")


@dataclass(slots=True)
class EndpointMetrics:
    """The labelled children one (model, endpoint) pair records into."""

    ttft: Histogram
    itl: Histogram
    e2e: Histogram
    prompt_tokens: Counter
    generation_tokens: Counter
    retries: Counter
    in_flight: Gauge


# -- tenancy (begin) ---------------------------------------------------------------------------
@dataclass(slots=True)
class TenantMetrics:
    """The labelled children of one tenant (tenants come from config: low cardinality)."""

    requests: Counter
    prompt_tokens: Counter
    generation_tokens: Counter
    cost_usd: Counter
    name: str
    _rejected: Counter
    _rejections: dict[str, Counter]

    def add(self, prompt_tokens: int, generation_tokens: int, cost_usd: float) -> None:
        self.requests.inc()
        if prompt_tokens:
            self.prompt_tokens.inc(prompt_tokens)
        if generation_tokens:
            self.generation_tokens.inc(generation_tokens)
        if cost_usd:
            self.cost_usd.inc(cost_usd)

    def rejected(self, reason: str) -> Counter:
        child = self._rejections.get(reason)
        if child is None:
            child = self._rejections[reason] = self._rejected.labels(self.name, reason)
        return child


class TenancyMetrics:
    """Per-tenant usage and quota-store health, registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry):
        r = registry
        self.tenant_requests = Counter(
            "gpufleet_tenant_requests", "Admitted requests per tenant.", ("tenant",), registry=r
        )
        self.tenant_prompt_tokens = Counter(
            "gpufleet_tenant_prompt_tokens", "Prompt tokens per tenant.", ("tenant",), registry=r
        )
        self.tenant_generation_tokens = Counter(
            "gpufleet_tenant_generation_tokens",
            "Generated tokens per tenant.",
            ("tenant",),
            registry=r,
        )
        self.tenant_cost_usd = Counter(
            "gpufleet_tenant_cost_usd",
            "Cost of the tenant's tokens at the configured model prices.",
            ("tenant",),
            registry=r,
        )
        self.tenant_rejected = Counter(
            "gpufleet_tenant_rejected",
            "Requests refused by tenancy (model_not_allowed, a limit, store_unavailable).",
            ("tenant", "reason"),
            registry=r,
        )
        self.auth_failures = Counter(
            "gpufleet_auth_failures", "Requests with a missing or unknown API key.", registry=r
        )
        self.quota_store_errors = Counter(
            "gpufleet_quota_store_errors",
            "Calls to the shared quota store (Redis) that failed or timed out.",
            registry=r,
        )
        self.quota_store_degraded = Gauge(
            "gpufleet_quota_store_degraded",
            "1 while the quota store's circuit breaker is open (fail mode applies).",
            registry=r,
        )
        self._tenants: dict[str, TenantMetrics] = {}

    def tenant(self, name: str) -> TenantMetrics:
        children = self._tenants.get(name)
        if children is None:
            children = self._tenants[name] = TenantMetrics(
                self.tenant_requests.labels(name),
                self.tenant_prompt_tokens.labels(name),
                self.tenant_generation_tokens.labels(name),
                self.tenant_cost_usd.labels(name),
                name,
                self.tenant_rejected,
                {},
            )
        return children


# -- tenancy (end) -----------------------------------------------------------------------------


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.ttft = Histogram(
            "gpufleet_time_to_first_token_seconds",
            "Time from request arrival at the gateway to the first streamed token.",
            ENDPOINT_LABELS,
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.itl = Histogram(
            "gpufleet_inter_token_latency_seconds",
            "Time between streamed chunks relayed to the client.",
            ENDPOINT_LABELS,
            buckets=ITL_BUCKETS_S,
            registry=r,
        )
        self.e2e = Histogram(
            "gpufleet_e2e_request_latency_seconds",
            "Time from request arrival to the last byte of the response.",
            ENDPOINT_LABELS,
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.prompt_tokens = Counter(
            "gpufleet_prompt_tokens",
            "Prompt tokens of completed requests (from the engine's usage).",
            ENDPOINT_LABELS,
            registry=r,
        )
        self.generation_tokens = Counter(
            "gpufleet_generation_tokens",
            "Generated tokens of completed requests (from the engine's usage).",
            ENDPOINT_LABELS,
            registry=r,
        )
        self.requests = Counter(
            "gpufleet_requests",
            "Requests by final outcome.",
            ("model", "outcome"),
            registry=r,
        )
        self.response_cache = Counter(
            "gpufleet_response_cache",
            "Response-cache lookups and stores by result (hit, miss, store).",
            ("model", "result"),
            registry=r,
        )
        self.retries = Counter(
            "gpufleet_retries",
            "Attempts retried on another replica after this endpoint failed before the first byte.",
            ENDPOINT_LABELS,
            registry=r,
        )
        self.in_flight = Gauge(
            "gpufleet_requests_in_flight",
            "Requests dispatched to an endpoint and not yet finished.",
            ENDPOINT_LABELS,
            registry=r,
        )
        self.decision_latency = Histogram(
            "gpufleet_routing_decision_seconds",
            "Time to choose an endpoint (filters, scorers, picker).",
            ("model",),
            buckets=DECISION_BUCKETS_S,
            registry=r,
        )
        self.endpoint_healthy = Gauge(
            "gpufleet_endpoint_healthy",
            "1 when the endpoint may receive requests (healthy and not draining).",
            ENDPOINT_LABELS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "gpufleet_queue_depth",
            "Requests waiting in the gateway's admission queue.",
            ("model", "priority"),
            registry=r,
        )
        self.queue_shed = Counter(
            "gpufleet_queue_shed",
            "Requests shed from the admission queue at their deadline.",
            registry=r,
        )
        self._children: dict[tuple[str, str], EndpointMetrics] = {}
        self._queue_keys: set[tuple[str, int]] = set()
        self._decisions: dict[str, Histogram] = {}
        self._health_keys: set[tuple[str, str, str, str]] = set()
        self._outcomes: dict[tuple[str, str], Counter] = {}

    def for_endpoint(self, model: str, pool: str, gpu: str, endpoint: str) -> EndpointMetrics:
        key = (model, endpoint)
        children = self._children.get(key)
        if children is None:
            labels = (model, pool, gpu, endpoint)
            children = EndpointMetrics(
                ttft=self.ttft.labels(*labels),
                itl=self.itl.labels(*labels),
                e2e=self.e2e.labels(*labels),
                prompt_tokens=self.prompt_tokens.labels(*labels),
                generation_tokens=self.generation_tokens.labels(*labels),
                retries=self.retries.labels(*labels),
                in_flight=self.in_flight.labels(*labels),
            )
            self._children[key] = children
        return children

    def decision_latency_for(self, model: str) -> Histogram:
        """The routing-decision histogram of ``model`` (child cached: no label lookup)."""
        child = self._decisions.get(model)
        if child is None:
            child = self.decision_latency.labels(model)
            self._decisions[model] = child
        return child

    def outcome(self, model: str, outcome: str) -> None:
        child = self._outcomes.get((model, outcome))
        if child is None:
            child = self.requests.labels(model, outcome)
            self._outcomes[(model, outcome)] = child
        child.inc()

    def set_queue_depth(self, depth: dict[tuple[str, int], int]) -> None:
        """Publish the admission queues' depth; queues seen before and now empty read 0."""
        self._queue_keys |= set(depth)
        for model, priority in self._queue_keys:
            self.queue_depth.labels(model, str(priority)).set(depth.get((model, priority), 0))

    def set_endpoint_health(self, states: list[tuple[tuple[str, str, str, str], bool]]) -> None:
        """Publish 1/0 per endpoint (model, pool, gpu, id); endpoints gone since are removed."""
        current = {labels for labels, _ in states}
        for labels in self._health_keys - current:
            self.endpoint_healthy.remove(*labels)
        self._health_keys = current
        for labels, routable in states:
            self.endpoint_healthy.labels(*labels).set(1.0 if routable else 0.0)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


# -- control plane (begin) ---------------------------------------------------------------------
class ControllerMetrics:
    """The controller's decisions, ``gpufleet_controller_*`` (deployment keys come from
    config: low cardinality). Registered on ``registry`` (the gateway's when in-process)."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        deployment = ("deployment", "pool", "model")
        self.desired_replicas = Gauge(
            "gpufleet_controller_desired_replicas",
            "Replicas the autoscaling policy wants for the deployment (pool/model).",
            deployment,
            registry=r,
        )
        self.current_replicas = Gauge(
            "gpufleet_controller_current_replicas",
            "Replicas of the deployment by state (ready, starting, draining), as last gathered.",
            (*deployment, "state"),
            registry=r,
        )
        self.decisions = Counter(
            "gpufleet_controller_decisions",
            "Scaling actions applied, by direction (up, down) and the policy's reason.",
            (*deployment, "direction", "reason"),
            registry=r,
        )
        self.notices = Counter(
            "gpufleet_controller_notices",
            "Preemption notices handled, by source (taint key, admin) and pool.",
            ("source", "pool"),
            registry=r,
        )
        self.replacements = Counter(
            "gpufleet_controller_replacements",
            "Replacement replicas requested for preempted ones, by the pool asked.",
            ("pool", "model"),
            registry=r,
        )
        self.gather_failures = Counter(
            "gpufleet_controller_gather_failures",
            "Gateways that did not answer a signal gathering (the round uses the others).",
            ("gateway",),
            registry=r,
        )
        self.evaluations = Counter(
            "gpufleet_controller_evaluations", "Policy evaluations.", registry=r
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


# -- control plane (end) -----------------------------------------------------------------------
