"""The ``gpufleet bench`` command-line arguments (added to the subcommand's parser by cli.py)."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Load-test any OpenAI-compatible endpoint (gpufleet, vLLM, SGLang, ...): open-loop arrivals
(--rate, a comma-separated list sweeps) or a closed loop (--concurrency), streaming by default.
Reports TTFT, inter-token latency (ITL), TPOT and end-to-end latency percentiles, throughput,
goodput under SLOs (--slo-ttft-ms, --slo-itl-ms) and errors by cause; --json writes the results
(schema in docs/bench.md), --plots writes PNG charts.

Length distributions (DIST): N | fixed:N | uniform:LO,HI | lognormal:MEAN,CV[,MAX]
Exit codes: 0 ok, 1 every request failed (or the server cannot be reached), 2 usage error."""

EPILOG = """\
examples:
  gpufleet bench --url http://127.0.0.1:8080 --rate 10 --duration 60
  gpufleet bench --url http://127.0.0.1:8080 --rate 5,10,20,40 --duration 30 \\
      --json out.json --plots plots/
  gpufleet bench --url http://vllm:8000/v1 --model llama-3-8b --concurrency 32 \\
      --num-requests 1000 --prompt-tokens lognormal:512,0.8,4096 --max-tokens uniform:64,256 \\
      --slo-ttft-ms 500 --slo-itl-ms 50
  gpufleet bench --url http://127.0.0.1:8080 --workload multi-turn --users 64 --rate 20
  gpufleet bench --url http://127.0.0.1:8080 --workload azure --trace azure_conv.csv \\
      --time-scale 2
  gpufleet bench --url http://127.0.0.1:8080 --workload sharegpt --trace sharegpt.json \\
      --arrival gamma --cv 3 --rate 8"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every bench option to ``parser`` (the ``bench`` subparser)."""
    add = parser.add_argument
    add("--url", required=True, help="server URL, e.g. http://127.0.0.1:8080 or .../v1")
    add("--model", help="model name (default: the first one GET /v1/models lists)")
    add(
        "--endpoint",
        choices=("chat", "completions"),
        default="chat",
        help="/v1/chat/completions (default) or /v1/completions",
    )
    add("--no-stream", dest="stream", action="store_false", help="ask for whole responses")
    add("--ignore-eos", action="store_true", help="send ignore_eos (vLLM: generate max_tokens)")
    add("--header", action="append", default=[], metavar="'NAME: VALUE'", help="extra header")
    add("--api-key", help="sent as 'authorization: Bearer KEY'")
    add(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="no progress display (also off when stderr is not a terminal)",
    )
    add("-v", "--verbose", action="count", default=argparse.SUPPRESS, help="tracebacks on errors")

    load = parser.add_argument_group("load")
    load.add_argument("--rate", help="open loop: requests/s, or a comma-separated sweep")
    load.add_argument("--concurrency", type=int, help="closed loop: requests kept in flight")
    load.add_argument("--duration", type=float, help="seconds per run (default 60)")
    load.add_argument("--num-requests", type=int, help="requests per run")
    load.add_argument("--timeout", type=float, default=600.0, help="seconds per request (600)")
    load.add_argument(
        "--max-connections",
        type=int,
        default=4096,
        help="open-loop connection limit (default 4096)",
    )
    load.add_argument(
        "--arrival",
        choices=("poisson", "gamma", "diurnal", "step"),
        default="poisson",
        help="open-loop arrivals (default poisson)",
    )
    load.add_argument("--cv", type=float, default=2.0, help="gamma: CV of the gaps (default 2)")
    load.add_argument(
        "--peak-to-trough",
        type=float,
        default=3.0,
        help="diurnal: peak/trough rate ratio (default 3)",
    )
    load.add_argument(
        "--period", type=float, default=86_400.0, help="diurnal: period in seconds (default 86400)"
    )
    load.add_argument("--steps", help="step: 'START_S:RATE,...', e.g. 0:5,30:20,60:5")
    load.add_argument("--seed", type=int, default=0, help="workload seed (default 0)")

    work = parser.add_argument_group("workload")
    work.add_argument(
        "--workload",
        choices=("synthetic", "multi-turn", "azure", "sharegpt"),
        default="synthetic",
        help="request source (default synthetic)",
    )
    work.add_argument(
        "--prompt-tokens",
        metavar="DIST",
        help="prompt length (default 256; multi-turn: user message, 64)",
    )
    work.add_argument(
        "--max-tokens",
        metavar="DIST",
        help="output length asked for (default 128; traces: a cap N)",
    )
    work.add_argument("--users", type=int, default=16, help="multi-turn: users (default 16)")
    work.add_argument(
        "--system-prompts",
        type=int,
        default=4,
        help="multi-turn: shared system prompts (default 4)",
    )
    work.add_argument(
        "--system-prompt-tokens",
        type=int,
        default=1024,
        help="multi-turn: system prompt length (default 1024)",
    )
    work.add_argument(
        "--turns", type=int, default=5, help="multi-turn: turns per conversation (default 5)"
    )
    work.add_argument(
        "--max-prompt-tokens",
        type=int,
        default=8192,
        help="multi-turn/azure: prompt length cap (default 8192)",
    )
    work.add_argument("--trace", help="azure: trace CSV; sharegpt: conversations JSON")
    work.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="azure: replay speed-up (default 1; or set --rate)",
    )
    work.add_argument(
        "--whole-conversations", action="store_true", help="sharegpt: replay all turns as sessions"
    )

    out = parser.add_argument_group("results")
    out.add_argument("--slo-ttft-ms", type=float, help="goodput: TTFT objective")
    out.add_argument("--slo-itl-ms", type=float, help="goodput: mean inter-token objective")
    out.add_argument(
        "--json",
        metavar="FILE",
        help="write results (schema_version 1) here (- : stdout, the table then goes to stderr)",
    )
    out.add_argument("--plots", metavar="DIR", help="write PNG plots into this directory")
