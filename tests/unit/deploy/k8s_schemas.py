"""Strict validation of rendered objects: official Kubernetes schemas, CRD minimal schemas.

Built-in kinds use kubernetes-validate's strict schemas of one Kubernetes version
(offline: the package ships them); custom resources use `crd_schemas`. Both resolve
embedded Kubernetes types against the same official ``_definitions.json``.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

import jsonschema
from referencing import Registry, Resource

from tests.unit.deploy.crd_schemas import CRD_SCHEMAS

Validator = jsonschema.protocols.Validator


class K8sSchemas:
    def __init__(self, version: str):
        self.version = version
        self._root = resources.files("kubernetes_validate") / "kubernetes-json-schema"
        self._dir = self._root / f"v{version}.0-local-strict"
        if not self._dir.is_dir():
            raise LookupError(f"kubernetes-validate has no strict schemas for {version}")
        definitions = json.loads((self._dir / "_definitions.json").read_text("utf-8"))
        self._registry: Registry[Any] = Resource.from_contents(definitions) @ Registry()
        self._validators: dict[tuple[str, str], Validator] = {}

    def validator(self, api_version: str, kind: str) -> Validator:
        key = (api_version, kind)
        if key not in self._validators:
            schema = CRD_SCHEMAS.get(key) or self._builtin(api_version, kind)
            registry = Resource.from_contents(schema) @ self._registry
            self._validators[key] = jsonschema.Draft202012Validator(schema, registry=registry)
        return self._validators[key]

    def errors(self, obj: dict[str, Any]) -> list[str]:
        """Every schema violation of ``obj`` as 'path: message'; empty when valid."""
        validator = self.validator(obj["apiVersion"], obj["kind"])
        return [
            f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
            for error in validator.iter_errors(obj)
        ]

    def _builtin(self, api_version: str, kind: str) -> dict[str, Any]:
        group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
        path = self._dir / f"{kind.lower()}-{group}.json"
        if not path.is_file():
            raise LookupError(f"no official schema for {api_version} {kind} (is it a CRD?)")
        schema: dict[str, Any] = json.loads(path.read_text("utf-8"))
        return schema
