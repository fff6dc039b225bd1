"""Micro-benchmark: cost of one routing decision with the default profile.

64 candidate endpoints with varied load, a 4 KB chat prompt sharing a long
prefix with earlier requests (so the prefix index has entries to match),
decide + dispatch hook per request. Prints p50/p99 µs per decision and writes
bench/results/routing_decision.json. Target (issue 4): p50 ≤ 100 µs.

    .venv/bin/python bench/routing_decision.py
"""

from __future__ import annotations

import json
import platform
import random
import statistics
import time
from pathlib import Path

from gpufleet.config import BUILTIN_PROFILES
from gpufleet.routing.profile import RoutingProfile
from gpufleet.types import Endpoint, RouteRequest

RESULTS = Path(__file__).parent / "results" / "routing_decision.json"


def main(num_candidates: int = 64, num_decisions: int = 20_000) -> dict[str, object]:
    rng = random.Random(1)
    endpoints = [
        Endpoint(
            id=f"pool/m/{i}",
            models=frozenset({"m"}),
            num_waiting=rng.randint(0, 4),  # within the standard band's limits: every
            num_running=rng.randint(0, 64),  # candidate passes the filters and is scored
            kv_usage=rng.random() * 0.8,
            num_in_flight=rng.randint(0, 32),
            kv_capacity_tokens=500_000,
        )
        for i in range(num_candidates)
    ]
    system_prompts = ["".join(rng.choice("abcdefghij ") for _ in range(3000)) for _ in range(4)]
    assert all(e.num_waiting <= 4 and e.kv_usage <= 0.875 for e in endpoints)
    results = {}
    for name in ("default", "round-robin", "least-load"):
        profile = RoutingProfile.from_config(name, BUILTIN_PROFILES[name])
        timings = []
        for n in range(num_decisions):
            text = system_prompts[n % 4] + f"user {n % 500} says " + "x" * 1000
            request = RouteRequest(model="m", prompt_tokens=1000, prompt_text=text, priority=5)
            start = time.perf_counter()
            decision = profile.decide(request, endpoints)
            assert decision is not None
            profile.on_dispatch(request, decision.endpoint)
            timings.append(time.perf_counter() - start)
        timings.sort()
        results[name] = {
            "p50_us": timings[len(timings) // 2] * 1e6,
            "p99_us": timings[int(len(timings) * 0.99)] * 1e6,
            "mean_us": statistics.fmean(timings) * 1e6,
        }
    report: dict[str, object] = {
        "benchmark": "routing_decision",
        "num_candidates": num_candidates,
        "prompt_chars": len(system_prompts[0]) + 1000 + 20,
        "num_decisions": num_decisions,
        "python": platform.python_version(),
        "profiles": results,
        "target_p50_us": 100,
    }
    print(f"routing decision, {num_candidates} candidates, ~4 KB prompt ({num_decisions} each)")
    print(f"{'profile':<14}{'p50 µs':>10}{'p99 µs':>10}{'mean µs':>10}")
    for name, row in results.items():
        print(f"{name:<14}{row['p50_us']:>10.1f}{row['p99_us']:>10.1f}{row['mean_us']:>10.1f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
