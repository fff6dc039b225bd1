"""Workload definitions: reproducible streams of request specs, shared by ``gpufleet bench``
(live) and the simulator (virtual time).

Pure code: no I/O (except the trace readers in `gpufleet.workload.traces`), no
clock — times are arguments and every random draw comes from a
``random.Random`` seeded from the caller's seed. A workload is a frozen
config with ``requests(seed, start_s) -> Iterator[RequestSpec]``:

- `SyntheticWorkload`: single-turn prompts with fixed/uniform/log-normal lengths;
- `MultiTurnWorkload`: users in conversations over a few shared system prompts;
- `TraceReplayWorkload`: an Azure LLM inference trace at its own times;
- `ConversationWorkload`: ShareGPT-style conversations, single- or multi-turn.

Arrival processes (`Poisson`, `Gamma`, `Diurnal`, `Step`) and length
distributions (`Fixed`, `Uniform`, `LogNormal`) are stateless values;
`TrafficClass` mixes models, tenants and priorities by weight.
"""

from gpufleet.workload.arrivals import ArrivalProcess, Diurnal, Gamma, Poisson, Step
from gpufleet.workload.lengths import Fixed, LengthDistribution, LogNormal, Uniform, parse_length
from gpufleet.workload.multi_turn import MultiTurnWorkload
from gpufleet.workload.replay import ConversationWorkload, TraceReplayWorkload
from gpufleet.workload.spec import Message, RequestSpec, TrafficClass, Workload
from gpufleet.workload.synthetic import SyntheticWorkload
from gpufleet.workload.text import estimate_tokens, synthetic_text
from gpufleet.workload.traces import Conversation, TraceError, TraceRecord

__all__ = [
    "ArrivalProcess",
    "Conversation",
    "ConversationWorkload",
    "Diurnal",
    "Fixed",
    "Gamma",
    "LengthDistribution",
    "LogNormal",
    "Message",
    "MultiTurnWorkload",
    "Poisson",
    "RequestSpec",
    "Step",
    "SyntheticWorkload",
    "TraceError",
    "TraceRecord",
    "TraceReplayWorkload",
    "TrafficClass",
    "Uniform",
    "Workload",
    "estimate_tokens",
    "parse_length",
    "synthetic_text",
]
