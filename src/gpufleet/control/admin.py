"""``POST /admin/preempt``: a manual preemption notice (``gpufleet preempt``).

Body: ``{"replica": "<endpoint id>", "notice_s": 30}`` (``notice_s`` in engine seconds,
default 30; the local fleet divides it by its ``--speed``). Answer: the replica, its
deployment, where its replacement was requested, the notice in engine and wall seconds.
"""

from __future__ import annotations

import math

from gpufleet.api.app import JsonHandler
from gpufleet.control.clock import ControlClock
from gpufleet.control.notices import ADMIN_SOURCE, Notice
from gpufleet.control.preemption import PreemptionHandler
from gpufleet.errors import InvalidRequest

PREEMPT_PATH = "/admin/preempt"
DEFAULT_NOTICE_S = 30.0
MAX_NOTICE_S = 24 * 3600.0


def preempt_route(handler: PreemptionHandler, clock: ControlClock) -> JsonHandler:
    async def preempt(body: dict[str, object]) -> dict[str, object]:
        replica = body.get("replica")
        if not isinstance(replica, str) or not replica:
            raise InvalidRequest("'replica' (an endpoint id) is required", param="replica")
        notice_s = body.get("notice_s", DEFAULT_NOTICE_S)
        if (
            isinstance(notice_s, bool)
            or not isinstance(notice_s, int | float)
            or not math.isfinite(notice_s)
            or not 0 <= notice_s <= MAX_NOTICE_S
        ):
            raise InvalidRequest(
                f"'notice_s' must be a number of seconds from 0 to {MAX_NOTICE_S:.0f}",
                param="notice_s",
            )
        outcome = await handler.handle(Notice(replica, float(notice_s), ADMIN_SOURCE))
        return {
            **outcome.describe(),
            "notice_s": float(notice_s),
            "notice_wall_s": clock.wall_s(float(notice_s)),
        }

    return preempt
