"""The labels that tie rendered engine objects to the gateway's discovery.

Contract: the renderers (``gpufleet.deploy``) put these labels on every engine pod
and on its headless Service (Kubernetes copies a Service's labels onto its
EndpointSlices); the ``kubernetes`` discovery source reads them back. Label values
are ``label_value(name)``; the discovery maps a value back to the fleet's model,
pool and GPU names by applying the same function to the configured names.
"""

from __future__ import annotations

import hashlib
import re

NAME_LABEL = "app.kubernetes.io/name"
ENGINE_NAME = "vllm"
MODEL_LABEL = "gpufleet.io/model"
POOL_LABEL = "gpufleet.io/pool"
GPU_LABEL = "gpufleet.io/gpu"

_MAX_LABEL = 63
_INVALID = re.compile(r"[^a-z0-9-]+")


def label_value(name: str, max_len: int = _MAX_LABEL) -> str:
    """A DNS-1123 label (lowercase alphanumerics and '-', alphanumeric at both ends, at
    most ``max_len`` characters) for ``name``; also a valid label value and object name.

    Names that are already valid map to themselves; others are lowercased, runs of
    other characters become '-', and a name that had to be shortened ends with 8 hex
    digits of its sha256 so that distinct names stay distinct."""
    cleaned = _INVALID.sub("-", name.lower()).strip("-") or "x"
    if len(cleaned) <= max_len:
        return cleaned
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{cleaned[: max_len - 9].rstrip('-')}-{digest}"


def default_selector(pool_name: str) -> dict[str, str]:
    """The EndpointSlice selector of a pool's engines when its discovery names none."""
    return {NAME_LABEL: ENGINE_NAME, POOL_LABEL: label_value(pool_name)}
