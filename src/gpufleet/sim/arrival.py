"""What the simulator needs of one request, and the two ways to get it from a workload.

Contract: a `SimArrival` is a request as the gateway would see it on arrival:
model name (None: the fleet's first model), prompt length, output length,
labels, and the prompt as a `SyntheticPrompt` — one segment per chat message,
seeded by a CRC of the message text, so repeated messages (a shared system
prompt, a conversation's history) are the same tokens to the engine's prefix
cache. ``prompt_text`` is only filled when the routing profile reads it.

`from_specs` adapts any `Workload` (it builds the workload's text);
`compact_synthetic` draws a `SyntheticWorkload`'s arrival times, classes and
lengths from the very same seeded streams, in the same order, but never builds
text — the same requests, minus prompts, for profiles that do not read them.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator

from gpufleet.engine.request import SyntheticPrompt
from gpufleet.workload.spec import RequestSpec, pick_class, stream_rng
from gpufleet.workload.synthetic import SyntheticWorkload


class SimArrival:
    """One arriving request (slotted; never the prompt in a repr)."""

    __slots__ = (
        "arrival_s",
        "index",
        "max_tokens",
        "model",
        "num_prompt_tokens",
        "priority",
        "prompt",
        "prompt_text",
        "request_class",
        "session_id",
        "tenant",
    )

    def __init__(
        self,
        index: int,
        arrival_s: float,
        model: str | None,
        prompt: SyntheticPrompt,
        max_tokens: int,
        *,
        session_id: str | None = None,
        tenant: str | None = None,
        priority: int | None = None,
        request_class: str | None = None,
        prompt_text: str = "",
    ) -> None:
        self.index = index
        self.arrival_s = arrival_s
        self.model = model
        self.prompt = prompt
        self.num_prompt_tokens = prompt.num_tokens
        self.max_tokens = max_tokens
        self.session_id = session_id
        self.tenant = tenant
        self.priority = priority
        self.request_class = request_class
        self.prompt_text = prompt_text


def from_spec(spec: RequestSpec, with_text: bool) -> SimArrival:
    """The arrival for one workload spec (module doc)."""
    segments = tuple(
        (zlib.crc32(m.content.encode()), max(1, -(-len(m.content) // 4)))
        for m in spec.messages
        if m.content
    ) or ((spec.index, max(1, spec.num_prompt_tokens)),)
    return SimArrival(
        spec.index,
        spec.arrival_s,
        spec.model,
        SyntheticPrompt(segments),
        spec.max_tokens,
        session_id=spec.session_id,
        tenant=spec.tenant,
        priority=spec.priority,
        request_class=spec.request_class,
        prompt_text=spec.prompt if with_text else "",
    )


def from_specs(specs: Iterator[RequestSpec], with_text: bool) -> Iterator[SimArrival]:
    """Adapt a workload's specs."""
    for spec in specs:
        yield from_spec(spec, with_text)


def compact_synthetic(
    workload: SyntheticWorkload, seed: int, start_s: float = 0.0
) -> Iterator[SimArrival]:
    """`SyntheticWorkload.requests` without the text (module doc). Each prompt is one
    segment seeded by the request index, so prompts share no prefix, as there: they
    say so (``unique_from=0``), and the engine keeps their blocks private (O(1) KV
    work per request)."""
    times, picks = stream_rng(seed, "arrivals"), stream_rng(seed, "classes")
    sizes = stream_rng(seed, "lengths")
    arrivals, prompt_len, output_len = (
        workload.arrivals,
        workload.prompt_tokens,
        workload.output_tokens,
    )
    classes = workload.classes
    seed_base = (seed + 1) << 32
    now = start_s
    index = 0
    while True:
        now = arrivals.next_arrival_s(now, times)
        if math.isinf(now):
            return
        traffic = pick_class(classes, picks)
        num_prompt = max(1, prompt_len.sample(sizes))
        max_tokens = output_len.sample(sizes)
        yield SimArrival(
            index,
            now,
            traffic.model,
            SyntheticPrompt(((seed_base + index, num_prompt),), unique_from=0),
            max_tokens,
            tenant=traffic.tenant,
            priority=traffic.priority,
            request_class=traffic.request_class,
        )
        index += 1
