"""What the planner must serve: per model a request rate split into length buckets.

Contract: `length_buckets` splits a sample of (prompt, output) lengths into
buckets by total length at the given quantiles (default the median and p90:
short, medium, long) — the Mélange idea: each bucket can go to the GPU type
that serves that length cheapest. A bucket carries its share of requests and
its mean prompt/output lengths (what `replica_capacity` takes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise


@dataclass(frozen=True)
class LengthBucket:
    share: float
    prompt_tokens: float
    output_tokens: float
    max_total_tokens: int


@dataclass(frozen=True)
class ModelDemand:
    """``model``: the served name; ``spec``: its catalog id; ``context_length``: max_model_len."""

    model: str
    spec: str
    requests_per_s: float
    buckets: tuple[LengthBucket, ...]
    context_length: int = 8192

    @property
    def mean_output_tokens(self) -> float:
        return sum(b.share * b.output_tokens for b in self.buckets)


def length_buckets(
    samples: Sequence[tuple[int, int]], quantiles: Sequence[float] = (0.5, 0.9)
) -> tuple[LengthBucket, ...]:
    """Buckets by total length at ``quantiles`` of the sample (empty buckets dropped)."""
    if not samples:
        raise ValueError("no length samples")
    ordered = sorted(samples, key=lambda s: s[0] + s[1])
    n = len(ordered)
    cuts = [0, *sorted({min(n, max(1, round(q * n))) for q in quantiles}), n]
    buckets = []
    for lo, hi in pairwise(cuts):
        part = ordered[lo:hi]
        if not part:
            continue
        buckets.append(
            LengthBucket(
                share=len(part) / n,
                prompt_tokens=sum(p for p, _ in part) / len(part),
                output_tokens=sum(o for _, o in part) / len(part),
                max_total_tokens=max(p + o for p, o in part),
            )
        )
    return tuple(buckets)
