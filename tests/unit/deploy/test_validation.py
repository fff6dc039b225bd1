"""Every rendered Kubernetes object of every test fleet validates strictly.

Built-in kinds against the official schemas of the configured Kubernetes version
(``deploy.aws.kubernetes_version``, 1.34 by default) and of the newest version
kubernetes-validate ships; custom resources against minimal schemas written from their
published CRDs. The strictness itself is checked: unknown fields are rejected.
"""

from __future__ import annotations

import copy
from functools import cache

import pytest

from gpufleet.deploy.k8s import k8s_objects
from tests.unit.deploy.fleets import FLEETS, spec
from tests.unit.deploy.k8s_schemas import K8sSchemas

LATEST = "1.37"


@cache
def schemas(version: str) -> K8sSchemas:
    return K8sSchemas(version)


@pytest.mark.parametrize("fleet", sorted(FLEETS))
def test_every_object_validates_strictly(fleet: str) -> None:
    fleet_spec = spec(fleet)
    versions = sorted({fleet_spec.deploy.aws.kubernetes_version, LATEST})
    objects = k8s_objects(fleet_spec)
    assert objects
    problems = []
    for version in versions:
        for obj in objects:
            name = f"{version} {obj['kind']}/{obj['metadata']['name']}"
            problems += [f"{name}: {error}" for error in schemas(version).errors(obj)]
    assert not problems, "\n".join(problems)


def test_the_example_covers_the_expected_kinds() -> None:
    kinds = {o["kind"] for o in k8s_objects(spec("example"))}
    assert kinds >= {
        "Deployment", "Service", "ConfigMap", "ServiceAccount", "Role", "RoleBinding",
        "HorizontalPodAutoscaler", "PodDisruptionBudget", "Ingress", "ScaledObject",
        "ServiceMonitor", "PodMonitor",
    }  # fmt: skip
    multinode = {o["kind"] for o in k8s_objects(spec("multinode"))}
    assert {"LeaderWorkerSet", "HTTPRoute", "DaemonSet"} <= multinode


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("Deployment", ("spec", "template", "spec", "containers", 0, "bogus")),
        ("ScaledObject", ("spec", "triggers", 0, "bogus")),
        ("LeaderWorkerSet", ("spec", "leaderWorkerTemplate", "workerTemplate", "spec", "bogus")),
        ("HTTPRoute", ("spec", "rules", 0, "bogus")),
        ("PodMonitor", ("spec", "podMetricsEndpoints", 0, "bogus")),
    ],
)
def test_unknown_fields_are_rejected(kind: str, path: tuple[str | int, ...]) -> None:
    obj = copy.deepcopy(next(o for o in k8s_objects(spec("multinode")) if o["kind"] == kind))
    node = obj
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = 1
    errors = schemas(LATEST).errors(obj)
    assert any("bogus" in e for e in errors), errors
