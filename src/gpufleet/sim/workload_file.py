"""A small workload description (YAML/JSON) or a built-in example → a `Workload` and duration.

Format::

    kind: synthetic            # synthetic | multi-turn | azure | sharegpt
    duration_s: 600            # seconds of arrivals (azure: default the trace's span)
    seed: 0
    arrivals: {kind: poisson, rate_per_s: 20}   # poisson | gamma (cv) | diurnal
                                                # (mean_rate_per_s, peak_to_trough,
                                                # period_s) | step (steps: [[t, rate]])
    params: {prompt_tokens: "lognormal:512,1.0", output_tokens: "uniform:32,256"}
    classes: [{name: chat, weight: 3, model: llama-3-8b, request_class: interactive}]

``params`` per kind: synthetic — prompt_tokens, output_tokens (length strings
as ``gpufleet bench`` takes them); multi-turn — the `MultiTurnWorkload` fields;
azure — path (CSV), time_scale, max_prompt_tokens, max_output_tokens;
sharegpt — path (JSON), multi_turn, num_users, max_output_tokens. Unknown keys
raise `WorkloadError`. Built-in names: see `BUILTIN`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gpufleet.workload import (
    ArrivalProcess,
    ConversationWorkload,
    Diurnal,
    Gamma,
    MultiTurnWorkload,
    Poisson,
    Step,
    SyntheticWorkload,
    TraceReplayWorkload,
    TrafficClass,
    Workload,
    parse_length,
)
from gpufleet.workload.traces import load_azure_csv, load_sharegpt_json

BUILTIN: Mapping[str, Mapping[str, Any]] = {
    "chat": {
        "kind": "synthetic", "duration_s": 300,
        "arrivals": {"kind": "poisson", "rate_per_s": 20},
        "params": {"prompt_tokens": "lognormal:512,1.0,4096", "output_tokens": "uniform:32,256"},
    },
    "multi-turn": {
        "kind": "multi-turn", "duration_s": 300,
        "arrivals": {"kind": "poisson", "rate_per_s": 10},
        "params": {"num_users": 64, "num_system_prompts": 4, "system_prompt_tokens": 1024},
    },
    "mixed": {
        "kind": "synthetic", "duration_s": 300,
        "arrivals": {"kind": "poisson", "rate_per_s": 20},
        "params": {
            "prompt_tokens": "lognormal:1024,1.5,7000", "output_tokens": "lognormal:200,1.0,1024",
        },
    },
    "bursty": {
        "kind": "synthetic", "duration_s": 300,
        "arrivals": {"kind": "gamma", "rate_per_s": 20, "cv": 3.0},
        "params": {"prompt_tokens": "lognormal:512,1.0,4096", "output_tokens": "uniform:32,256"},
    },
}  # fmt: skip


class WorkloadError(ValueError):
    """A workload description that cannot be used (names the key)."""


@dataclass(frozen=True)
class WorkloadRun:
    """A workload, how long its arrivals last and its seed."""

    workload: Workload
    duration_s: float
    seed: int
    description: Mapping[str, Any]


def load_workload(name_or_path: str) -> WorkloadRun:
    """A built-in name, or a path to a YAML/JSON description."""
    if name_or_path in BUILTIN:
        return parse_workload(BUILTIN[name_or_path], base=Path.cwd())
    path = Path(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        known = ", ".join(sorted(BUILTIN))
        raise WorkloadError(
            f"{name_or_path}: not a built-in ({known}) nor readable: {exc}"
        ) from None
    doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(doc, dict):
        raise WorkloadError(f"{name_or_path}: expected a mapping")
    return parse_workload(doc, base=path.parent)


def parse_workload(doc: Mapping[str, Any], base: Path) -> WorkloadRun:
    """Build the workload a description names (module doc)."""
    unknown = set(doc) - {"kind", "duration_s", "seed", "arrivals", "params", "classes"}
    if unknown:
        raise WorkloadError(f"workload: unknown keys {sorted(unknown)}")
    kind = doc.get("kind")
    params = dict(doc.get("params") or {})
    classes = tuple(TrafficClass(**c) for c in doc.get("classes") or ()) or (TrafficClass(),)
    seed = int(doc.get("seed", 0))
    try:
        workload: Workload
        duration: float | None = doc.get("duration_s")
        if kind == "synthetic":
            workload = SyntheticWorkload(
                _arrivals(doc),
                parse_length(str(params.pop("prompt_tokens", "512"))),
                parse_length(str(params.pop("output_tokens", "128"))),
                classes,
            )
        elif kind == "multi-turn":
            for key in ("user_tokens", "output_tokens"):
                if key in params:
                    params[key] = parse_length(str(params[key]))
            workload = MultiTurnWorkload(_arrivals(doc), classes=classes, **params)
            params = {}
        elif kind == "azure":
            records = load_azure_csv(base / str(params.pop("path")))
            replay = TraceReplayWorkload(records, classes=classes, **params)
            duration = duration or replay.duration_s + 1.0
            workload, params = replay, {}
        elif kind == "sharegpt":
            conversations = load_sharegpt_json(base / str(params.pop("path")))
            workload = ConversationWorkload(
                conversations, _arrivals(doc), classes=classes, **params
            )
            params = {}
        else:
            raise WorkloadError(
                f"workload: kind must be synthetic, multi-turn, azure or sharegpt, got {kind!r}"
            )
    except (TypeError, KeyError) as exc:
        raise WorkloadError(f"workload ({kind}): bad params: {exc}") from None
    if params:
        raise WorkloadError(f"workload ({kind}): unknown params {sorted(params)}")
    if not duration or float(duration) <= 0:
        raise WorkloadError("workload: duration_s must be positive")
    return WorkloadRun(workload, float(duration), seed, dict(doc))


def _arrivals(doc: Mapping[str, Any]) -> ArrivalProcess:
    spec = dict(doc.get("arrivals") or {})
    kind = spec.pop("kind", "poisson")
    try:
        if kind == "poisson":
            return Poisson(**spec)
        if kind == "gamma":
            return Gamma(**spec)
        if kind == "diurnal":
            return Diurnal(**spec)
        if kind == "step":
            return Step(tuple((float(t), float(r)) for t, r in spec.pop("steps")), **spec)
    except TypeError as exc:
        raise WorkloadError(f"workload: arrivals ({kind}): {exc}") from None
    raise WorkloadError(
        f"workload: arrivals kind must be poisson, gamma, diurnal or step, got {kind!r}"
    )
