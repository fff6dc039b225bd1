"""The gateway's own accounting of one replica's load between two scrapes. Pure.

A scrape is up to one interval old. ``BurstLoad`` counts what this gateway dispatched
to the replica and saw complete, remembers the totals at the moment a scrape was
*sent*, and corrects the scraped queue and KV usage with what happened since: the same
code in the live gateway (``backends.endpoint.LiveEndpoint``) and the simulator
(``sim.replica``).
"""

from __future__ import annotations

from gpufleet.types import RouteRequest

Counters = tuple[int, int, int]
"""(dispatched, completed, prompt tokens dispatched) totals."""


class BurstLoad:
    __slots__ = (
        "_completed_at_scrape",
        "_dispatched_at_scrape",
        "_in_flight_by_priority",
        "_prompt_tokens_at_scrape",
        "max_priority_in_flight",
        "num_completed_total",
        "num_dispatched_total",
        "num_in_flight",
        "num_in_flight_tokens",
        "num_prompt_tokens_total",
    )

    def __init__(self) -> None:
        self.num_in_flight = 0
        self.num_in_flight_tokens = 0
        self.num_dispatched_total = 0
        self.num_completed_total = 0
        self.num_prompt_tokens_total = 0
        self._dispatched_at_scrape = 0
        self._completed_at_scrape = 0
        self._prompt_tokens_at_scrape = 0
        self._in_flight_by_priority: dict[int, int] = {}
        self.max_priority_in_flight = float("-inf")
        """The highest band with a request in flight; -inf when none is."""

    def on_dispatch(self, route: RouteRequest) -> None:
        """The request's prompt + max_tokens count as in flight until `on_complete`, its
        prompt as KV the engine takes at once (`kv_usage`), its band towards
        `max_priority_in_flight`."""
        priority = route.priority
        self.num_in_flight += 1
        self.num_in_flight_tokens += route.prompt_tokens + route.max_tokens
        self.num_dispatched_total += 1
        self.num_prompt_tokens_total += route.prompt_tokens
        by_priority = self._in_flight_by_priority
        by_priority[priority] = by_priority.get(priority, 0) + 1
        if priority > self.max_priority_in_flight:
            self.max_priority_in_flight = float(priority)

    def on_complete(self, route: RouteRequest) -> None:
        """The request dispatched as ``route`` completed (or failed, or was aborted)."""
        priority = route.priority
        self.num_in_flight -= 1
        self.num_in_flight_tokens -= route.prompt_tokens + route.max_tokens
        self.num_completed_total += 1
        by_priority = self._in_flight_by_priority
        left = by_priority[priority] - 1
        if left:
            by_priority[priority] = left
        else:
            del by_priority[priority]
            if priority == self.max_priority_in_flight:
                self.max_priority_in_flight = (
                    float(max(by_priority)) if by_priority else float("-inf")
                )

    def counters(self) -> Counters:
        """The totals now: take them when a scrape is sent."""
        return self.num_dispatched_total, self.num_completed_total, self.num_prompt_tokens_total

    def scraped(self, counters_at_send: Counters) -> None:
        """A scrape sent at ``counters_at_send`` arrived: corrections count from there."""
        (
            self._dispatched_at_scrape,
            self._completed_at_scrape,
            self._prompt_tokens_at_scrape,
        ) = counters_at_send

    def waiting(self, scraped_waiting: float, scraped_running: float) -> float:
        """Burst-corrected engine queue: the scraped waiting count, plus dispatches since
        the scrape was sent, minus completions since — and at least the in-flight
        requests the scraped running count does not cover (a scrape answered before the
        engine saw a burst cannot hide the burst)."""
        corrected = (
            scraped_waiting
            + (self.num_dispatched_total - self._dispatched_at_scrape)
            - (self.num_completed_total - self._completed_at_scrape)
        )
        return max(corrected, self.num_in_flight - scraped_running, 0.0)

    def kv_usage(self, scraped_kv_usage: float, kv_capacity_tokens: int | None) -> float:
        """Burst-corrected KV usage: the scraped fraction plus the prompts dispatched since
        the scrape was sent, as if none hit the prefix cache (at most 1.0). Completions
        are not subtracted: the KV they free shows in the next scrape. Without a known
        capacity (no ``vllm:cache_config_info``) the scraped value stands. Without this,
        every request dispatched between two scrapes sees the KV room of the last one:
        when a wave of requests finishes together, the next interval's dispatches all
        pass a KV limit that the first few of them already fill."""
        if not kv_capacity_tokens:
            return scraped_kv_usage
        since = self.num_prompt_tokens_total - self._prompt_tokens_at_scrape
        return min(1.0, scraped_kv_usage + since / kv_capacity_tokens)
