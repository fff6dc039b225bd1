"""Per-request outcomes in flat typed arrays (cheap at millions of requests).

Contract: `RequestLog.open` registers a request on arrival and returns its row;
the simulator fills dispatch, first-token and finish times as they happen and
closes every row exactly once with `finish`, `shed` or `fail` (a second close
raises `SimulationError`). Unset times are NaN. Outcome codes: 0 open,
1 finished, 2 shed (admission deadline or full queue), 3 failed (with a cause).
"""

from __future__ import annotations

import math
from array import array

from gpufleet.sim.errors import SimulationError

OPEN, FINISHED, SHED, FAILED = 0, 1, 2, 3
_NAN = math.nan


class RequestLog:
    """Columns indexed by row (arrival order)."""

    __slots__ = (
        "arrival_s",
        "cause",
        "causes",
        "class_index",
        "dispatch_s",
        "finish_s",
        "first_token_s",
        "model_index",
        "num_output_tokens",
        "num_prompt_tokens",
        "num_retries",
        "outcome",
        "replica_index",
    )

    def __init__(self) -> None:
        self.arrival_s = array("d")
        self.dispatch_s = array("d")
        self.first_token_s = array("d")
        self.finish_s = array("d")
        self.model_index = array("i")
        self.class_index = array("i")
        self.replica_index = array("i")
        self.num_prompt_tokens = array("i")
        self.num_output_tokens = array("i")
        self.num_retries = array("i")
        self.outcome = array("b")
        self.cause = array("b")
        self.causes: list[str] = [""]

    def __len__(self) -> int:
        return len(self.arrival_s)

    def open(self, arrival_s: float, model_index: int, class_index: int, prompt: int) -> int:
        row = len(self.arrival_s)
        self.arrival_s.append(arrival_s)
        self.dispatch_s.append(_NAN)
        self.first_token_s.append(_NAN)
        self.finish_s.append(_NAN)
        self.model_index.append(model_index)
        self.class_index.append(class_index)
        self.replica_index.append(-1)
        self.num_prompt_tokens.append(prompt)
        self.num_output_tokens.append(0)
        self.num_retries.append(0)
        self.outcome.append(OPEN)
        self.cause.append(0)
        return row

    def finish(self, row: int, now_s: float, num_output_tokens: int) -> None:
        self._close(row, FINISHED, "")
        self.finish_s[row] = now_s
        self.num_output_tokens[row] = num_output_tokens

    def shed(self, row: int, now_s: float, cause: str) -> None:
        self._close(row, SHED, cause)
        self.finish_s[row] = now_s

    def fail(self, row: int, now_s: float, cause: str) -> None:
        self._close(row, FAILED, cause)
        self.finish_s[row] = now_s

    def _close(self, row: int, outcome: int, cause: str) -> None:
        if self.outcome[row] != OPEN:
            raise SimulationError(f"request row {row} closed twice")
        self.outcome[row] = outcome
        if cause:
            if cause not in self.causes:
                self.causes.append(cause)
            self.cause[row] = self.causes.index(cause)

    def num_open(self) -> int:
        return self.outcome.count(OPEN)
