"""Passive ejection: failures eject a replica with a capped exponential back-off."""

from __future__ import annotations

import pytest

from gpufleet.backends.endpoint import LiveEndpoint
from gpufleet.config import HealthConfig, parse_config
from gpufleet.gateway.fleet import static_endpoint_specs
from gpufleet.types import EndpointHealth


def endpoint() -> LiveEndpoint:
    config = parse_config({
        "models": [{"name": "m"}],
        "pools": [{"name": "p", "gpu": "h100-sxm", "price_usd_per_gpu_hour": 4.0,
                   "deployments": [{"model": "m", "endpoints": ["http://127.0.0.1:9"]}]}],
    })  # fmt: skip
    (spec,) = static_endpoint_specs(config)
    return LiveEndpoint(spec, HealthConfig(eject_after_failures=3))


def test_failures_of_requests_in_flight_during_an_ejection_do_not_re_eject() -> None:
    replica = endpoint()
    assert [replica.record_failure(0.0) for _ in range(3)] == [False, False, True]
    assert replica.health is EndpointHealth.EJECTED
    until = replica.ejected_until
    # thousands of in-flight requests fail while it is out: no new ejection, no overflow
    assert not any(replica.record_failure(0.1) for _ in range(5000))
    assert replica.ejected_until == until and replica.num_ejections == 1


def test_back_off_doubles_and_is_capped() -> None:
    replica = endpoint()
    config = HealthConfig()
    now = 0.0
    backoffs = []
    for _ in range(40):
        for _ in range(config.eject_after_failures):
            ejected = replica.record_failure(now)
        assert ejected
        backoffs.append(replica.ejected_until - now)
        now = replica.ejected_until + 0.001  # the back-off ran out, and it failed again
    assert backoffs[:3] == [config.eject_base_s, 2 * config.eject_base_s, 4 * config.eject_base_s]
    assert max(backoffs) == pytest.approx(config.eject_max_s)
