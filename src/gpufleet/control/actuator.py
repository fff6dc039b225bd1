"""The seam between the control loop and whatever runs replicas.

Counts are per deployment key (``pool/model``). A replica is *active* from the moment
it is requested (starting or serving) until it is told to leave: scaling down, or a
preemption notice. ``set_active`` reaches a target count of active replicas, as the
simulator's ``apply_autoscale`` does: below it new replicas are requested, above it the
newest leave (drained first). A replica under notice is no longer active (its
replacement is), keeps serving what it has, and is stopped by ``retire`` at the end of
its notice. Failures to act are raised as ``GpufleetError`` (foreign errors translated
inside the actuator), so the loop can log them and try again next round.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol


class Actuator(Protocol):
    def keys(self) -> Iterable[str]:
        """The deployment keys it can scale."""
        ...

    def active(self, key: str) -> int:
        """Replicas requested for ``key`` and not leaving."""
        ...

    def pending(self, key: str) -> int:
        """Requested replicas of ``key`` that no gateway lists yet (cold start)."""
        ...

    def locate(self, replica_id: str) -> str | None:
        """The deployment key of a replica (a gateway endpoint id), None if unknown."""
        ...

    async def refresh(self) -> None:
        """Re-read the actual state (e.g. the Deployments) before a decision."""
        ...

    async def set_active(self, key: str, replicas: int) -> None:
        """Reach ``replicas`` active replicas of ``key``."""
        ...

    async def leave(self, replica_id: str) -> None:
        """The replica got a notice: no longer active (it finishes what it has)."""
        ...

    async def retire(self, replica_id: str) -> None:
        """Stop a leaving replica now (its notice ended)."""
        ...

    async def close(self) -> None: ...
