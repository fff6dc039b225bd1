"""The Kubernetes actuator and the node watch, through lightkube, against the local
Kubernetes-protocol server: scale PATCHes with the right body, node taint events turned
into drains at every (real, in-process) gateway, a replacement and, at the end of the
notice, the scale-down of the preempted pod."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from lightkube import AsyncClient, KubeConfig

from gpufleet.config import FleetConfig, parse_config
from gpufleet.control.clock import ControlClock
from gpufleet.control.gateways import GatewaySet
from gpufleet.control.k8s_actuator import DELETION_COST, KubernetesActuator
from gpufleet.control.node_watch import NodeWatcher
from gpufleet.control.notices import SpotHealth
from gpufleet.control.preemption import PreemptionHandler
from gpufleet.errors import GpufleetError
from gpufleet.gateway.service import Gateway
from gpufleet.metrics import ControllerMetrics
from tests.support.k8s_server import (
    FakeKubeCluster,
    deployment,
    endpoint_slice,
    engine_pod,
    node,
    pod_endpoint,
)

NS = "llm"
DEADLINE_S = 5.0
SPOT_LABELS = {"app.kubernetes.io/name": "vllm", "gpufleet.io/pool": "spot",
               "gpufleet.io/model": "llama-3-8b", "gpufleet.io/gpu": "l40s"}  # fmt: skip
SCALE_SPOT = f"/apis/apps/v1/namespaces/{NS}/deployments/vllm-llama-3-8b-spot/scale"
SPOT_ITN = "aws-node-termination-handler/spot-itn"
SCALE = 100.0
"""Controller time runs 100x: the 120 s spot notice lasts 1.2 s."""


def add_spot_pods(api: FakeKubeCluster) -> None:
    """Two spot engine pods, on node-1 and node-2, listed by their EndpointSlice."""
    api.apply(
        endpoint_slice("vllm-llama-3-8b-spot-x", NS, SPOT_LABELS, [
            pod_endpoint("vllm-llama-3-8b-spot-a", "10.0.0.1"),
            pod_endpoint("vllm-llama-3-8b-spot-b", "10.0.0.2"),
        ])
    )  # fmt: skip
    api.add_pod(engine_pod("vllm-llama-3-8b-spot-a", NS, "node-1", SPOT_LABELS))
    api.add_pod(engine_pod("vllm-llama-3-8b-spot-b", NS, "node-2", SPOT_LABELS))
    api.apply_node(node("node-1"))
    api.apply_node(node("node-2"))


def cluster_config() -> FleetConfig:
    discovery = {"kind": "kubernetes", "namespace": NS}
    return parse_config(
        {
            "gateway": {"access_log": "off", "shutdown_grace_s": 0},
            "models": [{"name": "llama-3-8b"}],
            "pools": [
                {"name": "spot", "gpu": "l40s", "capacity": "spot", "price_usd_per_gpu_hour": 1.1,
                 "deployments": [{"model": "llama-3-8b"}], "discovery": discovery},
                {"name": "od", "gpu": "h100-sxm", "price_usd_per_gpu_hour": 6.9,
                 "deployments": [{"model": "llama-3-8b"}], "discovery": discovery},
            ],
            "health": {"interval_s": 3600},
            "scrape": {"enabled": False},
        }
    )  # fmt: skip


async def wait_for(condition: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {DEADLINE_S} s waiting for: {what}")
        await asyncio.sleep(0.01)


Scenario = Callable[[FakeKubeCluster, AsyncClient], Awaitable[None]]


def with_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scenario: Scenario) -> None:
    async def main() -> None:
        api = FakeKubeCluster()
        await api.start()
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig", NS)
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        api.add_deployment(deployment("vllm-llama-3-8b-spot", NS, replicas=2, ready=2))
        api.add_deployment(deployment("vllm-llama-3-8b-od", NS, replicas=1, ready=1))
        client = AsyncClient(config=KubeConfig.from_file(kubeconfig))
        try:
            await scenario(api, client)
        finally:
            await client.close()
            await api.close()

    asyncio.run(main())


def test_scaling_patches_the_scale_subresource_of_the_rendered_deployment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(api: FakeKubeCluster, client: AsyncClient) -> None:
        actuator = KubernetesActuator(cluster_config(), client)
        await actuator.refresh()
        assert actuator.active("spot/llama-3-8b") == 2
        assert actuator.pending("spot/llama-3-8b") == 0
        await actuator.set_active("spot/llama-3-8b", 4)
        patch = api.patches[-1]
        assert patch.path == SCALE_SPOT
        assert patch.content_type == "application/merge-patch+json"
        assert patch.body == {"spec": {"replicas": 4}}
        assert api.replicas(NS, "vllm-llama-3-8b-spot") == 4
        await actuator.refresh()
        assert actuator.active("spot/llama-3-8b") == 4
        assert actuator.pending("spot/llama-3-8b") == 2, "4 wanted, 2 ready"
        await actuator.set_active("od/llama-3-8b", 0)
        assert api.replicas(NS, "vllm-llama-3-8b-od") == 0

    with_cluster(tmp_path, monkeypatch, scenario)


def test_a_missing_deployment_is_reported_once_and_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario(api: FakeKubeCluster, client: AsyncClient) -> None:
        del api.deployments[(NS, "vllm-llama-3-8b-od")]
        actuator = KubernetesActuator(cluster_config(), client)
        with caplog.at_level(logging.WARNING, logger="gpufleet.controller"):
            await actuator.refresh()
            await actuator.refresh()
            await actuator.set_active("od/llama-3-8b", 3)
        assert caplog.text.count("no Deployment vllm-llama-3-8b-od in namespace llm") == 1
        assert api.patches == []

    with_cluster(tmp_path, monkeypatch, scenario)


def test_an_api_failure_is_raised_as_a_gpufleet_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(api: FakeKubeCluster, client: AsyncClient) -> None:
        actuator = KubernetesActuator(cluster_config(), client)
        await actuator.refresh()
        api.fail_scale_with = 500
        with pytest.raises(GpufleetError, match="scaling Deployment vllm-llama-3-8b-spot: 500"):
            await actuator.set_active("spot/llama-3-8b", 3)

    with_cluster(tmp_path, monkeypatch, scenario)


def test_a_spot_taint_drains_the_pods_of_the_node_at_every_gateway_and_replaces_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(api: FakeKubeCluster, client: AsyncClient) -> None:
        config = cluster_config()
        add_spot_pods(api)
        gateways = [Gateway.build(config) for _ in range(2)]
        urls = [f"http://127.0.0.1:{await g.start('127.0.0.1', 0)}" for g in gateways]
        a, b = "spot/llama-3-8b/vllm-llama-3-8b-spot-a", "spot/llama-3-8b/vllm-llama-3-8b-spot-b"
        client_set = GatewaySet(urls)
        actuator = KubernetesActuator(config, client)
        metrics = ControllerMetrics()
        handler = PreemptionHandler(
            config, actuator, client_set, metrics, ControlClock(SCALE), SpotHealth(2, 600.0)
        )
        watcher = NodeWatcher(config, client, {NS}, handler.handle, retry_base_s=0.01)
        watch = asyncio.create_task(watcher.run())
        try:
            await wait_for(
                lambda: all(a in g.fleet.endpoints and b in g.fleet.endpoints for g in gateways),
                "both pods discovered by both gateways",
            )
            await actuator.refresh()
            await wait_for(
                lambda: any(r.kind == "watch" and r.namespace == "" for r in api.requests),
                "the node watch",
            )
            api.apply_node(
                node("node-1", [{"key": SPOT_ITN, "value": "1718000000", "effect": "NoSchedule"}])
            )
            await wait_for(
                lambda: all(g.fleet.endpoints[a].draining for g in gateways),
                "the pod on the tainted node draining at every gateway",
            )
            assert not any(g.fleet.endpoints[b].draining for g in gateways)
            await wait_for(lambda: len(api.patches) >= 2, "annotation and scale-up")
            annotate, scale_up = api.patches[:2]
            assert annotate.path == f"/api/v1/namespaces/{NS}/pods/vllm-llama-3-8b-spot-a"
            assert annotate.body == {"metadata": {"annotations": {DELETION_COST: "-1000000"}}}
            assert (scale_up.path, scale_up.body) == (SCALE_SPOT, {"spec": {"replicas": 3}})
            pods_listing = [r for r in api.requests if r.kind == "list-pods"]
            assert [r.label_selector for r in pods_listing] == ["spec.nodeName=node-1"]

            api.apply_node(
                node("node-1", [{"key": SPOT_ITN, "value": "1718000001", "effect": "NoSchedule"}])
            )  # the same notice again: nothing new
            await wait_for(lambda: len(api.patches) >= 3, "the scale-down at the end of the notice")
            scale_down = api.patches[2]
            assert (scale_down.path, scale_down.body) == (SCALE_SPOT, {"spec": {"replicas": 2}})
            assert len(api.patches) == 3
            assert watcher.noticed == {"node-1"}
            notices = metrics.notices.labels(SPOT_ITN, "spot")._value.get()
            assert notices == 1
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
            await handler.close()
            await client_set.close()
            for gateway in gateways:
                await gateway.shutdown()

    with_cluster(tmp_path, monkeypatch, scenario)
