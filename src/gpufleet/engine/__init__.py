"""The engine model: one vLLM-like replica stepped in time.

`EngineModel` mimics vLLM V1's scheduler (waiting/running queues, token
budget with chunked prefill, paged KV blocks with prefix caching, preemption
by recompute, LoRA slots, speculative decoding in expected value) and times
each step with a `LatencyModel` (`RooflineLatency` by default). It is pure:
no I/O, no clock; the simulator steps it on virtual time and the simulated
engine server on wall time. Runs of decode-only steps can be advanced in one
call (`EngineModel.start_decode_run` / `settle`, see `decode_run`) with the
same outcome as stepping them one at a time.
"""

from gpufleet.engine.config import EngineConfig, SpeculativeConfig
from gpufleet.engine.engine_model import EngineModel
from gpufleet.engine.latency import LatencyCoefficients, LatencyModel, RooflineLatency, StepShape
from gpufleet.engine.request import EngineRequest, PromptTokens, SyntheticPrompt
from gpufleet.engine.stats import EngineStats, RequestProgress
from gpufleet.engine.step_result import StepResult
from gpufleet.engine.synthetic_text import output_seed, synthetic_piece, synthetic_text
from gpufleet.engine.tokenizer import approx_num_tokens, approx_token_ids

__all__ = [
    "EngineConfig",
    "EngineModel",
    "EngineRequest",
    "EngineStats",
    "LatencyCoefficients",
    "LatencyModel",
    "PromptTokens",
    "RequestProgress",
    "RooflineLatency",
    "SpeculativeConfig",
    "StepResult",
    "StepShape",
    "SyntheticPrompt",
    "approx_num_tokens",
    "approx_token_ids",
    "output_seed",
    "synthetic_piece",
    "synthetic_text",
]
