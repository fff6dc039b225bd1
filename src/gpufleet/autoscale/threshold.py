"""The common KEDA setups, for comparison: scale each deployment on a request count.

Contract (a KEDA ``ScaledObject`` per deployment with a Prometheus trigger,
through the HPA): every ``interval_s``, a deployment's metric is its share of
the gateway's queue for the model (split evenly over the model's deployments)
plus, with ``metric="waiting"`` (the common vLLM setup, target 5 per replica),
its engines' waiting requests (``vllm:num_requests_waiting``), or with
``metric="in-flight"`` (what ``gpufleet render`` emits, target 16), the
requests in flight to it (``gpufleet_requests_in_flight``); the HPA wants ``ceil(metric / target)``
replicas, ignores changes within ``tolerance`` of the current ratio, scales up
at once by at most max(4 replicas, 100%) per evaluation (the HPA's default
scale-up policies) and down to the highest recommendation of the last
``scale_down_window_s`` (the HPA's stabilisation window), within
``[min_replicas, max_replicas]``. It knows neither prices nor cold starts
nor spot notices.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Literal

from gpufleet.autoscale.signals import FleetSignals


class ThresholdPolicy:
    """Satisfies ``AutoscalePolicy`` (module doc)."""

    def __init__(
        self,
        keys: Mapping[str, str],
        *,
        target_per_replica: float = 5.0,
        min_replicas: int = 1,
        max_replicas: int = 64,
        interval_s: float = 15.0,
        scale_down_window_s: float = 300.0,
        tolerance: float = 0.1,
        metric: Literal["waiting", "in-flight"] = "waiting",
    ) -> None:
        """``keys`` maps each managed deployment key (``"pool/model"``) to its model."""
        if target_per_replica <= 0 or interval_s <= 0:
            raise ValueError("target and interval must be positive")
        if not 0 <= min_replicas <= max_replicas:
            raise ValueError("need 0 ≤ min_replicas ≤ max_replicas")
        self.keys = dict(keys)
        self.target = target_per_replica
        self.min_replicas = min_replicas
        self.max_replicas = max_replicas
        self._interval_s = interval_s
        self.scale_down_window_s = scale_down_window_s
        self.tolerance = tolerance
        self.metric = metric
        self._history: dict[str, deque[tuple[float, int]]] = {k: deque() for k in self.keys}

    @property
    def interval_s(self) -> float:
        return self._interval_s

    def desired_replicas(self, signals: FleetSignals) -> Mapping[str, int]:
        now = signals.now_s
        per_model: dict[str, int] = {}
        for model in self.keys.values():
            per_model[model] = per_model.get(model, 0) + 1
        out: dict[str, int] = {}
        for key, model in self.keys.items():
            d = signals.deployments.get(key)
            current = d.num_active if d else 0
            own = 0.0
            if d is not None:
                own = d.num_waiting if self.metric == "waiting" else float(d.num_in_flight)
            metric = own + signals.queued_by_model.get(model, 0) / per_model[model]
            want = math.ceil(metric / self.target - 1e-9)
            if current and abs(metric / (current * self.target) - 1) <= self.tolerance:
                want = current
            want = max(self.min_replicas, min(self.max_replicas, want))
            history = self._history[key]
            history.append((now, want))
            while history and history[0][0] < now - self.scale_down_window_s:
                history.popleft()
            if want >= current:  # the HPA's default scale-up limit per period
                out[key] = min(want, max(current + 4, 2 * current))
            else:  # ... and scale-down stabilisation
                out[key] = min(current, max(w for _, w in history))
        return out
