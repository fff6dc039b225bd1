"""The model and GPU catalog: package data files turned into specs.

Contract: `Catalog.load()` reads ``gpufleet/data/models.yaml`` and
``gpufleet/data/gpus.yaml`` (or the paths given) and returns an immutable
catalog; nothing is cached at module level, so callers load once and pass the
catalog on. Lookups accept a catalog id (lowercase kebab-case), any case of it,
an alias (GPUs: ``aliases:``; models: the entry's ``hf_ids``). An unknown name
raises KeyError listing the known ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from types import MappingProxyType

import yaml

from gpufleet.plan.gpu_spec import GpuSpec
from gpufleet.plan.model_spec import ModelSpec

_PACKAGE = "gpufleet"


@dataclass(frozen=True)
class Catalog:
    """Models and GPUs by catalog id, plus name aliases for each."""

    models: Mapping[str, ModelSpec]
    gpus: Mapping[str, GpuSpec]
    model_aliases: Mapping[str, str]
    gpu_aliases: Mapping[str, str]

    @classmethod
    def load(cls, models_yaml: Path | None = None, gpus_yaml: Path | None = None) -> Catalog:
        """Parse the catalog files (package data by default); ValueError on a bad entry."""
        models_doc = _read_yaml(models_yaml, "models.yaml")
        gpus_doc = _read_yaml(gpus_yaml, "gpus.yaml")
        models = {key: _model(key, entry) for key, entry in _section(models_doc, "models").items()}
        gpus = {
            key: GpuSpec.from_mapping(key, entry)
            for key, entry in _section(gpus_doc, "gpus").items()
        }
        model_aliases = {hf_id.lower(): m.key for m in models.values() for hf_id in m.hf_ids}
        raw_aliases = gpus_doc.get("aliases") or {}
        if not isinstance(raw_aliases, dict):
            raise ValueError("gpus.yaml: aliases must be a mapping")
        gpu_aliases = {str(a).lower(): str(target) for a, target in raw_aliases.items()}
        for alias, target in gpu_aliases.items():
            if target not in gpus:
                raise ValueError(f"gpus.yaml: alias {alias!r} names unknown GPU {target!r}")
        return cls(
            models=MappingProxyType(models),
            gpus=MappingProxyType(gpus),
            model_aliases=MappingProxyType(model_aliases),
            gpu_aliases=MappingProxyType(gpu_aliases),
        )

    def model(self, name: str) -> ModelSpec:
        """The model with this id, alias or HF repository id (case-insensitive)."""
        return self.models[_resolve(name, self.models, self.model_aliases, "model")]

    def gpu(self, name: str) -> GpuSpec:
        """The GPU with this id or alias (case-insensitive)."""
        return self.gpus[_resolve(name, self.gpus, self.gpu_aliases, "GPU")]

    def with_model(self, spec: ModelSpec) -> Catalog:
        """A copy of the catalog with ``spec`` added (or replacing the same key)."""
        models = {**self.models, spec.key: spec}
        aliases = {**self.model_aliases, **{h.lower(): spec.key for h in spec.hf_ids}}
        return replace(
            self, models=MappingProxyType(models), model_aliases=MappingProxyType(aliases)
        )


def _model(key: str, entry: Mapping[str, object]) -> ModelSpec:
    try:
        return ModelSpec.from_hf_config(entry, key=key)
    except ValueError as exc:
        raise ValueError(f"models.yaml: model {key!r}: {exc}") from None


def _resolve(name: str, table: Mapping[str, object], aliases: Mapping[str, str], what: str) -> str:
    for candidate in (name, name.lower()):
        if candidate in table:
            return candidate
    target = aliases.get(name.lower())
    if target is not None:
        return target
    raise KeyError(f"unknown {what} {name!r}; known: {', '.join(sorted(table))}")


def _read_yaml(path: Path | None, package_file: str) -> dict[str, object]:
    if path is None:
        text = (resources.files(_PACKAGE) / "data" / package_file).read_text(encoding="utf-8")
        source = package_file
    else:
        text = path.read_text(encoding="utf-8")
        source = str(path)
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict):
        raise ValueError(f"{source}: expected a mapping at top level")
    return doc


def _section(doc: Mapping[str, object], name: str) -> dict[str, Mapping[str, object]]:
    section = doc.get(name)
    if not isinstance(section, dict):
        raise ValueError(f"catalog file lacks a {name!r} mapping")
    entries: dict[str, Mapping[str, object]] = {}
    for key, entry in section.items():
        if not isinstance(entry, dict):
            raise ValueError(f"{name}: entry {key!r} must be a mapping")
        entries[str(key)] = entry
    return entries
