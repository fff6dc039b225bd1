"""Kubernetes objects of the gateway.

A Deployment of ``gpufleet serve -c /etc/gpufleet/fleet.yaml`` (≥ 2 replicas spread
over nodes and zones, restarted when its ConfigMap changes through a checksum
annotation), its ConfigMap, a ClusterIP Service for clients, a headless Service the
engines' preStop hook uses to reach every gateway pod, a ServiceAccount with a Role
that may only get/list/watch EndpointSlices in the namespace (discovery), a CPU HPA,
a PodDisruptionBudget, and an entry point: an ALB Ingress or an Istio HTTPRoute that
exposes only ``/v1`` (never ``/admin``). Secrets are referenced (``envFrom``), never
inlined.
"""

from __future__ import annotations

from gpufleet.deploy.k8s_common import KObject, component_labels, meta
from gpufleet.deploy.spec import GATEWAY_CONFIG_PATH, FleetSpec

PUBLIC_PATH = "/v1"
LB_DEREGISTRATION_S = 10


def gateway_labels(fleet: FleetSpec) -> dict[str, str]:
    return component_labels(fleet.gateway.name, "gateway")


def gateway_selector(fleet: FleetSpec) -> dict[str, str]:
    return {"app.kubernetes.io/name": fleet.gateway.name}


def gateway_objects(fleet: FleetSpec) -> list[KObject]:
    objects = [
        config_map(fleet),
        service_account(fleet),
        *discovery_rbac(fleet),
        deployment(fleet),
        service(fleet),
        peers_service(fleet),
        autoscaler(fleet),
        disruption_budget(fleet),
    ]
    kind = fleet.deploy.ingress.kind
    if kind == "alb":
        objects.append(alb_ingress(fleet))
    elif kind == "istio":
        objects.append(http_route(fleet))
    return objects


def config_map(fleet: FleetSpec) -> KObject:
    gw = fleet.gateway
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta(f"{gw.name}-config", fleet.namespace, gateway_labels(fleet)),
        "data": {"fleet.yaml": gw.fleet_yaml},
    }


def service_account(fleet: FleetSpec) -> KObject:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": meta(fleet.gateway.name, fleet.namespace, gateway_labels(fleet)),
    }


def discovery_rbac(fleet: FleetSpec) -> list[KObject]:
    name = f"{fleet.gateway.name}-discovery"
    labels = gateway_labels(fleet)
    rule = {
        "apiGroups": ["discovery.k8s.io"],
        "resources": ["endpointslices"],
        "verbs": ["get", "list", "watch"],
    }
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta(name, fleet.namespace, labels),
            "rules": [rule],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta(name, fleet.namespace, labels),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [
                {"kind": "ServiceAccount", "name": fleet.gateway.name, "namespace": fleet.namespace}
            ],
        },
    ]


def deployment(fleet: FleetSpec) -> KObject:
    gw = fleet.gateway
    settings = fleet.deploy.gateway
    selector = gateway_selector(fleet)
    labels = gateway_labels(fleet)
    probe = {
        "httpGet": {"path": "/health", "port": "http"},
        "periodSeconds": 5,
        "timeoutSeconds": 2,
    }
    container: KObject = {
        "name": "gateway",
        "image": gw.image,
        "command": ["gpufleet"],
        "args": ["serve", "-c", GATEWAY_CONFIG_PATH],
        "ports": [{"name": "http", "containerPort": gw.port, "protocol": "TCP"}],
    }
    if settings.secret_name is not None:
        container["envFrom"] = [{"secretRef": {"name": settings.secret_name, "optional": True}}]
    container.update(
        {
            "resources": {
                "requests": {
                    "cpu": f"{settings.cpu_request_millicores}m",
                    "memory": f"{settings.memory_request_mib}Mi",
                },
                "limits": {"memory": f"{settings.memory_limit_mib}Mi"},
            },
            "readinessProbe": {**probe, "failureThreshold": 2},
            "livenessProbe": {**probe, "failureThreshold": 6},
            "lifecycle": {"preStop": {"sleep": {"seconds": LB_DEREGISTRATION_S}}},
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            },
            "volumeMounts": [
                {
                    "name": "config",
                    "mountPath": GATEWAY_CONFIG_PATH.rsplit("/", 1)[0],
                    "readOnly": True,
                }
            ],
        }
    )
    spread = [
        _anti_affinity_term(selector, "kubernetes.io/hostname", 100),
        _anti_affinity_term(selector, "topology.kubernetes.io/zone", 50),
    ]
    grace_s = int(fleet.config.gateway.shutdown_grace_s) + LB_DEREGISTRATION_S + 5
    pod: KObject = {
        "serviceAccountName": gw.name,
        "terminationGracePeriodSeconds": grace_s,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "affinity": {
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": spread}
        },
        "containers": [container],
        "volumes": [{"name": "config", "configMap": {"name": f"{gw.name}-config"}}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(gw.name, fleet.namespace, labels),
        "spec": {
            "replicas": gw.replicas,
            "selector": {"matchLabels": selector},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {"gpufleet.io/config-sha256": gw.config_sha256},
                },
                "spec": pod,
            },
        },
    }


def service(fleet: FleetSpec) -> KObject:
    gw = fleet.gateway
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(gw.name, fleet.namespace, gateway_labels(fleet)),
        "spec": {
            "type": "ClusterIP",
            "selector": gateway_selector(fleet),
            "ports": [{"name": "http", "port": gw.port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def peers_service(fleet: FleetSpec) -> KObject:
    """Headless: resolves to every ready gateway pod (used by the engines' drain hook)."""
    gw = fleet.gateway
    labels = component_labels(gw.name, "gateway-peers")
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(f"{gw.name}-headless", fleet.namespace, labels),
        "spec": {
            "clusterIP": "None",
            "selector": gateway_selector(fleet),
            "ports": [{"name": "http", "port": gw.port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def autoscaler(fleet: FleetSpec) -> KObject:
    gw = fleet.gateway
    target = {"type": "Utilization", "averageUtilization": fleet.deploy.gateway.cpu_target_percent}
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta(gw.name, fleet.namespace, gateway_labels(fleet)),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": gw.name},
            "minReplicas": gw.replicas,
            "maxReplicas": gw.max_replicas,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": target}}],
        },
    }


def disruption_budget(fleet: FleetSpec) -> KObject:
    gw = fleet.gateway
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta(gw.name, fleet.namespace, gateway_labels(fleet)),
        "spec": {"minAvailable": 1, "selector": {"matchLabels": gateway_selector(fleet)}},
    }


def alb_ingress(fleet: FleetSpec) -> KObject:
    """AWS Load Balancer Controller Ingress; the idle timeout outlasts the longest wait
    for a first byte or between streamed chunks."""
    gw = fleet.gateway
    ingress = fleet.deploy.ingress
    timeouts = fleet.config.timeouts
    idle_s = int(max(timeouts.first_byte_s, timeouts.idle_s)) + 30
    alb = "alb.ingress.kubernetes.io"
    annotations = {
        f"{alb}/scheme": ingress.alb_scheme,
        f"{alb}/target-type": "ip",
        f"{alb}/healthcheck-path": "/health",
        f"{alb}/load-balancer-attributes": f"idle_timeout.timeout_seconds={idle_s}",
    }
    if ingress.alb_certificate_arn:
        annotations["alb.ingress.kubernetes.io/certificate-arn"] = ingress.alb_certificate_arn
        annotations["alb.ingress.kubernetes.io/listen-ports"] = '[{"HTTP": 80}, {"HTTPS": 443}]'
        annotations["alb.ingress.kubernetes.io/ssl-redirect"] = "443"
    else:
        annotations["alb.ingress.kubernetes.io/listen-ports"] = '[{"HTTP": 80}]'
    rule: KObject = {}
    if ingress.host:
        rule["host"] = ingress.host
    backend = {"service": {"name": gw.name, "port": {"name": "http"}}}
    rule["http"] = {"paths": [{"path": PUBLIC_PATH, "pathType": "Prefix", "backend": backend}]}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": meta(gw.name, fleet.namespace, gateway_labels(fleet), annotations),
        "spec": {"ingressClassName": "alb", "rules": [rule]},
    }


def http_route(fleet: FleetSpec) -> KObject:
    """Gateway API HTTPRoute on an Istio gateway; the request timeout covers a whole
    response (``timeouts.total_s``) plus 30 s."""
    gw = fleet.gateway
    ingress = fleet.deploy.ingress
    spec: KObject = {
        "parentRefs": [{"name": ingress.gateway_name, "namespace": ingress.gateway_namespace}]
    }
    if ingress.host:
        spec["hostnames"] = [ingress.host]
    spec["rules"] = [
        {
            "matches": [{"path": {"type": "PathPrefix", "value": PUBLIC_PATH}}],
            "backendRefs": [{"name": gw.name, "port": gw.port}],
            "timeouts": {"request": f"{int(fleet.config.timeouts.total_s) + 30}s"},
        }
    ]
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": meta(gw.name, fleet.namespace, gateway_labels(fleet)),
        "spec": spec,
    }


def _anti_affinity_term(selector: dict[str, str], topology_key: str, weight: int) -> KObject:
    return {
        "weight": weight,
        "podAffinityTerm": {
            "labelSelector": {"matchLabels": dict(selector)},
            "topologyKey": topology_key,
        },
    }
