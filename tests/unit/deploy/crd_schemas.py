"""Minimal strict JSON schemas of the custom resources gpufleet renders.

Written from the field structure of the published CRDs (KEDA ``keda.sh/v1alpha1``
ScaledObject, Prometheus Operator ``monitoring.coreos.com/v1`` ServiceMonitor and
PodMonitor, ``leaderworkerset.x-k8s.io/v1`` LeaderWorkerSet, Gateway API
``gateway.networking.k8s.io/v1`` HTTPRoute): every object level lists its published
fields and forbids others, required fields are required, enums are closed. Embedded
Kubernetes types (ObjectMeta, LabelSelector, PodTemplateSpec, HPA behavior) refer to
the official strict definitions shipped with kubernetes-validate.
"""

from __future__ import annotations

from typing import Any

DEFS = "/api/_definitions.json#/$defs/"


def ref(name: str) -> dict[str, Any]:
    return {"$ref": DEFS + name}


def obj(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        out["required"] = list(required)
    return out


STRING = {"type": "string"}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
STRINGS = {"type": "array", "items": STRING}
INT_OR_STRING = {"anyOf": [INT, STRING]}
META = ref("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
LABEL_SELECTOR = ref("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector")


def resource(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    schema = obj(
        {
            "apiVersion": {"enum": [api_version]},
            "kind": {"enum": [kind]},
            "metadata": META,
            "spec": spec,
        },
        ("apiVersion", "kind", "metadata", "spec"),
    )
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://kubernetes.io/api/crd/{api_version}/{kind}"
    return schema


SCALED_OBJECT = resource(
    "keda.sh/v1alpha1",
    "ScaledObject",
    obj(
        {
            "scaleTargetRef": obj(
                {
                    "apiVersion": STRING,
                    "kind": STRING,
                    "name": STRING,
                    "envSourceContainerName": STRING,
                },
                ("name",),
            ),
            "pollingInterval": INT,
            "cooldownPeriod": INT,
            "initialCooldownPeriod": INT,
            "idleReplicaCount": INT,
            "minReplicaCount": INT,
            "maxReplicaCount": INT,
            "fallback": obj(
                {"failureThreshold": INT, "replicas": INT}, ("failureThreshold", "replicas")
            ),
            "advanced": obj(
                {
                    "restoreToOriginalReplicaCount": BOOL,
                    "horizontalPodAutoscalerConfig": obj(
                        {
                            "name": STRING,
                            "behavior": ref(
                                "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerBehavior"
                            ),
                        }
                    ),
                    "scalingModifiers": obj(
                        {
                            "formula": STRING,
                            "target": STRING,
                            "activationTarget": STRING,
                            "metricType": STRING,
                        }
                    ),
                }
            ),
            "triggers": {
                "type": "array",
                "minItems": 1,
                "items": obj(
                    {
                        "type": STRING,
                        "name": STRING,
                        "useCachedMetrics": BOOL,
                        "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                        "metadata": {"type": "object", "additionalProperties": STRING},
                        "authenticationRef": obj({"name": STRING, "kind": STRING}, ("name",)),
                    },
                    ("type", "metadata"),
                ),
            },
        },
        ("scaleTargetRef", "triggers"),
    ),
)

RELABEL_CONFIG = obj(
    {
        "sourceLabels": STRINGS,
        "separator": STRING,
        "targetLabel": STRING,
        "regex": STRING,
        "modulus": INT,
        "replacement": STRING,
        "action": {
            "enum": [
                "replace", "Replace", "keep", "Keep", "drop", "Drop", "hashmod", "HashMod",
                "labelmap", "LabelMap", "labeldrop", "LabelDrop", "labelkeep", "LabelKeep",
                "lowercase", "Lowercase", "uppercase", "Uppercase", "keepequal", "KeepEqual",
                "dropequal", "DropEqual",
            ]
        },
    }
)  # fmt: skip
RELABELINGS = {"type": "array", "items": RELABEL_CONFIG}
DURATION = (
    "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
NAMESPACE_SELECTOR = obj({"any": BOOL, "matchNames": STRINGS})
SCRAPE_ENDPOINT = {
    "port": STRING,
    "targetPort": INT_OR_STRING,
    "path": STRING,
    "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
    "params": {"type": "object", "additionalProperties": STRINGS},
    "interval": {"type": "string", "pattern": DURATION},
    "scrapeTimeout": STRING,
    "honorLabels": BOOL,
    "honorTimestamps": BOOL,
    "trackTimestampsStaleness": BOOL,
    "enableHttp2": BOOL,
    "followRedirects": BOOL,
    "filterRunning": BOOL,
    "relabelings": RELABELINGS,
    "metricRelabelings": RELABELINGS,
}  # fmt: skip

SERVICE_MONITOR = resource(
    "monitoring.coreos.com/v1",
    "ServiceMonitor",
    obj(
        {
            "selector": LABEL_SELECTOR,
            "namespaceSelector": NAMESPACE_SELECTOR,
            "endpoints": {
                "type": "array",
                "items": obj({**SCRAPE_ENDPOINT, "bearerTokenFile": STRING}),
            },
            "jobLabel": STRING,
            "targetLabels": STRINGS,
            "podTargetLabels": STRINGS,
            "sampleLimit": INT,
            "attachMetadata": obj({"node": BOOL}),
        },
        ("selector",),
    ),
)

POD_MONITOR = resource(
    "monitoring.coreos.com/v1",
    "PodMonitor",
    obj(
        {
            "selector": LABEL_SELECTOR,
            "namespaceSelector": NAMESPACE_SELECTOR,
            "podMetricsEndpoints": {"type": "array", "items": obj(SCRAPE_ENDPOINT)},
            "jobLabel": STRING,
            "podTargetLabels": STRINGS,
            "sampleLimit": INT,
            "attachMetadata": obj({"node": BOOL}),
        },
        ("selector",),
    ),
)

POD_TEMPLATE = ref("io.k8s.api.core.v1.PodTemplateSpec")
LEADER_WORKER_SET = resource(
    "leaderworkerset.x-k8s.io/v1",
    "LeaderWorkerSet",
    obj(
        {
            "replicas": INT,
            "leaderWorkerTemplate": obj(
                {
                    "leaderTemplate": POD_TEMPLATE,
                    "workerTemplate": POD_TEMPLATE,
                    "size": {"type": "integer", "minimum": 1},
                    "restartPolicy": {"enum": ["RecreateGroupOnPodRestart", "Default", "None"]},
                    "subGroupPolicy": obj({"subGroupSize": INT}),
                    "volumeClaimTemplates": {"type": "array"},
                },
                ("workerTemplate",),
            ),
            "rolloutStrategy": obj(
                {
                    "type": {"enum": ["RollingUpdate"]},
                    "rollingUpdateConfiguration": obj(
                        {"maxUnavailable": INT_OR_STRING, "maxSurge": INT_OR_STRING}
                    ),
                }
            ),
            "startupPolicy": {"enum": ["LeaderCreated", "LeaderReady"]},
            "networkConfig": obj({"subdomainPolicy": {"enum": ["Shared", "UniquePerReplica"]}}),
        },
        ("leaderWorkerTemplate",),
    ),
)

PARENT_REF = obj(
    {
        "group": STRING,
        "kind": STRING,
        "namespace": STRING,
        "name": STRING,
        "sectionName": STRING,
        "port": INT,
    },
    ("name",),
)
HTTP_ROUTE = resource(
    "gateway.networking.k8s.io/v1",
    "HTTPRoute",
    obj(
        {
            "parentRefs": {"type": "array", "items": PARENT_REF},
            "hostnames": STRINGS,
            "rules": {
                "type": "array",
                "items": obj(
                    {
                        "name": STRING,
                        "matches": {
                            "type": "array",
                            "items": obj(
                                {
                                    "path": obj(
                                        {
                                            "type": {
                                                "enum": ["Exact", "PathPrefix", "RegularExpression"]
                                            },
                                            "value": STRING,
                                        }
                                    ),
                                    "headers": {"type": "array"},
                                    "queryParams": {"type": "array"},
                                    "method": STRING,
                                }
                            ),
                        },
                        "filters": {"type": "array"},
                        "backendRefs": {
                            "type": "array",
                            "items": obj(
                                {
                                    "group": STRING,
                                    "kind": STRING,
                                    "name": STRING,
                                    "namespace": STRING,
                                    "port": INT,
                                    "weight": INT,
                                    "filters": {"type": "array"},
                                },
                                ("name",),
                            ),
                        },
                        "timeouts": obj(
                            {
                                "request": {
                                    "type": "string",
                                    "pattern": "^([0-9]{1,5}(h|m|s|ms)){1,4}$",
                                },
                                "backendRequest": {
                                    "type": "string",
                                    "pattern": "^([0-9]{1,5}(h|m|s|ms)){1,4}$",
                                },
                            }
                        ),
                        "retry": {"type": "object"},
                        "sessionPersistence": {"type": "object"},
                    }
                ),
            },
        }
    ),
)

CRD_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("keda.sh/v1alpha1", "ScaledObject"): SCALED_OBJECT,
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR,
    ("monitoring.coreos.com/v1", "PodMonitor"): POD_MONITOR,
    ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet"): LEADER_WORKER_SET,
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): HTTP_ROUTE,
}
