"""Controller time: seconds since start, scaled like the engines it drives.

The local fleet's engines run ``speed`` times faster than the wall clock, so a 30 s
notice, a policy interval or a cooldown last ``1/speed`` of that in wall time; policies
and notices are always stated in engine (policy) seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class ControlClock:
    def __init__(self, scale: float = 1.0, wall: Callable[[], float] = time.monotonic):
        if scale <= 0:
            raise ValueError("the time scale must be positive")
        self.scale = scale
        self._wall = wall
        self._start = wall()

    def now_s(self) -> float:
        """Policy seconds since the controller started."""
        return (self._wall() - self._start) * self.scale

    def wall_s(self, policy_s: float) -> float:
        """Wall seconds that ``policy_s`` policy seconds take."""
        return policy_s / self.scale
