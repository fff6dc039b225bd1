"""Signal gathering (pure part): gateway bodies parsed, replicas merged over gateways,
deployment signals and arrival rates built."""

from __future__ import annotations

import orjson
import pytest

from gpufleet.control.snapshot import (
    DOWN,
    DRAINING,
    READY,
    STARTING,
    GatewaySnapshot,
    ReplicaState,
    SignalBuilder,
    merge_replicas,
    parse_endpoints,
    parse_gateway_metrics,
)

METRICS = b"""# HELP gpufleet_requests_total Requests by final outcome.
# TYPE gpufleet_requests_total counter
gpufleet_requests_total{model="m",outcome="success"} 40.0
gpufleet_requests_total{model="m",outcome="backend_error"} 2.0
gpufleet_requests_total{model="other",outcome="success"} 5.0
# HELP gpufleet_queue_depth Requests waiting in the gateway's admission queue.
# TYPE gpufleet_queue_depth gauge
gpufleet_queue_depth{model="m",priority="5"} 3.0
gpufleet_queue_depth{model="m",priority="10"} 1.0
# HELP gpufleet_queue_shed_total Requests shed.
# TYPE gpufleet_queue_shed_total counter
gpufleet_queue_shed_total 7.0
"""


def replica(rid: str, state: str, in_flight: int = 0, **load: float) -> ReplicaState:
    pool, model, _ = rid.split("/")
    return ReplicaState(
        rid, model, pool, state, in_flight,
        load.get("waiting", 0.0), load.get("running", 0.0), load.get("kv", 0.0),
    )  # fmt: skip


def snapshot(
    *replicas: ReplicaState, queued: int = 0, completed: float = 0.0, url: str = "gw"
) -> GatewaySnapshot:
    return GatewaySnapshot(url, replicas, {"m": queued} if queued else {}, {"m": completed})


def test_endpoints_of_the_admin_api_are_parsed_with_their_states() -> None:
    body = orjson.dumps(
        {
            "endpoints": [
                {"id": "p/m/0", "model": "m", "pool": "p", "state": "healthy", "in_flight": 2,
                 "num_waiting": 1.5, "num_running": 3.0, "kv_usage": 0.25},
                {"id": "p/m/1", "model": "m", "pool": "p", "state": "draining", "in_flight": 1,
                 "num_waiting": 0, "num_running": 1, "kv_usage": None},
                {"id": "p/m/2", "model": "m", "pool": "p", "state": "ejected"},
                {"id": "p/m/3", "model": "m", "pool": "p", "state": "starting"},
            ]
        }
    )  # fmt: skip
    parsed = parse_endpoints(body)
    assert [r.state for r in parsed] == [READY, DRAINING, DOWN, STARTING]
    assert parsed[0] == replica("p/m/0", READY, 2, waiting=1.5, running=3.0, kv=0.25)
    assert parsed[1].kv_usage == 0.0


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"endpoints": 3}', b'{"endpoints": [1]}', b'{"endpoints": [{}]}'],
)
def test_a_body_that_is_not_the_admin_api_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError, match="/admin/endpoints"):
        parse_endpoints(body)


def test_queue_depth_and_finished_requests_come_from_the_gateway_metrics() -> None:
    queued, completed = parse_gateway_metrics(METRICS.decode())
    assert queued == {"m": 4}
    assert completed == {"m": 42.0, "other": 5.0}


def test_a_replica_seen_by_two_gateways_is_one_replica() -> None:
    merged = merge_replicas(
        [
            snapshot(replica("p/m/0", READY, 2, waiting=1.0, kv=0.5), replica("p/m/1", READY, 1)),
            snapshot(replica("p/m/0", DRAINING, 3, waiting=2.0, kv=0.4), replica("p/m/1", DOWN)),
        ]
    )
    assert merged["p/m/0"].state == DRAINING, "draining at any gateway"
    assert merged["p/m/0"].num_in_flight == 5, "in-flight adds up over gateways"
    assert (merged["p/m/0"].num_waiting, merged["p/m/0"].kv_usage) == (2.0, 0.5)
    assert merged["p/m/1"].state == READY, "healthy at one gateway"


def test_deployment_signals_count_replicas_by_state_and_load_on_ready_ones() -> None:
    builder = SignalBuilder(["p/m", "q/m"])
    signals = builder.build(
        [
            snapshot(
                replica("p/m/0", READY, 2, waiting=1.0, running=2.0, kv=0.2),
                replica("p/m/1", READY, 1, waiting=3.0, running=1.0, kv=0.6),
                replica("p/m/2", DRAINING, 4, waiting=9.0, running=4.0, kv=0.9),
                replica("p/m/3", STARTING),
                replica("p/m/4", DOWN),
                queued=5,
            )
        ],
        now_s=10.0,
        pending={"p/m": 2},
        under_notice={"p/m": 1},
        notices_total={"p/m": 3},
    )
    p = signals.deployments["p/m"]
    assert (p.num_ready, p.num_starting, p.num_draining) == (2, 3, 1)
    assert p.num_in_flight == 7
    assert (p.num_waiting, p.num_running) == (4.0, 3.0)
    assert p.mean_kv_usage == pytest.approx(0.4)
    assert (p.num_notice, p.num_notices_total) == (1, 3)
    q = signals.deployments["q/m"]
    assert (q.num_ready, q.num_starting, q.mean_kv_usage) == (0, 0, 0.0)
    assert signals.queued_by_model == {"m": 5}
    assert signals.num_arrivals_total_by_model == {"m": 12}, "0 done + 7 in flight + 5 queued"


def test_arrival_rate_is_completions_plus_growth_in_flight_and_queued_over_time() -> None:
    builder = SignalBuilder(["p/m"])
    first = builder.build([snapshot(replica("p/m/0", READY, 2), completed=10)], now_s=0.0)
    assert first.arrivals_per_s_by_model == {"*": 0.0}, "no rate from one round"
    second = builder.build(
        [snapshot(replica("p/m/0", READY, 6), queued=2, completed=30)], now_s=4.0
    )
    # 20 finished + (6 + 2 - 2) more in the system = 26 arrivals in 4 s
    assert second.arrivals_per_s_by_model["m"] == pytest.approx(6.5)
    assert second.arrivals_per_s_by_model["*"] == pytest.approx(6.5)
    restarted = builder.build([snapshot(replica("p/m/0", READY, 0), completed=4)], now_s=6.0)
    # the counter went down (a restarted gateway): 4 finished, 8 fewer in the system
    assert restarted.arrivals_per_s_by_model["m"] == 0.0
