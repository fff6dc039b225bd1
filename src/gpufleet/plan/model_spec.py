"""A decoder-only transformer as its Hugging Face ``config.json`` describes it.

Contract: a `ModelSpec` holds only the config fields; every figure the planner
and the engine model use (parameters, weight bytes, KV bytes per token, per-GPU
shares under tensor parallelism) is derived here, as a pure function of them.

Parameter count (all catalog models use a gated SwiGLU MLP and RMSNorm):

- embedding: ``vocab × hidden``; ``lm_head`` the same again unless
  ``tie_word_embeddings``;
- per layer, attention: q ``hidden × heads·head_dim``, k and v
  ``hidden × kv_heads·head_dim`` each, o ``heads·head_dim × hidden``, plus q/k/v
  biases when ``attention_bias`` (the o-projection bias, which no catalog model
  has, is ignored);
- per layer, MLP: ``3 × hidden × intermediate`` (gate, up, down) per expert,
  times ``num_local_experts``; a router ``hidden × num_local_experts`` when the
  model is a mixture of experts;
- per layer two norm weights (``2 × hidden``), plus one final norm.

Active parameters (what one token touches) count ``num_experts_per_tok``
experts instead of all of them. A dense model is one expert, top-1.

Tensor parallelism (TP) shards q/o heads, the MLP intermediate dimension of
every expert and the vocabulary; KV heads are split ``kv_heads / TP`` per GPU
and replicated (one per GPU) when ``kv_heads < TP``; norms and the router are
replicated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

BYTES_PER_VALUE: Mapping[str, int] = MappingProxyType(
    {
        "bfloat16": 2,
        "float16": 2,
        "half": 2,
        "float32": 4,
        "float": 4,
        "float8": 1,
        "fp8": 1,
        "int8": 1,
    }
)
"""Bytes per stored value for the dtype names HF configs and vLLM use."""


def bytes_per_value(dtype: str) -> int:
    """Bytes per value of a dtype name; raises ValueError for an unknown one."""
    try:
        return BYTES_PER_VALUE[dtype.lower()]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; known: {sorted(BYTES_PER_VALUE)}") from None


@dataclass(frozen=True)
class ModelSpec:
    """Architecture fields of one model, named as in HF ``config.json``.

    Invariants (checked on construction, ValueError otherwise): all sizes are
    positive, ``num_attention_heads`` is a multiple of ``num_key_value_heads``,
    ``1 <= num_experts_per_tok <= num_local_experts`` and the dtype is known.
    """

    key: str
    num_hidden_layers: int
    hidden_size: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    num_local_experts: int = 1
    num_experts_per_tok: int = 1
    dtype: str = "bfloat16"
    tie_word_embeddings: bool = False
    attention_bias: bool = False
    max_position_embeddings: int = 4096
    model_type: str = "llama"
    hf_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        sizes = {
            "num_hidden_layers": self.num_hidden_layers,
            "hidden_size": self.hidden_size,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "intermediate_size": self.intermediate_size,
            "vocab_size": self.vocab_size,
            "num_local_experts": self.num_local_experts,
            "num_experts_per_tok": self.num_experts_per_tok,
            "max_position_embeddings": self.max_position_embeddings,
        }
        for name, value in sizes.items():
            if value <= 0:
                raise ValueError(f"{self.key}: {name} must be positive, got {value}")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(f"{self.key}: attention heads not a multiple of KV heads")
        if self.num_experts_per_tok > self.num_local_experts:
            raise ValueError(f"{self.key}: num_experts_per_tok exceeds num_local_experts")
        bytes_per_value(self.dtype)

    # -- construction ---------------------------------------------------------

    @classmethod
    def from_hf_config(
        cls, config: Mapping[str, object] | str | Path, key: str | None = None
    ) -> ModelSpec:
        """Build a spec from a ``config.json`` mapping or a path to one.

        Reads the HF field names listed on the class; ``head_dim`` defaults to
        ``hidden_size / num_attention_heads``, ``num_key_value_heads`` to the
        attention heads, the dtype to ``dtype`` or the older ``torch_dtype``,
        experts to ``num_local_experts`` (Mixtral) or ``num_experts``. A
        multimodal config's ``text_config`` is used when the top level has no
        layers. Qwen2 configs imply ``attention_bias``. ``key`` defaults to a
        kebab-case form of ``_name_or_path`` (or the file's directory name).
        """
        path_key: str | None = None
        if isinstance(config, str | Path):
            path = Path(config)
            path_key = path.parent.name or None
            loaded = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(loaded, dict):
                raise ValueError(f"{path}: config.json must hold a JSON object")
            config = loaded
        text_config = config.get("text_config")
        if "num_hidden_layers" not in config and isinstance(text_config, Mapping):
            config = text_config
        name_or_path = config.get("_name_or_path")
        if key is None:
            raw = name_or_path if isinstance(name_or_path, str) and name_or_path else path_key
            key = _kebab(raw.rsplit("/", 1)[-1]) if raw else "custom-model"
        hidden = _int(config, "hidden_size")
        heads = _int(config, "num_attention_heads")
        model_type = _str(config, "model_type", "llama")
        experts = _int(config, "num_local_experts", _int(config, "num_experts", 1))
        hf_ids = config.get("hf_ids", ())
        return cls(
            key=key,
            num_hidden_layers=_int(config, "num_hidden_layers"),
            hidden_size=hidden,
            num_attention_heads=heads,
            num_key_value_heads=_int(config, "num_key_value_heads", heads),
            head_dim=_int(config, "head_dim", hidden // heads),
            intermediate_size=_int(config, "intermediate_size"),
            vocab_size=_int(config, "vocab_size"),
            num_local_experts=experts,
            num_experts_per_tok=_int(config, "num_experts_per_tok", 1) if experts > 1 else 1,
            dtype=_str(config, "dtype", _str(config, "torch_dtype", "bfloat16")),
            tie_word_embeddings=_bool(config, "tie_word_embeddings", False),
            attention_bias=_bool(config, "attention_bias", model_type.startswith("qwen2")),
            max_position_embeddings=_int(config, "max_position_embeddings", 4096),
            model_type=model_type,
            hf_ids=tuple(str(h) for h in hf_ids) if isinstance(hf_ids, list | tuple) else (),
        )

    # -- whole model ----------------------------------------------------------

    @property
    def is_moe(self) -> bool:
        """True when the MLP is a mixture of more than one expert."""
        return self.num_local_experts > 1

    @property
    def bytes_per_param(self) -> int:
        """Bytes per weight in the config's dtype."""
        return bytes_per_value(self.dtype)

    @property
    def num_params(self) -> int:
        """Total parameters (all experts)."""
        return self.num_params_per_gpu(1)

    @property
    def num_active_params(self) -> int:
        """Parameters one token touches (``num_experts_per_tok`` experts)."""
        return self.num_active_params_per_gpu(1)

    def weight_bytes(self, bytes_per_param: float | None = None) -> int:
        """Bytes of all weights; ``bytes_per_param`` overrides the dtype (e.g. 1 for FP8)."""
        return self.weight_bytes_per_gpu(1, bytes_per_param)

    def kv_bytes_per_token(self, kv_bytes_per_value: int | None = None) -> int:
        """KV-cache bytes one token occupies on all GPUs together without replication:
        ``2 (K and V) × layers × kv_heads × head_dim × bytes``."""
        return self.kv_bytes_per_token_per_gpu(1, kv_bytes_per_value)

    # -- per GPU under tensor parallelism -------------------------------------

    def check_tensor_parallel(self, tp: int) -> None:
        """Raise ValueError unless ``tp`` divides the attention heads and either
        divides the KV heads or is a multiple of them (vLLM's rule)."""
        if tp <= 0:
            raise ValueError(f"tensor parallel size must be positive, got {tp}")
        kv_heads = self.num_key_value_heads
        if self.num_attention_heads % tp or (kv_heads % tp and tp % kv_heads):
            raise ValueError(
                f"{self.key}: TP {tp} does not divide {self.num_attention_heads} heads"
                f" / {kv_heads} KV heads"
            )

    def num_kv_heads_per_gpu(self, tp: int) -> int:
        """KV heads each GPU stores: ``kv_heads / tp``, at least one (replicated)."""
        self.check_tensor_parallel(tp)
        return max(1, self.num_key_value_heads // tp)

    def kv_bytes_per_token_per_gpu(self, tp: int, kv_bytes_per_value: int | None = None) -> int:
        """KV-cache bytes one token occupies on each GPU of a TP group."""
        value_bytes = self.bytes_per_param if kv_bytes_per_value is None else kv_bytes_per_value
        kv_heads = self.num_kv_heads_per_gpu(tp)
        return 2 * self.num_hidden_layers * kv_heads * self.head_dim * value_bytes

    def num_params_per_gpu(self, tp: int) -> int:
        """Parameters each GPU of a TP group holds (all experts)."""
        return self._params_per_gpu(tp, self.num_local_experts)

    def num_active_params_per_gpu(self, tp: int) -> int:
        """Parameters each GPU touches per token (``num_experts_per_tok`` experts)."""
        return self._params_per_gpu(tp, self.num_experts_per_tok)

    def weight_bytes_per_gpu(self, tp: int, bytes_per_param: float | None = None) -> int:
        """Weight bytes each GPU of a TP group holds."""
        per_param = self.bytes_per_param if bytes_per_param is None else bytes_per_param
        return round(self.num_params_per_gpu(tp) * per_param)

    def expert_params_per_gpu(self, tp: int) -> int:
        """MLP parameters of one expert, all layers, on one GPU of a TP group."""
        self.check_tensor_parallel(tp)
        return self.num_hidden_layers * 3 * self.hidden_size * _ceil_div(self.intermediate_size, tp)

    def _params_per_gpu(self, tp: int, num_experts: int) -> int:
        self.check_tensor_parallel(tp)
        hidden, head_dim = self.hidden_size, self.head_dim
        q_heads = self.num_attention_heads // tp
        kv_heads = self.num_kv_heads_per_gpu(tp)
        attention = hidden * head_dim * (2 * q_heads + 2 * kv_heads)
        if self.attention_bias:
            attention += head_dim * (q_heads + 2 * kv_heads)
        router = hidden * self.num_local_experts if self.is_moe else 0
        norms = 2 * hidden
        per_layer = attention + router + norms
        experts = num_experts * self.expert_params_per_gpu(tp)
        vocab_shard = _ceil_div(self.vocab_size, tp) * hidden
        embeddings = vocab_shard if self.tie_word_embeddings else 2 * vocab_shard
        return self.num_hidden_layers * per_layer + experts + embeddings + hidden


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _kebab(name: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", name.lower()).strip("-") or "custom-model"


def _int(config: Mapping[str, object], name: str, default: int | None = None) -> int:
    value = config.get(name)
    if value is None:
        if default is None:
            raise ValueError(f"config.json lacks required field {name!r}")
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"config.json field {name!r} must be an integer, got {value!r}")
    return value


def _str(config: Mapping[str, object], name: str, default: str) -> str:
    value = config.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ValueError(f"config.json field {name!r} must be a string, got {value!r}")
    return value


def _bool(config: Mapping[str, object], name: str, default: bool) -> bool:
    value = config.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ValueError(f"config.json field {name!r} must be a boolean, got {value!r}")
    return value
