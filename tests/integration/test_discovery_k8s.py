"""The kubernetes discovery source against a local list/watch server, through lightkube.

Endpoints appear, drain and disappear in the gateway's FleetState as EndpointSlice
events arrive; the watch survives a dropped connection (resuming from the last
resourceVersion, without relisting), a 410 Gone (relisting, which also repairs what
the watch missed) and relists periodically. Every wait is a polled condition with a
deadline.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from lightkube import AsyncClient, KubeConfig

from gpufleet.backends.discovery_k8s import DiscoveryOptions, run_kubernetes_discovery
from gpufleet.config import FleetConfig, HealthConfig, ScrapeConfig, parse_config
from gpufleet.gateway.fleet import FleetState
from gpufleet.types import EndpointHealth
from tests.support.k8s_server import FakeKubeApi, endpoint_slice, pod_endpoint

NS = "llm"
DEADLINE_S = 5.0
POOL_SELECTOR = {"app.kubernetes.io/name": "vllm", "gpufleet.io/pool": "h100"}
LABELS_8B = {**POOL_SELECTOR, "gpufleet.io/model": "llama-3-8b", "gpufleet.io/gpu": "h100-sxm"}
LABELS_70B = {**POOL_SELECTOR, "gpufleet.io/model": "llama-3-70b", "gpufleet.io/gpu": "h100-sxm"}
FAST = DiscoveryOptions(relist_interval_s=300, retry_base_s=0.01, retry_max_s=0.05)


def fleet_config() -> FleetConfig:
    return parse_config(
        {
            "models": [
                {"name": "llama-3-8b", "lora_adapters": ["sql"]},
                {"name": "llama-3-70b"},
            ],
            "pools": [
                {
                    "name": "h100",
                    "gpu": "h100-sxm",
                    "gpus_per_replica": 2,
                    "price_usd_per_gpu_hour": 3.0,
                    "deployments": [{"model": "llama-3-8b"}, {"model": "llama-3-70b"}],
                    "discovery": {"kind": "kubernetes", "namespace": NS, "port": 8000},
                }
            ],
        }
    )


async def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = DEADLINE_S) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for: {what}")
        await asyncio.sleep(0.01)


Scenario = Callable[[FakeKubeApi, FleetState], Awaitable[None]]


def run_discovery(
    tmp_path: Path, scenario: Scenario, options: DiscoveryOptions = FAST
) -> FleetState:
    """Start the server and the discovery task, run ``scenario``, cancel, clean up."""

    async def main() -> FleetState:
        api = FakeKubeApi()
        await api.start()
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig", NS)
        client = AsyncClient(config=KubeConfig.from_file(kubeconfig))
        config = fleet_config()
        fleet = FleetState(HealthConfig(interval_s=3600), ScrapeConfig(enabled=False))
        task = asyncio.create_task(
            run_kubernetes_discovery(config, config.pools[0], fleet, client=client, options=options)
        )
        try:
            await scenario(api, fleet)
            assert not task.done(), task
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await client.close()
            await api.close()
            await fleet.stop()
        return fleet

    return asyncio.run(main())


def states(fleet: FleetState) -> dict[str, str]:
    return {
        eid: "draining" if e.draining else e.health.value
        for eid, e in sorted(fleet.endpoints.items())
    }


def test_endpoints_appear_drain_and_disappear_as_events_arrive(tmp_path: Path) -> None:
    async def scenario(api: FakeKubeApi, fleet: FleetState) -> None:
        api.apply(
            endpoint_slice(
                "vllm-8b-abc",
                NS,
                LABELS_8B,
                [pod_endpoint("pod-a", "10.0.0.1"), pod_endpoint("pod-b", "10.0.0.2", ready=False)],
            )
        )
        api.apply(
            endpoint_slice(
                "other", NS, {"app.kubernetes.io/name": "other"}, [pod_endpoint("x", "10.9.9.9")]
            )
        )
        api.apply(
            endpoint_slice("other-ns", "elsewhere", LABELS_8B, [pod_endpoint("y", "10.9.9.8")])
        )
        await wait_for(lambda: "h100/llama-3-8b/pod-a" in fleet.endpoints, "the initial list")
        a = fleet.endpoints["h100/llama-3-8b/pod-a"]
        assert states(fleet) == {"h100/llama-3-8b/pod-a": "healthy"}, "not-ready pod-b is not added"
        assert a.url == "http://10.0.0.1:8000"
        assert (a.spec.model, a.spec.pool, a.spec.gpu) == ("llama-3-8b", "h100", "h100-sxm")
        assert a.spec.price_usd_per_hour == 6.0 and a.adapters == frozenset({"sql"})
        assert fleet.find("http://10.0.0.1:8000") is a, "the preStop hook drains by URL"

        api.apply(
            endpoint_slice(
                "vllm-8b-abc",
                NS,
                LABELS_8B,
                [pod_endpoint("pod-a", "10.0.0.1"), pod_endpoint("pod-b", "10.0.0.2")],
            )
        )
        await wait_for(lambda: "h100/llama-3-8b/pod-b" in fleet.endpoints, "MODIFIED: pod-b ready")
        assert fleet.endpoints["h100/llama-3-8b/pod-b"].health is EndpointHealth.HEALTHY

        api.apply(
            endpoint_slice("vllm-70b-xyz", NS, LABELS_70B, [pod_endpoint("pod-c", "10.0.1.1")])
        )
        await wait_for(lambda: "h100/llama-3-70b/pod-c" in fleet.endpoints, "ADDED: a second slice")
        assert [e.id for e in fleet.by_model["llama-3-70b"]] == ["h100/llama-3-70b/pod-c"]

        api.apply(
            endpoint_slice(
                "vllm-8b-abc",
                NS,
                LABELS_8B,
                [
                    pod_endpoint("pod-a", "10.0.0.1", ready=False, terminating=True),
                    pod_endpoint("pod-b", "10.0.0.2"),
                ],
            )
        )
        await wait_for(lambda: a.draining, "MODIFIED: pod-a terminating → draining")
        assert not a.routable and fleet.endpoints["h100/llama-3-8b/pod-b"].routable

        api.apply(
            endpoint_slice(
                "vllm-8b-abc", NS, LABELS_8B, [pod_endpoint("pod-b", "10.0.0.2", ready=False)]
            )
        )
        await wait_for(lambda: "h100/llama-3-8b/pod-a" not in fleet.endpoints, "pod-a gone")
        await wait_for(
            lambda: fleet.endpoints["h100/llama-3-8b/pod-b"].health is EndpointHealth.UNHEALTHY,
            "pod-b not ready → unhealthy, kept",
        )

        api.delete(NS, "vllm-70b-xyz")
        await wait_for(
            lambda: "llama-3-70b" not in {e.spec.model for e in fleet.endpoints.values()}, "DELETED"
        )
        assert states(fleet) == {"h100/llama-3-8b/pod-b": "unhealthy"}
        assert api.count("list") == 1, "no relist was needed"

    fleet = run_discovery(tmp_path, scenario)
    assert fleet.endpoints == {}, "cancelling discovery removes its endpoints"


def test_dropped_watch_resumes_from_the_last_resource_version(tmp_path: Path) -> None:
    async def scenario(api: FakeKubeApi, fleet: FleetState) -> None:
        api.apply(endpoint_slice("s1", NS, LABELS_8B, [pod_endpoint("pod-a", "10.0.0.1")]))
        await wait_for(
            lambda: len(fleet.endpoints) == 1 and api.count("watch") >= 1, "list, then watch"
        )
        last = api.apply(endpoint_slice("s2", NS, LABELS_70B, [pod_endpoint("pod-c", "10.0.1.1")]))
        await wait_for(lambda: len(fleet.endpoints) == 2, "the event before the drop")
        watches = api.count("watch")

        api.drop_watches()
        await wait_for(lambda: api.count("watch") > watches, "a new watch after the drop")
        assert api.requests[-1].resource_version == str(last), "resumed where it stopped"
        api.apply(endpoint_slice("s2", NS, LABELS_70B, [pod_endpoint("pod-d", "10.0.1.2")]))
        await wait_for(
            lambda: "h100/llama-3-70b/pod-d" in fleet.endpoints, "events after the resume"
        )
        await wait_for(lambda: "h100/llama-3-70b/pod-c" not in fleet.endpoints, "pod-c replaced")
        assert api.count("list") == 1, "a dropped watch resumes without relisting"

    run_discovery(tmp_path, scenario)


@pytest.mark.parametrize("gone_as_http", [False, True], ids=["error-event", "http-410"])
def test_gone_forces_a_relist_that_repairs_missed_changes(
    tmp_path: Path, gone_as_http: bool
) -> None:
    async def scenario(api: FakeKubeApi, fleet: FleetState) -> None:
        api.gone_as_http = gone_as_http
        api.apply(endpoint_slice("s1", NS, LABELS_8B, [pod_endpoint("pod-a", "10.0.0.1")]))
        api.apply(endpoint_slice("s2", NS, LABELS_70B, [pod_endpoint("pod-c", "10.0.1.1")]))
        await wait_for(
            lambda: len(fleet.endpoints) == 2 and api.count("watch") >= 1, "list, then watch"
        )

        api.delete_silently(NS, "s2")
        api.apply_silently(endpoint_slice("s3", NS, LABELS_8B, [pod_endpoint("pod-e", "10.0.0.5")]))
        api.compact()
        api.drop_watches()
        await wait_for(lambda: api.count("list") == 2, "a relist after 410 Gone")
        await wait_for(
            lambda: set(fleet.endpoints) == {"h100/llama-3-8b/pod-a", "h100/llama-3-8b/pod-e"},
            "the relist repairs what the watch missed",
        )
        api.apply(
            endpoint_slice(
                "s1",
                NS,
                LABELS_8B,
                [pod_endpoint("pod-a", "10.0.0.1", ready=False, terminating=True)],
            )
        )
        await wait_for(lambda: fleet.endpoints["h100/llama-3-8b/pod-a"].draining, "watching again")

    run_discovery(tmp_path, scenario)


def test_periodic_relist_catches_what_no_event_announced(tmp_path: Path) -> None:
    async def scenario(api: FakeKubeApi, fleet: FleetState) -> None:
        api.apply(endpoint_slice("s1", NS, LABELS_8B, [pod_endpoint("pod-a", "10.0.0.1")]))
        await wait_for(lambda: len(fleet.endpoints) == 1, "the initial list")
        api.apply_silently(endpoint_slice("s1", NS, LABELS_8B, [pod_endpoint("pod-b", "10.0.0.2")]))
        await wait_for(
            lambda: set(fleet.endpoints) == {"h100/llama-3-8b/pod-b"}, "a periodic relist"
        )
        assert api.count("list") >= 2

    run_discovery(tmp_path, scenario, DiscoveryOptions(relist_interval_s=0.2, retry_base_s=0.01))


def test_an_ejected_endpoint_stays_ejected_until_its_conditions_change(tmp_path: Path) -> None:
    async def scenario(api: FakeKubeApi, fleet: FleetState) -> None:
        ready = endpoint_slice("s1", NS, LABELS_8B, [pod_endpoint("pod-a", "10.0.0.1")])
        api.apply(ready)
        await wait_for(lambda: len(fleet.endpoints) == 1, "the initial list")
        endpoint = fleet.endpoints["h100/llama-3-8b/pod-a"]
        endpoint.health = EndpointHealth.EJECTED
        api.apply(endpoint_slice("s2", NS, LABELS_70B, [pod_endpoint("pod-c", "10.0.1.1")]))
        api.apply(ready)
        await wait_for(lambda: len(fleet.endpoints) == 2, "unrelated events")
        assert endpoint.health is EndpointHealth.EJECTED

    run_discovery(tmp_path, scenario)


def test_the_prestop_hook_drains_a_discovered_endpoint_at_a_real_gateway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway starts discovery for its pool by itself (kubeconfig from KUBECONFIG);
    the engines' preStop hook (drain.py) finds the replica there by its URL and drains it
    through the admin API."""
    from gpufleet.gateway.service import Gateway

    drain_script = (
        Path(__file__).parents[2] / "src" / "gpufleet" / "deploy" / "scripts" / "drain.py"
    )

    async def main() -> None:
        api = FakeKubeApi()
        await api.start()
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig", NS)
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        config = fleet_config()
        gateway = Gateway.build(config)
        port = await gateway.start("127.0.0.1", 0)
        try:
            api.apply(endpoint_slice("s1", NS, LABELS_8B, [pod_endpoint("pod-a", "10.0.0.1")]))
            await wait_for(lambda: "h100/llama-3-8b/pod-a" in gateway.fleet.endpoints, "discovery")
            env = {
                "GPUFLEET_GATEWAY_HOST": "127.0.0.1",
                "GPUFLEET_GATEWAY_PORT": str(port),
                "POD_IP": "10.0.0.1",
                "ENGINE_PORT": "8000",
                "DRAIN_TIMEOUT_S": "5",
                "DRAIN_POLL_S": "0.02",
            }
            hook = await asyncio.create_subprocess_exec(
                sys.executable, str(drain_script), env=env, stderr=asyncio.subprocess.PIPE
            )
            _, stderr = await asyncio.wait_for(hook.communicate(), DEADLINE_S)
            assert hook.returncode == 0, stderr
            assert gateway.fleet.endpoints["h100/llama-3-8b/pod-a"].draining, stderr
        finally:
            await gateway.shutdown()
            await api.close()

    asyncio.run(main())
