"""The ``gpufleet`` command: thin — load config, call the library, print.

Exit codes: 0 ok, 1 failure, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from gpufleet import __version__
from gpufleet.errors import ConfigError, GpufleetError

EXAMPLES = """examples:
  gpufleet up                                 # local simulated fleet + gateway
  gpufleet serve -c examples/fleet.yaml       # gateway in front of the fleet's endpoints
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpufleet",
        description="Orchestrate LLM inference on GPU fleets.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"gpufleet {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the OpenAI-compatible gateway",
        description="Run the gateway in front of the endpoints of a fleet.yaml.",
        epilog="example:\n  gpufleet serve -c examples/fleet.yaml --port 8080",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("-c", "--config", required=True, help="path to fleet.yaml")
    serve.add_argument("--host", default=None, help="listen address (default: gateway.host)")
    serve.add_argument("--port", type=int, default=None, help="listen port (default: gateway.port)")
    up = commands.add_parser(
        "up",
        help="run a local fleet: simulated engines + the gateway",
        description=(
            "Start simulated engines for every deployment of the fleet that has no "
            "endpoints, then the gateway in front of all of them. Ctrl-C stops everything."
        ),
        epilog="examples:\n  gpufleet up\n  gpufleet up -c my-fleet.yaml --port 9000 --speed 5",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    up.add_argument("-c", "--config", default=None, help="fleet.yaml (default: the example)")
    up.add_argument("--host", default=None, help="listen address (default: gateway.host)")
    up.add_argument("--port", type=int, default=None, help="listen port (default: gateway.port)")
    up.add_argument("--speed", type=float, default=1.0, help="engine time scale (default 1)")

    engine = commands.add_parser(
        "engine",
        help="run one simulated vLLM replica",
        description=(
            "Serve the engine model of one replica live, behind vLLM's HTTP surface "
            "(/v1/chat/completions, /v1/completions, /v1/models, /health, /metrics)."
        ),
        epilog=(
            "examples:\n  gpufleet engine --model llama-3-8b --gpu h100 --port 8001\n"
            "  gpufleet engine --model llama-3-70b --gpu h100 --tp 4 --speed 10"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    engine.add_argument("--model", required=True, help="catalog model id, e.g. llama-3-8b")
    engine.add_argument("--gpu", required=True, help="catalog GPU id, e.g. h100, l40s")
    engine.add_argument("--tp", type=int, default=1, help="tensor-parallel degree (default 1)")
    engine.add_argument("--speed", type=float, default=1.0, help="time scale (10 = 10x faster)")
    engine.add_argument("--host", default="127.0.0.1")
    engine.add_argument("--port", type=int, default=8000)
    engine.add_argument(
        "--served-model-name", action="append", default=[], help="name(s) clients use"
    )
    engine.add_argument("--max-model-len", type=int, default=None)
    engine.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    engine.add_argument("--max-num-seqs", type=int, default=None)
    engine.add_argument("--max-num-batched-tokens", type=int, default=None)
    engine.add_argument("--lora-modules", nargs="*", default=[], help="LoRA adapter names")
    engine.add_argument("--max-loras", type=int, default=4)
    engine.add_argument("--speculative-k", type=int, default=0, help="draft tokens per step")
    engine.add_argument("--speculative-alpha", type=float, default=0.7, help="acceptance rate")
    engine.add_argument(
        "--stream-interval", type=int, default=1, help="tokens per streamed chunk after the first"
    )
    faults = engine.add_argument_group("fault injection (tests and drills)")
    faults.add_argument("--fail-fraction", type=float, default=0.0, help="answer 500 this often")
    faults.add_argument("--die-after-tokens", type=int, default=0, help="exit after N tokens")
    faults.add_argument("--hang", action="store_true", help="never answer inference requests")
    faults.add_argument(
        "--reset-after-tokens", type=int, default=0, help="reset each stream after N tokens"
    )
    faults.add_argument("--slow-start", type=float, default=0.0, help="/health 503 for S s")
    faults.add_argument("--unhealthy", action="store_true", help="/health always 503")

    render = commands.add_parser(
        "render",
        help="render deployment files: Kubernetes, Helm chart, Terraform, Grafana",
        description=(
            "Render the fleet as Kubernetes manifests, a Helm chart (values from fleet.yaml), "
            "Terraform for EKS GPU node groups, or a Grafana dashboard. Deterministic output."
        ),
        epilog=(
            "examples:\n  gpufleet render -c fleet.yaml --target k8s -o out/k8s\n"
            "  gpufleet render -c fleet.yaml --target helm -o deploy/helm/gpufleet"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    render.add_argument("-c", "--config", required=True, help="path to fleet.yaml")
    render.add_argument(
        "--target", required=True, choices=("k8s", "helm", "terraform", "grafana"), help="format"
    )
    render.add_argument("-o", "--output", required=True, help="directory to write the files to")

    from gpufleet.bench.arguments import DESCRIPTION, EPILOG, add_arguments

    bench = commands.add_parser(
        "bench",
        help="load-test an OpenAI-compatible endpoint",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(bench)

    sim = commands.add_parser(
        "sim",
        help="simulate the fleet on a workload (virtual time)",
        description=(
            "Run the fleet's routing profile and admission queue over engine models of its "
            "replicas on virtual time, with spot interruptions and cold starts; report latency "
            "percentiles, SLO attainment, throughput and cost."
        ),
        epilog=(
            "examples:\n  gpufleet sim -c fleet.yaml --workload chat\n"
            "  gpufleet sim -c fleet.yaml --workload workload.yaml --json out/sim.json "
            "--plots out/"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sim.add_argument("-c", "--config", required=True, help="path to fleet.yaml")
    sim.add_argument(
        "--workload", required=True, help="built-in (chat, multi-turn, mixed, bursty) or a file"
    )
    sim.add_argument("--duration", type=float, default=None, help="override duration_s")
    sim.add_argument("--seed", type=int, default=None, help="override the workload seed")
    sim.add_argument("--slo-ttft", type=float, default=None, help="TTFT target (s)")
    sim.add_argument("--slo-itl", type=float, default=0.1, help="ITL target (s, default 0.1)")
    sim.add_argument(
        "--spot-rate", type=float, default=0.02, help="spot interruptions per replica-hour"
    )
    sim.add_argument("--spot-notice", type=float, default=120.0, help="spot notice (s)")
    sim.add_argument("--cold", action="store_true", help="initial replicas cold-start too")
    sim.add_argument("--json", default=None, help="write the report as JSON here")
    sim.add_argument("--plots", default=None, help="write PNG plots into this directory")

    plan = commands.add_parser(
        "plan",
        help="plan the cheapest GPU mix that meets the SLO, as a fleet.yaml",
        description=(
            "Derive per-replica capacities at the SLO from the engine model, solve a "
            "mixed-integer program for the cheapest mix of GPU types, TP and capacity types, "
            "rank the plans, and confirm the best by simulation."
        ),
        epilog="example:\n  gpufleet plan -i plan.yaml -o fleet.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    plan.add_argument("-i", "--input", required=True, help="planner input (YAML)")
    plan.add_argument("-o", "--output", default=None, help="write the chosen fleet.yaml here")
    plan.add_argument("--prices", default=None, help="prices file (default: package prices)")
    plan.add_argument("--top", type=int, default=5, help="plans to list")
    plan.add_argument("--sim-duration", type=float, default=120.0, help="check run (s)")
    plan.add_argument("--no-sim", action="store_true", help="skip the simulation check")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.ERROR if args.quiet else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return run_command(args)
    except ConfigError as exc:
        print(f"gpufleet: configuration error:\n{exc}", file=sys.stderr)
        return 2
    except GpufleetError as exc:
        if args.verbose:
            raise
        print(f"gpufleet: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def run_command(args: argparse.Namespace) -> int:
    if args.command == "serve":
        return _serve(args)
    if args.command == "engine":
        return _engine(args)
    if args.command == "up":
        return _up(args)
    if args.command == "render":
        return _render(args)
    if args.command == "bench":
        return _bench(args)
    if args.command == "sim":
        return _sim(args)
    if args.command == "plan":
        return _plan(args)
    raise AssertionError(args.command)


def _serve(args: argparse.Namespace) -> int:
    import uvloop

    from gpufleet.config import load_config
    from gpufleet.gateway.service import serve

    config = load_config(args.config)
    host = args.host or config.gateway.host
    port = config.gateway.port if args.port is None else args.port
    uvloop.run(serve(config, host, port))
    return 0


def _engine(args: argparse.Namespace) -> int:
    import uvloop

    from gpufleet.replica.faults import Faults
    from gpufleet.replica.service import ReplicaOptions, serve_replica

    options = ReplicaOptions(
        model=args.model,
        gpu=args.gpu,
        tp=args.tp,
        speed=args.speed,
        served_model_names=tuple(args.served_model_name),
        max_model_len=args.max_model_len,
        gpu_memory_utilization=args.gpu_memory_utilization,
        max_num_seqs=args.max_num_seqs,
        max_num_batched_tokens=args.max_num_batched_tokens,
        lora_modules=tuple(args.lora_modules),
        max_loras=args.max_loras,
        speculative_k=args.speculative_k,
        speculative_alpha=args.speculative_alpha,
        stream_interval=args.stream_interval,
        faults=Faults(
            fail_fraction=args.fail_fraction,
            die_after_tokens=args.die_after_tokens,
            reset_after_tokens=args.reset_after_tokens,
            hang=args.hang,
            slow_start_s=args.slow_start,
            unhealthy=args.unhealthy,
        ),
    )
    uvloop.run(serve_replica(options, args.host, args.port))
    return 0


def _up(args: argparse.Namespace) -> int:
    from importlib.resources import files

    import uvloop

    from gpufleet.config import load_config
    from gpufleet.local.up import run_up

    path = args.config or str(files("gpufleet") / "data" / "fleet.example.yaml")
    config = load_config(path)
    host = args.host or config.gateway.host
    port = config.gateway.port if args.port is None else args.port
    uvloop.run(run_up(config, host, port, args.speed))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from gpufleet.bench.command import run_bench

    return run_bench(args)


def _render(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gpufleet.config import load_config
    from gpufleet.deploy.render import render

    files = render(load_config(args.config), args.target)
    for name, text in files.items():
        path = Path(args.output) / name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise GpufleetError(f"cannot write {path}: {exc.strerror or exc}") from None
    print(f"gpufleet: wrote {len(files)} files to {args.output}", file=sys.stderr)
    return 0


def _sim(args: argparse.Namespace) -> int:
    import json
    from dataclasses import replace
    from pathlib import Path

    from rich.console import Console
    from rich.progress import Progress

    from gpufleet.config import load_config
    from gpufleet.plan.catalog import Catalog
    from gpufleet.sim.arrival import compact_synthetic, from_specs
    from gpufleet.sim.cluster import FleetError
    from gpufleet.sim.lifecycle import SpotPolicy
    from gpufleet.sim.options import SimOptions
    from gpufleet.sim.output import print_report, write_plots
    from gpufleet.sim.report import build_report
    from gpufleet.sim.simulator import Simulator
    from gpufleet.sim.workload_file import WorkloadError, load_workload
    from gpufleet.workload import SyntheticWorkload

    config = load_config(args.config)
    try:
        run = load_workload(args.workload)
    except WorkloadError as exc:
        raise ConfigError(str(exc)) from None
    if args.duration is not None:
        run = replace(run, duration_s=args.duration)
    seed = run.seed if args.seed is None else args.seed
    options = SimOptions(
        duration_s=run.duration_s,
        seed=seed,
        warm_start=not args.cold,
        default_spot=SpotPolicy(args.spot_rate, args.spot_notice),
        slo_ttft_s=args.slo_ttft,
        slo_itl_s=args.slo_itl,
    )
    try:
        sim = Simulator(config, Catalog.load(), options)
    except FleetError as exc:
        raise ConfigError(str(exc)) from None
    if isinstance(run.workload, SyntheticWorkload) and not sim.uses_prompt_text:
        arrivals = compact_synthetic(run.workload, seed)
    else:
        arrivals = from_specs(run.workload.requests(seed), sim.uses_prompt_text)
    console = Console(stderr=True)
    show = console.is_terminal and not args.quiet
    with Progress(console=console, disable=not show, transient=True) as progress:
        task = progress.add_task("simulating", total=run.duration_s)
        sim.run(arrivals, lambda t: progress.update(task, completed=min(t, run.duration_s)))
    report = build_report(sim)
    print_report(report, Console())
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    if args.plots:
        for written in write_plots(sim, report, Path(args.plots)):
            print(f"gpufleet: wrote {written}", file=sys.stderr)
    return 0


def _plan(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    import yaml
    from rich.console import Console
    from rich.table import Table

    from gpufleet.plan.catalog import Catalog
    from gpufleet.plan.inputs import parse_inputs
    from gpufleet.plan.planner import best_single_type, fleet_document, rank_plans
    from gpufleet.plan.prices import PriceTable
    from gpufleet.sim.plan_check import check_plan

    try:
        doc = yaml.safe_load(Path(args.input).read_text(encoding="utf-8"))
        table = PriceTable.load(Path(args.prices) if args.prices else None)
        inputs = parse_inputs(doc, table)
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{args.input}: {exc}") from None
    catalog = Catalog.load()
    started = time.perf_counter()
    planned = rank_plans(inputs.demands, catalog, inputs.prices, inputs.slo, inputs.constraints)
    solve_s = time.perf_counter() - started
    if not planned.plans:
        raise GpufleetError("no feasible plan: relax the SLO or the constraints")
    console = Console()
    out = Table(title=f"plans (capacities + MILPs solved in {solve_s:.2f} s)")
    for column in ("#", "plan", "$/h", "$/Mtok out", "gap", "pools", "simulated SLO"):
        out.add_column(column)
    chosen = None
    for rank, plan in enumerate(planned.plans[: args.top], 1):
        verdict = "not checked"
        if not args.no_sim and chosen is None:
            check = check_plan(
                fleet_document(plan, inputs.demands), inputs.demands, inputs.slo, catalog,
                duration_s=args.sim_duration,
            )  # fmt: skip
            verdict = "meets" if check.meets_slo else "FAILS (not presented as meeting)"
            if check.meets_slo:
                chosen = plan
        pools = ", ".join(f"{p.replicas}x{p.gpu}/tp{p.tp}/{p.capacity}" for p in plan.pools)
        out.add_row(str(rank), plan.name, f"{plan.cost_usd_per_hour:.2f}",
                    f"{plan.usd_per_million_output_tokens:.3f}", f"{plan.mip_gap:.2%}",
                    pools, verdict)  # fmt: skip
    console.print(out)
    single = best_single_type(planned.plans)
    best = planned.plans[0]
    if single is not None and best.cost_usd_per_hour < single.cost_usd_per_hour:
        saving = 1 - best.cost_usd_per_hour / single.cost_usd_per_hour
        console.print(
            f"cheapest plan saves {saving:.1%} over the best single GPU type ({single.name})"
        )
    chosen = chosen or (best if args.no_sim else None)
    if chosen is None:
        print("gpufleet: no plan met its SLO in simulation", file=sys.stderr)
        return 1
    text = yaml.safe_dump(fleet_document(chosen, inputs.demands), sort_keys=False)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"gpufleet: wrote {args.output} ({chosen.name})", file=sys.stderr)
    else:
        print(text)
    return 0
