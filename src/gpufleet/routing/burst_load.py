"""The gateway's own accounting of one replica's load between two scrapes. Pure.

A scrape is up to one interval old. ``BurstLoad`` counts what this gateway dispatched
to the replica and saw complete, remembers both totals at the moment a scrape was
*sent*, and corrects the scraped queue with what happened since: the same code in the
live gateway (``backends.endpoint.LiveEndpoint``) and the simulator (``sim.replica``).
"""

from __future__ import annotations


class BurstLoad:
    __slots__ = (
        "_completed_at_scrape",
        "_dispatched_at_scrape",
        "num_completed_total",
        "num_dispatched_total",
        "num_in_flight",
        "num_in_flight_tokens",
    )

    def __init__(self) -> None:
        self.num_in_flight = 0
        self.num_in_flight_tokens = 0
        self.num_dispatched_total = 0
        self.num_completed_total = 0
        self._dispatched_at_scrape = 0
        self._completed_at_scrape = 0

    def on_dispatch(self, num_tokens: int) -> None:
        self.num_in_flight += 1
        self.num_in_flight_tokens += num_tokens
        self.num_dispatched_total += 1

    def on_complete(self, num_tokens: int) -> None:
        self.num_in_flight -= 1
        self.num_in_flight_tokens -= num_tokens
        self.num_completed_total += 1

    def counters(self) -> tuple[int, int]:
        """(dispatched, completed) totals now: take them when a scrape is sent."""
        return self.num_dispatched_total, self.num_completed_total

    def scraped(self, counters_at_send: tuple[int, int]) -> None:
        """A scrape sent at ``counters_at_send`` arrived: corrections count from there."""
        self._dispatched_at_scrape, self._completed_at_scrape = counters_at_send

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
