"""Validated bench options from the command line, and the workload of each run.

`options_from_args` checks what argparse cannot (combinations, value
ranges, the URL, length distributions, trace files) and raises `UsageError`
with a one-line reason; the command exits 2 with it.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

from gpufleet.bench.request import Endpoint, RequestOptions, Target
from gpufleet.bench.runner import Load
from gpufleet.bench.stats import Slo
from gpufleet.workload import arrivals, traces
from gpufleet.workload.lengths import Fixed, LengthDistribution, parse_length
from gpufleet.workload.multi_turn import MultiTurnWorkload
from gpufleet.workload.replay import ConversationWorkload, TraceReplayWorkload
from gpufleet.workload.spec import Workload
from gpufleet.workload.synthetic import SyntheticWorkload

DEFAULT_DURATION_S = 60.0


class UsageError(ValueError):
    """The options are inconsistent or out of range; the message says which and why."""


@dataclass(frozen=True)
class BenchOptions:
    url: str
    target: Target
    request: RequestOptions
    """``model`` is ``""`` until discovered from ``GET /v1/models``."""
    rates_per_s: tuple[float | None, ...]
    """One entry per run; ``None``: the workload's own times (trace, steps) or closed loop."""
    load: Load
    workload_name: str
    workload_args: argparse.Namespace
    seed: int
    slo: Slo
    json_path: Path | None
    plots_dir: Path | None
    quiet: bool
    verbose: bool

    def workload(self, rate_per_s: float | None) -> Workload:
        """The workload of the run at ``rate_per_s``."""
        try:
            return _build_workload(self.workload_args, rate_per_s)
        except (ValueError, traces.TraceError) as exc:
            raise UsageError(str(exc)) from None

    def describe(self) -> dict[str, object]:
        """The ``config`` section of the JSON results."""
        load = self.load
        return {
            "url": self.url,
            "endpoint": self.request.endpoint,
            "model": self.request.model,
            "stream": self.request.stream,
            "mode": "closed-loop" if load.concurrency is not None else "open-loop",
            "rates_per_s": list(self.rates_per_s) if load.concurrency is None else None,
            "concurrency": load.concurrency,
            "duration_s": load.duration_s,
            "num_requests": load.num_requests,
            "timeout_s": load.timeout_s,
            "workload": self.workload_name,
            "seed": self.seed,
            "slo": {
                "ttft_ms": None if self.slo.ttft_s is None else self.slo.ttft_s * 1000,
                "itl_ms": None if self.slo.itl_s is None else self.slo.itl_s * 1000,
            },
        }


def options_from_args(args: argparse.Namespace) -> BenchOptions:
    """Checked options (module doc)."""
    endpoint: Endpoint = args.endpoint
    try:
        target = Target.parse(args.url, endpoint)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    headers = [_header(h) for h in args.header]
    if args.api_key:
        headers.append(("authorization", f"Bearer {args.api_key}"))
    rates = _rates(args)
    if args.concurrency is None and rates == (None,) and not _self_timed(args):
        raise UsageError("give --rate R[,R...] (open loop) or --concurrency N (closed loop)")
    for name in ("concurrency", "num_requests", "users", "system_prompts", "turns"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be ≥ 1")
    for name in ("duration", "timeout", "time_scale", "slo_ttft_ms", "slo_itl_ms"):
        value = getattr(args, name)
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise UsageError(f"--{name.replace('_', '-')} must be a positive number")
    if args.workload in ("azure", "sharegpt") and not args.trace:
        raise UsageError(f"--workload {args.workload} needs --trace FILE")
    duration = args.duration
    if duration is None and args.num_requests is None and args.workload != "azure":
        duration = DEFAULT_DURATION_S
    options = BenchOptions(
        url=args.url,
        target=target,
        request=RequestOptions(
            endpoint, args.model or "", args.stream, args.ignore_eos, tuple(headers)
        ),
        rates_per_s=rates,
        load=Load(
            args.concurrency,
            duration,
            args.num_requests,
            args.timeout,
            max(1, args.max_connections),
        ),
        workload_name=args.workload,
        workload_args=args,
        seed=args.seed,
        slo=Slo(_seconds(args.slo_ttft_ms), _seconds(args.slo_itl_ms)),
        json_path=Path(args.json) if args.json else None,
        plots_dir=Path(args.plots) if args.plots else None,
        quiet=bool(getattr(args, "quiet", False)),
        verbose=bool(getattr(args, "verbose", 0)),
    )
    options.workload(rates[0])  # check the workload options (and read the trace) once now
    return options


def _self_timed(args: argparse.Namespace) -> bool:
    """Open loop without --rate: the arrival times come from the trace or the steps."""
    return bool(args.workload == "azure" or args.arrival == "step")


def _rates(args: argparse.Namespace) -> tuple[float | None, ...]:
    if args.rate is None:
        return (None,)
    if args.concurrency is not None:
        raise UsageError("--rate (open loop) and --concurrency (closed loop) exclude each other")
    if args.arrival == "step":
        raise UsageError("--arrival step takes its rates from --steps, not --rate")
    try:
        rates = tuple(float(r) for r in args.rate.split(","))
    except ValueError:
        raise UsageError(f"--rate {args.rate!r}: expected numbers, e.g. 10 or 5,10,20") from None
    if not all(r > 0 and math.isfinite(r) for r in rates):
        raise UsageError("--rate values must be positive")
    return rates


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip() or any(c in text for c in "\r\n"):
        raise UsageError(f"--header {text!r}: expected 'Name: value'")
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        raise UsageError(f"--header {text!r}: only latin-1 characters") from None
    return name.strip().lower(), value.strip()


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000


def _length(flag: str, text: str) -> LengthDistribution:
    try:
        return parse_length(text)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def _arrivals(args: argparse.Namespace, rate: float | None) -> arrivals.ArrivalProcess:
    if args.arrival == "step":
        if not args.steps:
            raise UsageError("--arrival step needs --steps START_S:RATE,...")
        try:
            steps = tuple(
                (float(start), float(value))
                for start, _, value in (s.partition(":") for s in args.steps.split(","))
            )
        except ValueError:
            raise UsageError(f"--steps {args.steps!r}: expected START_S:RATE,...") from None
        return arrivals.Step(steps)
    rate = rate or 1.0  # closed loop: arrival times are not used
    if args.arrival == "gamma":
        return arrivals.Gamma(rate, args.cv)
    if args.arrival == "diurnal":
        return arrivals.Diurnal(rate, args.peak_to_trough, args.period)
    return arrivals.Poisson(rate)


def _build_workload(args: argparse.Namespace, rate: float | None) -> Workload:
    if args.workload == "synthetic":
        return SyntheticWorkload(
            _arrivals(args, rate),
            _length("--prompt-tokens", args.prompt_tokens or "256"),
            _length("--max-tokens", args.max_tokens or "128"),
        )
    if args.workload == "multi-turn":
        return MultiTurnWorkload(
            _arrivals(args, rate),
            num_users=args.users,
            num_system_prompts=args.system_prompts,
            system_prompt_tokens=args.system_prompt_tokens,
            turns_per_conversation=args.turns,
            user_tokens=_length("--prompt-tokens", args.prompt_tokens or "64"),
            output_tokens=_length("--max-tokens", args.max_tokens or "128"),
            max_prompt_tokens=args.max_prompt_tokens,
        )
    if args.workload == "azure":
        records = traces.load_azure_csv(args.trace)
        scale = args.time_scale
        span_s = records[-1].arrival_s - records[0].arrival_s
        if rate is not None and span_s > 0:
            scale = rate * span_s / max(len(records) - 1, 1)
        return TraceReplayWorkload(
            records,
            scale,
            max_prompt_tokens=args.max_prompt_tokens,
            max_output_tokens=_cap(args.max_tokens, 1_000_000),
        )
    return ConversationWorkload(
        traces.load_sharegpt_json(args.trace),
        _arrivals(args, rate),
        multi_turn=args.whole_conversations,
        num_users=args.users,
        max_output_tokens=_cap(args.max_tokens, 1024),
    )


def _cap(text: str | None, default: int) -> int:
    """Trace replays: --max-tokens N caps the recorded output lengths."""
    if text is None:
        return default
    length = _length("--max-tokens", text)
    if not isinstance(length, Fixed):
        raise UsageError("--max-tokens: trace replays take a number (a cap on output lengths)")
    return length.value
