"""Replaying recorded traffic: length traces (Azure) and conversation datasets (ShareGPT). Pure.

`TraceReplayWorkload` keeps a length trace's arrival times (divided by
``time_scale``: 2 replays twice as fast) and token counts, with synthetic
prompt text of each record's length; it ends with the trace.

`ConversationWorkload` sends real conversation text at the times of an
arrival process, cycling through the conversations in a seeded shuffled order.
A turn is a user message: the prompt is every message up to and including
it, and the output length asked for is the estimated length of the reply that
follows it in the dataset (`max_output_tokens` when there is none, and never
more). Single-turn (the default) sends each conversation's first turn, like
vLLM's ShareGPT benchmark; ``multi_turn`` replays whole conversations as
sessions, handed to ``num_users`` users in round-robin order as in
`MultiTurnWorkload` (the history holds the dataset's own replies).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from gpufleet.workload import arrivals as arrivals_module
from gpufleet.workload.arrivals import ArrivalProcess
from gpufleet.workload.spec import (
    DEFAULT_CLASSES,
    Message,
    RequestSpec,
    TrafficClass,
    labelled,
    pick_class,
    stream_rng,
)
from gpufleet.workload.text import estimate_tokens, synthetic_text
from gpufleet.workload.traces import Conversation, TraceRecord


@dataclass(frozen=True)
class TraceReplayWorkload:
    """A length trace replayed at its own times (module doc); token counts clamped to the
    ``max_*`` limits, outputs to at least 1."""

    records: Sequence[TraceRecord]
    time_scale: float = 1.0
    max_prompt_tokens: int = 1_000_000
    max_output_tokens: int = 1_000_000
    classes: tuple[TrafficClass, ...] = DEFAULT_CLASSES

    def __post_init__(self) -> None:
        if not (self.time_scale > 0 and math.isfinite(self.time_scale)):
            raise ValueError(f"time scale must be a positive number, got {self.time_scale}")

    @property
    def duration_s(self) -> float:
        """Seconds from the first to the last arrival, after scaling."""
        return (self.records[-1].arrival_s - self.records[0].arrival_s) / self.time_scale

    def requests(self, seed: int, start_s: float = 0.0) -> Iterator[RequestSpec]:
        picks, words = stream_rng(seed, "classes"), stream_rng(seed, "text")
        for index, record in enumerate(self.records):
            num_prompt_tokens = min(record.num_prompt_tokens, self.max_prompt_tokens)
            max_tokens = max(1, min(record.num_output_tokens, self.max_output_tokens))
            message = Message("user", synthetic_text(num_prompt_tokens, words))
            arrival_s = start_s + record.arrival_s / self.time_scale
            traffic = pick_class(self.classes, picks)
            yield labelled(index, arrival_s, (message,), num_prompt_tokens, max_tokens, traffic)

    def describe(self) -> dict[str, object]:
        return {
            "kind": "azure-trace",
            "num_records": len(self.records),
            "time_scale": self.time_scale,
            "duration_s": self.duration_s,
            "max_prompt_tokens": self.max_prompt_tokens,
            "max_output_tokens": self.max_output_tokens,
            "classes": [c.name for c in self.classes],
        }


@dataclass(slots=True)
class _Session:
    """A user's place in the dataset: the conversation (plan) and its next turn."""

    traffic: TrafficClass
    plan: int = -1
    turn: int = 0
    conversation: int = -1


@dataclass(frozen=True, slots=True)
class _Turn:
    num_messages: int  # the prompt is messages[:num_messages]
    num_prompt_tokens: int
    max_tokens: int


def _turns(conversation: Conversation, max_output_tokens: int) -> list[_Turn]:
    messages = conversation.messages
    turns = []
    for i, message in enumerate(messages):
        if message.role != "user":
            continue
        reply = messages[i + 1] if i + 1 < len(messages) else None
        wanted = estimate_tokens(reply.content) if reply and reply.role == "assistant" else 0
        max_tokens = min(wanted or max_output_tokens, max_output_tokens)
        prompt_tokens = sum(estimate_tokens(m.content) for m in messages[: i + 1])
        turns.append(_Turn(i + 1, prompt_tokens, max(1, max_tokens)))
    return turns


@dataclass(frozen=True)
class ConversationWorkload:
    """Conversation-dataset replay (module doc)."""

    conversations: Sequence[Conversation]
    arrivals: ArrivalProcess
    multi_turn: bool = False
    num_users: int = 16
    max_output_tokens: int = 1024
    classes: tuple[TrafficClass, ...] = DEFAULT_CLASSES

    def __post_init__(self) -> None:
        if self.num_users < 1 or self.max_output_tokens < 1:
            raise ValueError("users and max output tokens must be ≥ 1")
        if not any(m.role == "user" for c in self.conversations for m in c.messages):
            raise ValueError("no conversation has a user message")

    def requests(self, seed: int, start_s: float = 0.0) -> Iterator[RequestSpec]:
        times, picks = stream_rng(seed, "arrivals"), stream_rng(seed, "classes")
        order = list(range(len(self.conversations)))
        stream_rng(seed, "order").shuffle(order)
        plans = [(c, turns) for c in map(self.conversations.__getitem__, order)
                 if (turns := _turns(c, self.max_output_tokens))]  # fmt: skip
        num_users = self.num_users if self.multi_turn else 1
        users = [_Session(pick_class(self.classes, picks)) for _ in range(num_users)]
        next_plan = 0
        now = start_s
        index = 0
        while True:
            now = self.arrivals.next_arrival_s(now, times)
            if math.isinf(now):
                return
            number = index % num_users
            user = users[number]
            if user.plan < 0 or not self.multi_turn or user.turn >= len(plans[user.plan][1]):
                user.plan, user.turn = next_plan % len(plans), 0
                user.conversation += 1
                next_plan += 1
            source, turns = plans[user.plan]
            step = turns[user.turn]
            user.turn += 1
            yield labelled(
                index,
                now,
                source.messages[: step.num_messages],
                step.num_prompt_tokens,
                step.max_tokens,
                user.traffic if self.multi_turn else pick_class(self.classes, picks),
                session_id=f"s{seed}-u{number}-c{user.conversation}" if self.multi_turn else None,
            )
            index += 1

    def describe(self) -> dict[str, object]:
        return {
            "kind": "sharegpt",
            "arrivals": arrivals_module.describe(self.arrivals),
            "num_conversations": len(self.conversations),
            "multi_turn": self.multi_turn,
            "num_users": self.num_users,
            "max_output_tokens": self.max_output_tokens,
            "classes": [c.name for c in self.classes],
        }
