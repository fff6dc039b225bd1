"""``gpufleet up``: simulated engines for the fleet's endpoint-less deployments + the gateway,
with the local control plane in-process (`gpufleet.local.control`): preemption notices
always, the autoscaling loop with ``--autoscale``.

Shutdown (SIGINT/SIGTERM): the control plane stops first (no engine starts while the
gateway drains), then the gateway shuts down gracefully, then the engines stop.
"""

from __future__ import annotations

from collections import Counter

from gpufleet.config import FleetConfig
from gpufleet.gateway.service import Gateway, run_until_signalled, start_gateway
from gpufleet.local.control import LocalControl
from gpufleet.local.launcher import LocalFleet


async def run_up(
    config: FleetConfig, host: str, port: int, speed: float, autoscale: bool = False
) -> None:
    local = LocalFleet(speed=speed)
    try:
        config = local.launch(config)
        await local.wait_healthy()
        gateway = await start_gateway(config, host, port)
        control = LocalControl.start(config, gateway, local, autoscale)
        await run_until_signalled(gateway, up_banner(gateway, local, autoscale), control.close)
    finally:
        local.stop()


def up_banner(gateway: Gateway, local: LocalFleet, autoscale: bool = False) -> str:
    url = f"http://{gateway.host}:{gateway.port}"
    model = gateway.config.models[0].name
    counts = Counter((e.model, e.pool) for e in local.engines)
    engines = ", ".join(f"{n}x {m} on {p}" for (m, p), n in sorted(counts.items()))
    real = len(gateway.fleet.endpoints) - len(local.engines)
    first = next(iter(gateway.fleet.endpoints), "POOL/MODEL/0")
    lines = [
        f"gpufleet is up: {url}",
        f"  simulated engines: {engines or 'none'}" + (f"; {real} real endpoints" if real else ""),
        f"  fleet: {url}/admin/endpoints   metrics: {url}/metrics",
        f"  autoscaling: {'on (the fleet’s autoscale: policy)' if autoscale else 'off'}; "
        f"preempt a replica: gpufleet preempt {first} --notice 30 --url {url}",
        "",
        "Try:",
        f"  curl {url}/v1/chat/completions -H 'content-type: application/json' \\",
        f'    -d \'{{"model": "{model}", "messages": [{{"role": "user", "content": "Hello!"}}]}}\'',
        "",
        "  python - <<'PY'",
        "  from openai import OpenAI",
        f"  client = OpenAI(base_url='{url}/v1', api_key='unused')",
        f"  for chunk in client.chat.completions.create(model='{model}', stream=True,",
        "          messages=[{'role': 'user', 'content': 'Hello!'}], max_tokens=32):",
        "      print(chunk.choices[0].delta.content or '', end='', flush=True)",
        "  PY",
        "",
        "Press Ctrl-C to stop (engines are stopped too).",
    ]
    return "\n".join(lines)
