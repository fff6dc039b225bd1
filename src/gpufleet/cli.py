"""The ``gpufleet`` command: thin — load config, call the library, print.

Exit codes: 0 ok, 1 failure, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from gpufleet import __version__
from gpufleet.errors import ConfigError, GpufleetError

if TYPE_CHECKING:
    from gpufleet.plan.optimizer import Plan

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
    up.add_argument(
        "--autoscale", action="store_true", help="run the autoscaling loop in-process too"
    )

    engine = commands.add_parser(
        "engine",
        help="run simulated vLLM replicas (one per port)",
        description=(
            "Serve the engine model of one replica live, behind vLLM's HTTP surface "
            "(/v1/chat/completions, /v1/completions, /v1/models, /health, /metrics). "
            "With several ports, one process serves one independent replica on each "
            "(fewer processes for a local fleet on few cores)."
        ),
        epilog=(
            "examples:\n  gpufleet engine --model llama-3-8b --gpu h100 --port 8001\n"
            "  gpufleet engine --model llama-3-8b --gpu h100 --port 8001,8002,8003,8004\n"
            "  gpufleet engine --model llama-3-70b --gpu h100 --tp 4 --speed 10"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    engine.add_argument("--model", required=True, help="catalog model id, e.g. llama-3-8b")
    engine.add_argument("--gpu", required=True, help="catalog GPU id, e.g. h100, l40s")
    engine.add_argument("--tp", type=int, default=1, help="tensor-parallel degree (default 1)")
    engine.add_argument("--speed", type=float, default=1.0, help="time scale (10 = 10x faster)")
    engine.add_argument("--host", default="127.0.0.1")
    engine.add_argument(
        "--port",
        type=_ports,
        default=[8000],
        help="listen port, or comma-separated ports: one replica each (default 8000)",
    )
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
    sim.add_argument(
        "--json", default=None, metavar="FILE", help="write the report as JSON here (- : stdout)"
    )
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
    plan.add_argument(
        "--json", default=None, metavar="FILE", help="write the ranked plans as JSON (- : stdout)"
    )
    add_control_commands(commands)
    add_common_flags(commands)
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
        print(f"gpufleet: configuration error: {_lines(exc)}", file=sys.stderr)
        return 2
    except GpufleetError as exc:
        if args.verbose:
            raise
        print(f"gpufleet: {_lines(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # stdout closed early (`| head`): not an error worth a message
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:  # a file or socket the command uses: one line, traceback with -v
        if args.verbose:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"gpufleet: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: still one line, the traceback with -v
        if args.verbose:
            raise
        print(
            f"gpufleet: internal error: {type(exc).__name__}: {_lines(exc)} "
            "(run with -v for the traceback)",
            file=sys.stderr,
        )
        return 1


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
    if args.command == "controller":
        return _controller(args)
    if args.command == "preempt":
        return _preempt(args)
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
    from gpufleet.replica.service import ReplicaOptions, serve_replicas

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
    uvloop.run(serve_replicas(options, args.host, args.port))
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
    uvloop.run(run_up(config, host, port, args.speed, args.autoscale))
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
    if not args.quiet:
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
    if args.json == "-":  # a script's view: the JSON alone on stdout
        print(json.dumps(report, indent=1))
    else:
        print_report(report, Console())
    if args.json and args.json != "-":
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    if args.plots:
        for written in write_plots(sim, report, Path(args.plots)):
            if not args.quiet:
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
    console = Console(stderr=args.json == "-")  # stdout carries the JSON then
    rows: list[dict[str, object]] = []
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
        rows.append(_plan_row(rank, plan, verdict))
    console.print(out)
    single = best_single_type(planned.plans)
    best = planned.plans[0]
    if single is not None and best.cost_usd_per_hour < single.cost_usd_per_hour:
        saving = 1 - best.cost_usd_per_hour / single.cost_usd_per_hour
        console.print(
            f"cheapest plan saves {saving:.1%} over the best single GPU type ({single.name})"
        )
    chosen = chosen or (best if args.no_sim else None)
    fleet = fleet_document(chosen, inputs.demands) if chosen is not None else None
    if args.json:
        _write_json(args.json, {"plans": rows, "chosen": chosen and chosen.name, "fleet": fleet})
    if chosen is None:
        print("gpufleet: no plan met its SLO in simulation", file=sys.stderr)
        return 1
    text = yaml.safe_dump(fleet, sort_keys=False)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        if not args.quiet:
            print(f"gpufleet: wrote {args.output} ({chosen.name})", file=sys.stderr)
    elif args.json != "-":
        print(text)
    return 0


def _plan_row(rank: int, plan: Plan, verdict: str) -> dict[str, object]:
    """One ranked plan for ``gpufleet plan --json``."""
    return {
        "rank": rank,
        "name": plan.name,
        "cost_usd_per_hour": plan.cost_usd_per_hour,
        "usd_per_million_output_tokens": plan.usd_per_million_output_tokens,
        "mip_gap": plan.mip_gap,
        "pools": [
            {"gpu": p.gpu, "tp": p.tp, "capacity": p.capacity, "replicas": p.replicas}
            for p in plan.pools
        ],
        "simulated_slo": verdict,
    }


def _write_json(where: str, document: object) -> None:
    """``document`` as JSON to the file ``where``, or to stdout for ``-``."""
    import json
    from pathlib import Path

    text = json.dumps(document, indent=1) + "\n"
    if where == "-":
        sys.stdout.write(text)
        return
    path = Path(where)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


# -- control plane (controller, preempt) ------------------------------------------------------
def add_control_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    controller = commands.add_parser(
        "controller",
        help="run the control loop: autoscaling and spot-preemption handling",
        description=(
            "Gather signals from the gateways, evaluate the fleet's autoscale: policy every "
            "interval, scale the engine Deployments (Kubernetes) and turn node preemption "
            "notices into drains and replacements. Serves its decisions on /metrics and "
            "manual notices on POST /admin/preempt."
        ),
        epilog=(
            "examples:\n  gpufleet controller -c fleet.yaml\n"
            "  gpufleet controller -c fleet.yaml --gateway http://gw-0:8080 "
            "--gateway http://gw-1:8080 --actuator kubernetes"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    controller.add_argument("-c", "--config", required=True, help="path to fleet.yaml")
    controller.add_argument(
        "--gateway", action="append", default=[], metavar="URL",
        help="a gateway replica (repeat for each; default: gateway.host:gateway.port)",
    )  # fmt: skip
    controller.add_argument(
        "--actuator", choices=("kubernetes", "none"), default=None,
        help="how replicas are scaled (default: kubernetes when a pool uses kubernetes "
        "discovery, else none: decisions are only logged and exported)",
    )  # fmt: skip
    controller.add_argument(
        "--autoscale", action="store_true", help="run the policy even if autoscale.enabled is off"
    )
    controller.add_argument("--host", default="127.0.0.1", help="its own HTTP address")
    controller.add_argument("--port", type=int, default=9090, help="its own HTTP port (9090)")
    controller.add_argument(
        "--admin-key", default=None, help="the gateways' admin key (default: $GPUFLEET_ADMIN_KEY)"
    )

    preempt = commands.add_parser(
        "preempt",
        help="give a replica a preemption notice (local fleet or controller)",
        description=(
            "Tell a running `gpufleet up` (or `gpufleet controller`) that REPLICA is being "
            "preempted: it is drained at every gateway, a replacement is requested at once, "
            "and it is stopped when the notice ends. The local fleet scales the notice by "
            "its engines' --speed."
        ),
        epilog="example:\n  gpufleet preempt l40s-spot/llama-3-8b/0 --notice 30",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    preempt.add_argument("replica", metavar="REPLICA", help="endpoint id, e.g. pool/model/0")
    preempt.add_argument(
        "--notice", type=_notice_seconds, default=30.0, help="seconds of notice (default 30)"
    )
    preempt.add_argument(
        "--url", default=None,
        help="the gateway of `gpufleet up` or the controller (default: from -c, else "
        "http://127.0.0.1:8080)",
    )  # fmt: skip
    preempt.add_argument("-c", "--config", default=None, help="fleet.yaml (for the default URL)")
    preempt.add_argument(
        "--admin-key", default=None, help="admin key (default: $GPUFLEET_ADMIN_KEY)"
    )


def _ports(text: str) -> list[int]:
    """``8001`` or ``8001,8002``: TCP ports (0 picks a free one), no repeats but 0."""
    parts = text.split(",")
    if not all(part.strip().isdigit() for part in parts):
        raise argparse.ArgumentTypeError(f"expected ports like 8001 or 8001,8002: {text!r}")
    ports = [int(part) for part in parts]
    if any(not 0 <= port <= 65535 for port in ports):
        raise argparse.ArgumentTypeError(f"ports must be 0 to 65535: {text}")
    named = [port for port in ports if port]
    if len(set(named)) != len(named):
        raise argparse.ArgumentTypeError(f"a port is repeated: {text}")
    return ports


def _notice_seconds(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or not 0 <= value <= 86400:
        raise argparse.ArgumentTypeError(f"the notice must be 0 to 86400 seconds, not {text}")
    return value


def _controller(args: argparse.Namespace) -> int:
    import os

    import uvloop

    from gpufleet.config import load_config
    from gpufleet.control.service import ControllerOptions, run_controller

    config = load_config(args.config)
    options = ControllerOptions(
        gateways=tuple(args.gateway) or (f"http://{config.gateway.host}:{config.gateway.port}",),
        actuator=args.actuator,
        autoscale=args.autoscale or config.autoscale.enabled,
        host=args.host,
        port=args.port,
        admin_key=args.admin_key or os.environ.get("GPUFLEET_ADMIN_KEY"),
    )
    uvloop.run(run_controller(config, options))
    return 0


def _preempt(args: argparse.Namespace) -> int:
    import os

    from gpufleet.control.client import request_preemption

    url = args.url
    if url is None and args.config is not None:
        from gpufleet.config import load_config

        gateway = load_config(args.config).gateway
        url = f"http://{gateway.host}:{gateway.port}"
    answer = request_preemption(
        url or "http://127.0.0.1:8080",
        args.replica,
        args.notice,
        args.admin_key or os.environ.get("GPUFLEET_ADMIN_KEY"),
    )
    print(answer)
    return 0


# -- conventions shared by every subcommand ------------------------------------------------------
def add_common_flags(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``-v/--verbose`` and ``-q/--quiet`` after any subcommand too (``gpufleet sim -q``),
    where the subcommand does not define them itself; SUPPRESS keeps the global value."""
    for sub in commands.choices.values():
        given = {option for action in sub._actions for option in action.option_strings}
        if not {"-v", "--verbose"} & given:
            sub.add_argument(
                "-v", "--verbose", action="count", default=argparse.SUPPRESS,
                help="more logging; tracebacks on errors",
            )  # fmt: skip
        if not {"-q", "--quiet"} & given:
            sub.add_argument(
                "-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                help="only errors",
            )  # fmt: skip


def _lines(exc: BaseException) -> str:
    """An error message on one line; several problems (one per line) joined by ``; ``."""
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
