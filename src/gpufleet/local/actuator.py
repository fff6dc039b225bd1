"""The local actuator: ``gpufleet up``'s simulated engines, started and stopped on demand.

Implements `gpufleet.control.actuator.Actuator` over a `LocalFleet` and the in-process
gateway's `FleetState`:

- a new replica is a ``gpufleet engine`` child process; once it answers ``/health`` it
  is registered with the gateway (id ``pool/model/N``, N past every index used so far)
  and probed at once, so it takes requests without waiting for the next probe round;
  until then it is *pending* (the gateway does not list it);
- scaling down takes the newest replicas: one still starting is stopped at once, one
  serving is drained at the gateway and stopped when it has nothing in flight (or after
  ``drain_timeout_s`` wall seconds);
- ``retire`` (end of a notice) stops the engine (SIGTERM: it drops what it still runs,
  as a reclaimed node would) and removes it from the gateway;
- ``refresh`` forgets engines that died on their own, so the loop replaces them.

Only the engines this fleet started are managed; static endpoints are left alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from gpufleet.config import FleetConfig
from gpufleet.errors import GpufleetError
from gpufleet.gateway.fleet import FleetState, probe_endpoint, runtime_endpoint_spec
from gpufleet.local.launcher import LocalEngine, LocalFleet, wait_engine_healthy

log = logging.getLogger("gpufleet.controller")
START_TIMEOUT_S = 30.0


@dataclass
class _Replica:
    key: str
    engine: LocalEngine
    registered: bool


class LocalActuator:
    def __init__(
        self,
        config: FleetConfig,
        local: LocalFleet,
        fleet: FleetState,
        drain_timeout_s: float = 30.0,
    ):
        self._config = config
        self._local = local
        self._fleet = fleet
        self._drain_timeout_s = drain_timeout_s
        self._keys = tuple(f"{p.name}/{d.model}" for p in config.pools for d in p.deployments)
        self._replicas: dict[str, _Replica] = {}
        self._leaving: set[str] = set()
        self._next_index: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        for endpoint in fleet.endpoints.values():
            key = f"{endpoint.pool}/{endpoint.spec.model}"
            index = endpoint.id.rsplit("/", 1)[-1]
            if index.isdigit():
                self._next_index[key] = max(self._next_index.get(key, 0), int(index) + 1)
        for engine in local.engines:
            found = fleet.find(engine.url)
            if found is not None:
                key = f"{engine.pool}/{engine.model}"
                self._replicas[found.id] = _Replica(key, engine, registered=True)

    # -- Actuator ----------------------------------------------------------------------
    def keys(self) -> Iterable[str]:
        return self._keys

    def active(self, key: str) -> int:
        return len(self._active(key))

    def pending(self, key: str) -> int:
        return sum(
            1
            for rid, r in self._replicas.items()
            if r.key == key and not r.registered and rid not in self._leaving
        )

    def locate(self, replica_id: str) -> str | None:
        replica = self._replicas.get(replica_id)
        return replica.key if replica is not None else None

    async def refresh(self) -> None:
        for rid, replica in list(self._replicas.items()):
            if replica.engine.process.poll() is not None and rid not in self._leaving:
                log.warning("engine of %s exited (status %s): forgotten", rid,
                            replica.engine.process.returncode)  # fmt: skip
                await self.retire(rid)

    async def set_active(self, key: str, replicas: int) -> None:
        active = self._active(key)
        for _ in range(replicas - len(active)):
            self._start(key)
        for rid in reversed(active[replicas:] if replicas < len(active) else []):
            self._leaving.add(rid)
            self._spawn(self._scale_down(rid))

    async def leave(self, replica_id: str) -> None:
        if replica_id in self._replicas:
            self._leaving.add(replica_id)

    async def retire(self, replica_id: str) -> None:
        replica = self._replicas.pop(replica_id, None)
        self._leaving.discard(replica_id)
        if replica is None:
            return
        endpoint = self._fleet.endpoints.get(replica_id)
        if endpoint is not None and not endpoint.num_in_flight:
            self._fleet.remove(replica_id)  # drained: gone before it stops (no failed probe)
        await self._local.stop_engine(replica.engine)
        self._fleet.remove(replica_id)  # what it still ran was cut when it stopped

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- internals -------------------------------------------------------------------
    def _active(self, key: str) -> list[str]:
        return [
            rid for rid, r in self._replicas.items() if r.key == key and rid not in self._leaving
        ]

    def _start(self, key: str) -> None:
        pool_name, _, model = key.partition("/")
        pool = next(p for p in self._config.pools if p.name == pool_name)
        spec = self._config.model(model).spec or model
        engine = self._local.start_engine(model, spec, pool)
        index = self._next_index.get(key, 0)
        self._next_index[key] = index + 1
        replica_id = f"{key}/{index}"
        self._replicas[replica_id] = _Replica(key, engine, registered=False)
        log.info("starting %s on port %d", replica_id, engine.port)
        self._spawn(self._bring_up(replica_id))

    async def _bring_up(self, replica_id: str) -> None:
        replica = self._replicas[replica_id]
        try:
            await wait_engine_healthy(replica.engine, START_TIMEOUT_S)
        except GpufleetError as exc:
            log.error("%s did not start: %s", replica_id, exc)
            await self.retire(replica_id)
            return
        if replica_id not in self._replicas or replica_id in self._leaving:
            return
        pool, _, model = replica.key.partition("/")
        self._fleet.add(
            runtime_endpoint_spec(self._config, pool, model, replica_id, replica.engine.url)
        )
        await probe_endpoint(self._fleet, replica_id)
        replica.registered = True
        log.warning("replica %s is up at %s", replica_id, replica.engine.url)

    async def _scale_down(self, replica_id: str) -> None:
        endpoint = self._fleet.endpoints.get(replica_id)
        if endpoint is not None:
            endpoint.draining = True
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._drain_timeout_s
            while endpoint.num_in_flight and loop.time() < deadline:
                await asyncio.sleep(0.05)
        await self.retire(replica_id)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
