"""Synthetic single-turn requests: arrivals from a process, lengths from distributions. Pure."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from gpufleet.workload import arrivals as arrivals_module
from gpufleet.workload import lengths as lengths_module
from gpufleet.workload.arrivals import ArrivalProcess
from gpufleet.workload.lengths import LengthDistribution
from gpufleet.workload.spec import (
    DEFAULT_CLASSES,
    Message,
    RequestSpec,
    TrafficClass,
    labelled,
    pick_class,
    stream_rng,
)
from gpufleet.workload.text import synthetic_text


@dataclass(frozen=True)
class SyntheticWorkload:
    """Independent one-message chats of ``prompt_tokens`` tokens asking for ``output_tokens``.

    Each request draws its arrival gap, traffic class, prompt length, output
    length and words from separate seeded streams. Prompts share no prefix.
    """

    arrivals: ArrivalProcess
    prompt_tokens: LengthDistribution
    output_tokens: LengthDistribution
    classes: tuple[TrafficClass, ...] = DEFAULT_CLASSES

    def requests(self, seed: int, start_s: float = 0.0) -> Iterator[RequestSpec]:
        times, picks = stream_rng(seed, "arrivals"), stream_rng(seed, "classes")
        sizes, words = stream_rng(seed, "lengths"), stream_rng(seed, "text")
        now = start_s
        index = 0
        while True:
            now = self.arrivals.next_arrival_s(now, times)
            if math.isinf(now):
                return
            traffic = pick_class(self.classes, picks)
            num_prompt_tokens = self.prompt_tokens.sample(sizes)
            max_tokens = self.output_tokens.sample(sizes)
            message = Message("user", synthetic_text(num_prompt_tokens, words))
            yield labelled(index, now, (message,), num_prompt_tokens, max_tokens, traffic)
            index += 1

    def describe(self) -> dict[str, object]:
        return {
            "kind": "synthetic",
            "arrivals": arrivals_module.describe(self.arrivals),
            "prompt_tokens": lengths_module.describe(self.prompt_tokens),
            "output_tokens": lengths_module.describe(self.output_tokens),
            "classes": [c.name for c in self.classes],
        }
