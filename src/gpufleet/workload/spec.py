"""What a workload produces: request specs, and the traffic classes they belong to. Pure values.

A ``RequestSpec`` is everything a client (the live load generator) or a model of
one (the discrete-event simulator) needs to issue one request: when it arrives,
what it says, how long its answer may be, and who sends it. Prompts are never
part of a spec's ``repr``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message (``role`` is ``system``, ``user`` or ``assistant``)."""

    role: str
    content: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class TrafficClass:
    """Who sends a share of the traffic, and how it is labelled.

    ``weight`` is relative (a class with weight 3 sends three times as many
    requests as one with weight 1). ``None`` fields are left to the caller: no
    model means the run's default model, no tenant/priority/class means no
    header is sent.
    """

    name: str = "default"
    weight: float = 1.0
    model: str | None = None
    tenant: str | None = None
    priority: int | None = None
    request_class: str | None = None

    def __post_init__(self) -> None:
        if not self.weight > 0:
            raise ValueError(f"traffic class {self.name!r}: weight must be > 0")


DEFAULT_CLASSES: tuple[TrafficClass, ...] = (TrafficClass(),)


def pick_class(classes: tuple[TrafficClass, ...], rng: random.Random) -> TrafficClass:
    """One class drawn with probability proportional to its weight (one draw from ``rng``)."""
    if len(classes) == 1:
        rng.random()  # keep the stream of draws independent of the number of classes
        return classes[0]
    return rng.choices(classes, weights=[c.weight for c in classes])[0]


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """One request of a workload.

    Contract: ``arrival_s`` is seconds on the workload's clock (the ``start_s``
    the workload was asked to start at, plus the arrival process's gaps);
    specs of one workload come in non-decreasing ``arrival_s`` and increasing
    ``index``. ``num_prompt_tokens`` is an estimate (≈ 4 UTF-8 bytes per token,
    see `estimate_tokens`) of the message contents; ``max_tokens`` ≥ 1 is the
    output length to ask for. ``session_id`` is shared by the turns of one
    conversation (sent as ``x-session-id``); ``tenant``, ``priority`` and
    ``request_class`` come from the request's `TrafficClass`.
    """

    index: int
    arrival_s: float
    messages: tuple[Message, ...] = field(repr=False)
    num_prompt_tokens: int
    max_tokens: int
    model: str | None = None
    session_id: str | None = None
    tenant: str | None = None
    priority: int | None = None
    request_class: str | None = None
    traffic_class: str = "default"

    @property
    def prompt(self) -> str:
        """The messages as one completions prompt: contents joined by blank lines."""
        return "\n\n".join(message.content for message in self.messages)


def labelled(
    index: int,
    arrival_s: float,
    messages: tuple[Message, ...],
    num_prompt_tokens: int,
    max_tokens: int,
    traffic: TrafficClass,
    session_id: str | None = None,
) -> RequestSpec:
    """A spec carrying ``traffic``'s model and labels."""
    return RequestSpec(
        index=index,
        arrival_s=arrival_s,
        messages=messages,
        num_prompt_tokens=num_prompt_tokens,
        max_tokens=max_tokens,
        model=traffic.model,
        session_id=session_id,
        tenant=traffic.tenant,
        priority=traffic.priority,
        request_class=traffic.request_class,
        traffic_class=traffic.name,
    )


class Workload(Protocol):
    """A reproducible source of request specs."""

    def requests(self, seed: int, start_s: float = 0.0) -> Iterator[RequestSpec]:
        """The workload's specs from ``start_s`` on, in arrival order; possibly endless.

        Contract: the same ``seed`` and ``start_s`` give the same specs, in any
        process; the caller stops iterating when it has enough.
        """
        ...

    def describe(self) -> dict[str, object]:
        """The workload's parameters, JSON-ready (no prompt text)."""
        ...


def stream_rng(seed: int, stream: str) -> random.Random:
    """An rng for one named stream of draws (arrivals, lengths, text, ...) of ``seed``.

    Separate streams keep, e.g., arrival times unchanged when length
    parameters change. Seeding with a string is stable across processes.
    """
    return random.Random(f"gpufleet-workload/{seed}/{stream}")
