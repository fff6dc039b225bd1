"""Multi-turn chats over a few long shared system prompts. Pure.

``num_users`` users hold conversations. Each user is tied to one of
``num_system_prompts`` system prompts (user ``u`` to prompt ``u mod K``), so
many sessions share a long prefix — what prefix caching and prefix-aware
routing exploit. Arrivals come from the arrival process and are handed to the
users in round-robin order (user ``i mod N`` takes arrival ``i``), so one
user's consecutive turns are ``N`` arrivals apart.

A turn sends ``[system, *history, user message]`` with the conversation's
session id, then appends the exchange to the history: the user message and an
assistant reply. The workload is fixed in advance (reproducible, open-loop),
so the reply in the history is synthetic text of the turn's output length, not
what the server answered. A conversation ends after
``turns_per_conversation`` turns, or earlier when the next turn's prompt
would exceed ``max_prompt_tokens``; the user then starts a new one (new
session id, empty history, same system prompt and traffic class).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

from gpufleet.workload import arrivals as arrivals_module
from gpufleet.workload import lengths as lengths_module
from gpufleet.workload.arrivals import ArrivalProcess
from gpufleet.workload.lengths import Fixed, LengthDistribution
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

_USER_TOKENS = Fixed(64)
_OUTPUT_TOKENS = Fixed(128)


@dataclass(slots=True)
class _User:
    system: Message
    traffic: TrafficClass
    conversation: int = 0
    turn: int = 0
    history: list[Message] = field(default_factory=list)
    num_history_tokens: int = 0


@dataclass(frozen=True)
class MultiTurnWorkload:
    """Shared-prefix multi-turn chats (module doc)."""

    arrivals: ArrivalProcess
    num_users: int = 16
    num_system_prompts: int = 4
    system_prompt_tokens: int = 1024
    turns_per_conversation: int = 5
    user_tokens: LengthDistribution = _USER_TOKENS
    output_tokens: LengthDistribution = _OUTPUT_TOKENS
    max_prompt_tokens: int = 8192
    classes: tuple[TrafficClass, ...] = DEFAULT_CLASSES

    def __post_init__(self) -> None:
        if self.num_users < 1 or self.num_system_prompts < 1 or self.turns_per_conversation < 1:
            raise ValueError("users, system prompts and turns per conversation must be ≥ 1")
        if not 0 <= self.system_prompt_tokens < self.max_prompt_tokens:
            raise ValueError("system prompt tokens must be ≥ 0 and < max prompt tokens")

    def requests(self, seed: int, start_s: float = 0.0) -> Iterator[RequestSpec]:
        times, picks = stream_rng(seed, "arrivals"), stream_rng(seed, "classes")
        sizes, words = stream_rng(seed, "lengths"), stream_rng(seed, "text")
        systems = [
            Message(
                "system", f"System prompt {k}. " + synthetic_text(self.system_prompt_tokens, words)
            )
            for k in range(self.num_system_prompts)
        ]
        users = [
            _User(systems[u % len(systems)], pick_class(self.classes, picks))
            for u in range(self.num_users)
        ]
        now = start_s
        index = 0
        while True:
            now = self.arrivals.next_arrival_s(now, times)
            if math.isinf(now):
                return
            user_number = index % self.num_users
            user = users[user_number]
            user_tokens = self.user_tokens.sample(sizes)
            max_tokens = self.output_tokens.sample(sizes)
            system_tokens = estimate_tokens(user.system.content)
            num_prompt_tokens = system_tokens + user.num_history_tokens + user_tokens
            if user.turn and (
                user.turn >= self.turns_per_conversation
                or num_prompt_tokens > self.max_prompt_tokens
            ):
                user.conversation += 1
                user.turn = user.num_history_tokens = 0
                user.history = []
                num_prompt_tokens = system_tokens + user_tokens
            message = Message("user", synthetic_text(user_tokens, words))
            yield labelled(
                index,
                now,
                (user.system, *user.history, message),
                num_prompt_tokens,
                max_tokens,
                user.traffic,
                session_id=f"s{seed}-u{user_number}-c{user.conversation}",
            )
            user.history += [message, Message("assistant", synthetic_text(max_tokens, words))]
            user.num_history_tokens += user_tokens + max_tokens
            user.turn += 1
            index += 1

    def describe(self) -> dict[str, object]:
        return {
            "kind": "multi-turn",
            "arrivals": arrivals_module.describe(self.arrivals),
            "num_users": self.num_users,
            "num_system_prompts": self.num_system_prompts,
            "system_prompt_tokens": self.system_prompt_tokens,
            "turns_per_conversation": self.turns_per_conversation,
            "user_tokens": lengths_module.describe(self.user_tokens),
            "output_tokens": lengths_module.describe(self.output_tokens),
            "max_prompt_tokens": self.max_prompt_tokens,
            "classes": [c.name for c in self.classes],
        }
