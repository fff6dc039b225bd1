"""Engine-model throughput: simulated tokens per wall-clock second on one core.

Workload (default): 256 requests arriving at once, 512-token prompts (unique
random token ids), 512 output tokens each, Llama-3-8B on one H100 with the
planner's KV pool and vLLM's H100 defaults (8,192 batched tokens, 1,024 seqs).
Every request is stepped to completion through `EngineModel.step`.

"Simulated tokens" counts every token the engine computed (prefill chunks plus
decode tokens, i.e. Σ StepResult.num_scheduled_tokens); generated tokens are
reported separately. Target: ≥ 1,000,000 simulated tokens per wall-second.
Run pinned to one core for the reported figure:

    taskset -c 0 .venv/bin/python bench/engine.py

Prints a table (median of --runs runs) and writes raw figures to
bench/results/engine.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from gpufleet.engine.config import EngineConfig
from gpufleet.engine.engine_model import EngineModel
from gpufleet.engine.latency import RooflineLatency
from gpufleet.engine.request import EngineRequest
from gpufleet.plan.catalog import Catalog
from gpufleet.plan.memory import estimate_kv_pool

TARGET_TOKENS_PER_S = 1_000_000
RESULTS = Path(__file__).resolve().parent / "results" / "engine.json"


@dataclass(frozen=True)
class RunFigures:
    """Raw figures of one run."""

    wall_s: float
    num_steps: int
    simulated_tokens: int
    generated_tokens: int
    simulated_s: float
    num_preemptions: int

    @property
    def tokens_per_wall_s(self) -> float:
        return self.simulated_tokens / self.wall_s

    @property
    def generated_per_wall_s(self) -> float:
        return self.generated_tokens / self.wall_s

    @property
    def steps_per_s(self) -> float:
        return self.num_steps / self.wall_s


def build_requests(
    num_requests: int, prompt_len: int, output_len: int, seed: int
) -> list[EngineRequest]:
    rng = random.Random(seed)
    return [
        EngineRequest(
            request_id=f"bench-{i}",
            prompt_token_ids=tuple(rng.randrange(128_000) for _ in range(prompt_len)),
            max_tokens=output_len,
        )
        for i in range(num_requests)
    ]


def run_once(args: argparse.Namespace, requests: list[EngineRequest]) -> RunFigures:
    catalog = Catalog.load()
    model, gpu = catalog.model(args.model), catalog.gpu(args.gpu)
    pool = estimate_kv_pool(model, gpu, args.tp)
    engine = EngineModel(EngineConfig.from_kv_pool(pool), RooflineLatency(model, gpu, args.tp))
    now_s = 0.0
    num_steps = simulated = generated = 0
    start = time.perf_counter()
    for request in requests:
        engine.add_request(request)
    while engine.has_work:
        result = engine.step(now_s)
        now_s = result.end_s
        num_steps += 1
        simulated += result.num_scheduled_tokens
        generated += result.num_generated_tokens
    wall_s = time.perf_counter() - start
    return RunFigures(
        wall_s=wall_s,
        num_steps=num_steps,
        simulated_tokens=simulated,
        generated_tokens=generated,
        simulated_s=now_s,
        num_preemptions=engine.stats.num_preemptions,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=256)
    parser.add_argument("--prompt-len", type=int, default=512)
    parser.add_argument("--output-len", type=int, default=512)
    parser.add_argument("--model", default="llama-3-8b")
    parser.add_argument("--gpu", default="h100-sxm")
    parser.add_argument("--tp", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    requests = build_requests(args.requests, args.prompt_len, args.output_len, seed=0)
    runs = [run_once(args, requests) for _ in range(args.runs)]
    median = statistics.median(r.tokens_per_wall_s for r in runs)
    first = runs[0]

    print(
        f"engine model: {args.requests} requests × ({args.prompt_len} prompt + "
        f"{args.output_len} output) tokens, {args.model} on {args.gpu} TP{args.tp}"
    )
    header = f"{'run':>4} {'sim tokens':>11} {'wall s':>8} {'sim tok/wall s':>15} {'steps/s':>9}"
    print(header)
    print("-" * len(header))
    for index, r in enumerate(runs, 1):
        print(
            f"{index:>4} {r.simulated_tokens:>11,} {r.wall_s:>8.3f} "
            f"{r.tokens_per_wall_s:>15,.0f} {r.steps_per_s:>9,.0f}"
        )
    print("-" * len(header))
    verdict = "meets" if median >= TARGET_TOKENS_PER_S else "MISSES"
    print(
        f"median {median:,.0f} simulated tokens per wall-second ({verdict} the "
        f"{TARGET_TOKENS_PER_S:,} target); generated tokens per wall-second "
        f"{statistics.median(r.generated_per_wall_s for r in runs):,.0f}"
    )
    print(
        f"simulated: {first.num_steps} steps, {first.simulated_s:.2f} s of GPU time, "
        f"{first.generated_tokens / first.simulated_s:,.0f} output tokens/s, "
        f"{first.num_preemptions} preemptions"
    )

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    RESULTS.write_text(
        json.dumps(
            {
                "workload": vars(args),
                "python": platform.python_version(),
                "cpu_affinity": affinity,
                "target_tokens_per_wall_s": TARGET_TOKENS_PER_S,
                "median_tokens_per_wall_s": median,
                "runs": [
                    {
                        "wall_s": r.wall_s,
                        "num_steps": r.num_steps,
                        "simulated_tokens": r.simulated_tokens,
                        "generated_tokens": r.generated_tokens,
                        "tokens_per_wall_s": r.tokens_per_wall_s,
                        "generated_tokens_per_wall_s": r.generated_per_wall_s,
                        "steps_per_s": r.steps_per_s,
                        "simulated_s": r.simulated_s,
                        "num_preemptions": r.num_preemptions,
                    }
                    for r in runs
                ],
            },
            indent=2,
        )
        + "\n"
    )
    print(f"raw figures: {RESULTS}")


if __name__ == "__main__":
    main()
