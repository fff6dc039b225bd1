"""Trace files: Azure LLM inference CSV and ShareGPT JSON, parsed and replayed."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from gpufleet.workload import (
    ConversationWorkload,
    Poisson,
    TraceError,
    TraceReplayWorkload,
    estimate_tokens,
)
from gpufleet.workload.traces import (
    load_azure_csv,
    load_sharegpt_json,
    parse_azure_csv,
    parse_sharegpt_json,
)

AZURE = """TIMESTAMP,ContextTokens,GeneratedTokens
2023-11-16 18:15:46.6805900,374,44
2023-11-16 18:15:50.9951690,396,109
2023-11-16 18:15:47.1805900,879,0
"""

SHAREGPT = """[
  {"id": "a", "conversations": [
    {"from": "human", "value": "What is a GPU?"},
    {"from": "gpt", "value": "A graphics processing unit, used for parallel work."},
    {"from": "human", "value": "And a TPU?"},
    {"from": "gpt", "value": "A tensor processing unit."}]},
  {"id": "b", "conversations": [
    {"from": "system", "value": "Be brief."},
    {"from": "human", "value": "Hi"}]},
  {"id": "c", "conversations": []}
]"""


def test_azure_csv_records_sorted_relative_to_the_first() -> None:
    records = parse_azure_csv(AZURE)
    assert [(r.num_prompt_tokens, r.num_output_tokens) for r in records] == [
        (374, 44), (879, 0), (396, 109)
    ]  # fmt: skip
    assert [r.arrival_s for r in records] == pytest.approx([0.0, 0.5, 4.314579])


def test_azure_csv_errors_name_the_line() -> None:
    with pytest.raises(TraceError, match=r"t\.csv: line 3: expected"):
        parse_azure_csv(AZURE.replace("396", "many"), "t.csv")
    with pytest.raises(TraceError, match="missing column"):
        parse_azure_csv("time,a,b\n", "t.csv")
    with pytest.raises(TraceError, match="no records"):
        parse_azure_csv("TIMESTAMP,ContextTokens,GeneratedTokens\n", "t.csv")


def test_trace_replay_keeps_times_scaled_and_lengths() -> None:
    workload = TraceReplayWorkload(parse_azure_csv(AZURE), time_scale=2.0)
    specs = list(workload.requests(seed=0, start_s=10.0))
    assert [s.arrival_s for s in specs] == pytest.approx([10.0, 10.25, 12.1572895])
    assert [s.num_prompt_tokens for s in specs] == [374, 879, 396]
    assert [estimate_tokens(s.prompt) for s in specs] == [374, 879, 396]
    assert [s.max_tokens for s in specs] == [44, 1, 109], "at least one output token"
    assert workload.duration_s == pytest.approx(4.314579 / 2)


def test_sharegpt_parsing() -> None:
    conversations = parse_sharegpt_json(SHAREGPT)
    assert [c.id for c in conversations] == ["a", "b"], "empty conversations are skipped"
    assert [m.role for m in conversations[0].messages] == ["user", "assistant"] * 2
    assert conversations[1].messages[0].role == "system"
    with pytest.raises(TraceError, match="entry 0"):
        parse_sharegpt_json('[{"conversations": [{"from": "alien", "value": "x"}]}]')
    with pytest.raises(TraceError, match="invalid JSON"):
        parse_sharegpt_json("[{")


def test_sharegpt_first_turns_with_reply_lengths() -> None:
    workload = ConversationWorkload(
        parse_sharegpt_json(SHAREGPT), Poisson(5.0), max_output_tokens=7
    )
    specs = list(itertools.islice(workload.requests(seed=0), 6))
    by_first = {s.messages[-1].content: s for s in specs}
    assert set(by_first) == {"What is a GPU?", "Hi"}
    gpu = by_first["What is a GPU?"]
    assert len(gpu.messages) == 1 and gpu.session_id is None
    assert gpu.max_tokens == 7, "the reply's 13 tokens, capped"
    assert by_first["Hi"].max_tokens == 7, "no reply: the cap"
    assert [m.role for m in by_first["Hi"].messages] == ["system", "user"]


def test_sharegpt_whole_conversations_as_sessions() -> None:
    workload = ConversationWorkload(
        parse_sharegpt_json(SHAREGPT), Poisson(5.0), multi_turn=True, num_users=1
    )
    specs = list(itertools.islice(workload.requests(seed=0), 6))
    turns_of_a = [s for s in specs if s.messages[0].content == "What is a GPU?"]
    assert [len(s.messages) for s in turns_of_a[:2]] == [1, 3]
    assert turns_of_a[0].session_id == turns_of_a[1].session_id
    assert turns_of_a[1].max_tokens == estimate_tokens("A tensor processing unit.")
    assert len({s.session_id for s in specs}) == 4, "a, b, a, b (one user, in turn)"


def test_loaders_read_files_and_report_missing_ones(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text(AZURE)
    (tmp_path / "s.json").write_text(SHAREGPT)
    assert len(load_azure_csv(tmp_path / "t.csv")) == 3
    assert len(load_sharegpt_json(tmp_path / "s.json")) == 2
    with pytest.raises(TraceError, match="cannot read"):
        load_azure_csv(tmp_path / "missing.csv")
