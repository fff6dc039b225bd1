"""``gpufleet controller`` and ``gpufleet preempt`` as processes: the controller against a
real gateway and the local Kubernetes-protocol server (a node taint becomes a drain and
a scale PATCH; a manual notice through ``gpufleet preempt`` too; decisions on its
/metrics), and one-line errors, never tracebacks, for bad input."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gpufleet.gateway.service import Gateway
from tests.integration.test_controller_k8s import (
    NS,
    SCALE_SPOT,
    SPOT_ITN,
    add_spot_pods,
    cluster_config,
    wait_for,
)
from tests.support.k8s_server import (
    FakeKubeCluster,
    deployment,
    node,
)
from tests.support.processes import free_port, http_get

POD_A = "spot/llama-3-8b/vllm-llama-3-8b-spot-a"
POD_B = "spot/llama-3-8b/vllm-llama-3-8b-spot-b"


def gpufleet(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpufleet", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def fleet_file(tmp_path: Path) -> Path:
    discovery = {"kind": "kubernetes", "namespace": NS}
    path = tmp_path / "fleet.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "gateway": {"access_log": "off"},
                "models": [{"name": "llama-3-8b"}],
                "pools": [
                    {"name": "spot", "gpu": "l40s", "capacity": "spot",
                     "deployments": [{"model": "llama-3-8b"}], "discovery": discovery},
                    {"name": "od", "gpu": "h100-sxm",
                     "deployments": [{"model": "llama-3-8b"}], "discovery": discovery},
                ],
            }
        )
    )  # fmt: skip
    return path


def test_the_controller_process_turns_taints_and_manual_notices_into_drains_and_scaling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        api = FakeKubeCluster()
        await api.start()
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig", NS)
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        api.add_deployment(deployment("vllm-llama-3-8b-spot", NS, replicas=2, ready=2))
        api.add_deployment(deployment("vllm-llama-3-8b-od", NS, replicas=0, ready=0))
        add_spot_pods(api)
        gateway = Gateway.build(cluster_config())
        gateway_url = f"http://127.0.0.1:{await gateway.start('127.0.0.1', 0)}"
        port = free_port()
        controller_url = f"http://127.0.0.1:{port}"
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gpufleet", "controller", "-c", str(fleet_file(tmp_path)),
            "--gateway", gateway_url, "--port", str(port),
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            await wait_for(lambda: POD_A in gateway.fleet.endpoints, "discovery")

            async def up() -> bool:
                try:
                    return (await asyncio.to_thread(http_get, controller_url + "/health"))[0] == 200
                except OSError:
                    return False

            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while not await up():
                assert process.returncode is None, "the controller exited"
                assert loop.time() < deadline, "the controller did not start"
                await asyncio.sleep(0.05)
            await wait_for(
                lambda: any(r.kind == "watch" and r.namespace == "" for r in api.requests),
                "the controller's node watch",
            )
            api.apply_node(node("node-1", [{"key": SPOT_ITN, "effect": "NoSchedule"}]))
            await wait_for(lambda: gateway.fleet.endpoints[POD_A].draining, "drain of pod a")
            await wait_for(
                lambda: any(p.path == SCALE_SPOT and p.body == {"spec": {"replicas": 3}}
                            for p in api.patches),
                "the replacement's scale-up",
            )  # fmt: skip
            _, metrics = await asyncio.to_thread(http_get, controller_url + "/metrics")
            assert (
                b'gpufleet_controller_notices_total{pool="spot",'
                b'source="aws-node-termination-handler/spot-itn"} 1.0' in metrics
            )

            preempt = await asyncio.to_thread(
                gpufleet, "preempt", POD_B, "--notice", "0.5", "--url", controller_url
            )
            assert preempt.returncode == 0, preempt.stderr
            assert preempt.stdout.startswith(f"{POD_B}: draining; notice 0.5 s")
            # a second notice in the spot pool: it is unhealthy, the replacement goes on-demand
            assert "replacement requested in od/llama-3-8b" in preempt.stdout
            assert gateway.fleet.endpoints[POD_B].draining
            scale_od = SCALE_SPOT.replace("-spot/", "-od/")
            await wait_for(
                lambda: [(p.path, p.body["spec"]["replicas"]) for p in api.patches
                         if p.path.endswith("/scale")][1:] == [(scale_od, 1), (SCALE_SPOT, 2)],
                "on-demand replacement, then the spot pod b scaled away after its notice",
            )  # fmt: skip
            unknown = await asyncio.to_thread(
                gpufleet, "preempt", "spot/llama-3-8b/nope", "--url", controller_url
            )
            assert unknown.returncode == 1
            assert "refused: no gateway knows a replica 'spot/llama-3-8b/nope'" in unknown.stderr
            not_a_controller = await asyncio.to_thread(
                gpufleet, "preempt", POD_A, "--url", gateway_url
            )
            assert not_a_controller.returncode == 1
            assert "has no /admin/preempt" in not_a_controller.stderr
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            stderr = await asyncio.wait_for(process.communicate(), 15)
            await gateway.shutdown()
            await api.close()
        text = stderr[1].decode()
        assert process.returncode == 0, text
        assert "actuator: kubernetes" in text
        assert "Traceback" not in text

    asyncio.run(main())


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["preempt", "p/m/0", "--notice", "-5"], 2, "the notice must be 0 to 86400 seconds"),
        (["preempt", "p/m/0", "--notice", "soon"], 2, "not a number of seconds: 'soon'"),
        (["preempt", "p/m/0", "--url", "ftp://host"], 1, "not an http(s) URL: 'ftp://host'"),
        (["preempt", "p/m/0", "--url", "http://127.0.0.1:{closed}"], 1, "cannot reach"),
        (["preempt"], 2, "the following arguments are required: REPLICA"),
        (["controller", "-c", "{missing}"], 2, "cannot read"),
        (["controller", "-c", "{fleet}", "--gateway", "ftp://x"], 2, "not an http(s) URL"),
        (["controller", "-c", "{fleet}", "--actuator", "kubernetes"], 2, "no Kubernetes access"),
        (["controller", "-c", "{fleet}", "--actuator", "none", "--port", "-1"], 1, "cannot listen"),
    ],
)
def test_bad_input_gets_a_one_line_error(
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    values = {
        "closed": str(free_port()),
        "missing": str(tmp_path / "missing.yaml"),
        "fleet": str(fleet_file(tmp_path)),
    }
    env = {"KUBECONFIG": str(tmp_path / "no-kubeconfig"), "KUBERNETES_SERVICE_HOST": ""}
    result = gpufleet(*[a.format(**values) for a in args], env=env)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
