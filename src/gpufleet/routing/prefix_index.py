"""An approximate, memory-bounded index of which replica has which prompt prefix cached.

Prompt text (chat messages rendered canonically) is cut into fixed-size
character blocks; block i's key is hash(key of block i−1, block text), the
chain seeded by model and adapter — so equal keys mean equal prefixes, as in
vLLM's block hashing. Each replica has an LRU of keys with a bounded number of
entries (sized from its KV capacity when known), so memory is bounded no
matter how many distinct prompts pass. A replica's match for a prompt is the
longest run of consecutive leading blocks present in its LRU.

Correction: when an engine reports (``cached_tokens``) fewer cached tokens
than the index predicted, the replica's cache churns faster than its LRU
capacity assumes: the stale entries of that prompt are dropped and the
replica's capacity estimate shrinks (it grows back slowly on confirmed hits).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

CHARS_PER_TOKEN = 4


def prefix_hashes(text: str, seed: str, block_chars: int, max_blocks: int) -> tuple[int, ...]:
    """Chained hashes of the full ``block_chars`` blocks of ``text`` (at most ``max_blocks``)."""
    num_blocks = min(len(text) // block_chars, max_blocks)
    key = hash(seed)
    keys = []
    for i in range(num_blocks):
        key = hash((key, text[i * block_chars : (i + 1) * block_chars]))
        keys.append(key)
    return tuple(keys)


@dataclass
class ReplicaPrefixes:
    capacity: int
    entries: OrderedDict[int, None] = field(default_factory=OrderedDict)

    def match(self, keys: Sequence[int]) -> int:
        entries = self.entries
        count = 0
        for key in keys:
            if key not in entries:
                break
            count += 1
        return count

    def insert(self, keys: Sequence[int]) -> None:
        entries = self.entries
        for key in keys:
            if key in entries:
                entries.move_to_end(key)
            else:
                entries[key] = None
        while len(entries) > self.capacity:
            entries.popitem(last=False)


@dataclass
class PrefixIndex:
    """Per-replica LRUs of prefix-block keys. Pure: no I/O, no clock."""

    default_capacity: int = 16384
    min_capacity: int = 256
    replicas: dict[str, ReplicaPrefixes] = field(default_factory=dict)

    def match(self, replica_id: str, keys: Sequence[int]) -> int:
        """Number of leading blocks of ``keys`` the replica is believed to have cached."""
        replica = self.replicas.get(replica_id)
        return replica.match(keys) if replica is not None and keys else 0

    def record_dispatch(self, replica_id: str, keys: Sequence[int], capacity: int | None) -> None:
        """The replica will cache these blocks: insert them (most recent last)."""
        replica = self._replica(replica_id, capacity)
        replica.insert(keys)

    def record_cached(
        self, replica_id: str, keys: Sequence[int], predicted_blocks: int, cached_blocks: int
    ) -> None:
        """Apply the engine's report of how many leading blocks were really cached."""
        replica = self.replicas.get(replica_id)
        if replica is None:
            return
        if cached_blocks < predicted_blocks:
            for key in keys[cached_blocks:predicted_blocks]:
                replica.entries.pop(key, None)
            replica.capacity = max(self.min_capacity, int(replica.capacity * 0.9))
        elif predicted_blocks and replica.capacity < self.default_capacity * 4:
            replica.capacity += 1

    def forget(self, replica_id: str) -> None:
        self.replicas.pop(replica_id, None)

    def num_entries(self) -> int:
        return sum(len(r.entries) for r in self.replicas.values())

    def _replica(self, replica_id: str, capacity: int | None) -> ReplicaPrefixes:
        replica = self.replicas.get(replica_id)
        if replica is None:
            replica = ReplicaPrefixes(max(self.min_capacity, capacity or self.default_capacity))
            self.replicas[replica_id] = replica
        return replica
