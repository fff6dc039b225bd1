"""The actuator of a controller that acts on nothing (``--actuator none``).

Its decisions are only logged and exported (``gpufleet_controller_desired_replicas``:
a dashboard, or another scaler, may follow them). It remembers the targets it was
given, starting from the configured replica counts; notices still drain replicas at
the gateways (nothing is started or stopped).
"""

from __future__ import annotations

from collections.abc import Iterable

from gpufleet.config import FleetConfig


class ObservingActuator:
    def __init__(self, config: FleetConfig):
        self._targets = {
            f"{p.name}/{d.model}": d.replicas for p in config.pools for d in p.deployments
        }
        self._leaving: dict[str, str] = {}

    def keys(self) -> Iterable[str]:
        return tuple(self._targets)

    def active(self, key: str) -> int:
        return self._targets.get(key, 0)

    def pending(self, key: str) -> int:
        return 0

    def locate(self, replica_id: str) -> str | None:
        key = replica_id.rpartition("/")[0]
        return key if key in self._targets else None

    async def refresh(self) -> None:
        return None

    async def set_active(self, key: str, replicas: int) -> None:
        self._targets[key] = replicas

    async def leave(self, replica_id: str) -> None:
        key = self.locate(replica_id)
        if key is not None:
            self._leaving[replica_id] = key
            self._targets[key] = max(0, self._targets[key] - 1)

    async def retire(self, replica_id: str) -> None:
        self._leaving.pop(replica_id, None)

    async def close(self) -> None:
        return None
