"""One simulated vLLM replica, stepped in (virtual or wall) time by its caller.

Contract: `EngineModel` is the public face of the engine model — it validates
and registers requests, runs steps (the algorithm is in `scheduler`, timing
by the `LatencyModel` it is given) and hands out immutable snapshots
(`StepResult`, `RequestProgress`, `EngineStats`). It is pure: no I/O, no
clock; ``now_s`` is an argument. Not thread-safe; the owner serialises calls.

Typical loop::

    engine = EngineModel(EngineConfig.from_kv_pool(pool), RooflineLatency(model, gpu, tp))
    engine.add_request(EngineRequest("r1", token_ids, max_tokens=128))
    now_s = 0.0
    while engine.has_work:
        result = engine.step(now_s)
        now_s = result.end_s

Decode runs (`start_decode_run` / `settle`, algorithm in `decode_run`) advance
many decode-only steps in one call with the same outcome as stepping them one
at a time; while a run is planned and not settled, the other calls refuse
(RuntimeError), so nobody observes a half-applied engine.
"""

from __future__ import annotations

from gpufleet.engine import decode_run
from gpufleet.engine.config import EngineConfig
from gpufleet.engine.latency import LatencyModel
from gpufleet.engine.request import EngineRequest
from gpufleet.engine.scheduler import Scheduler
from gpufleet.engine.sequence import SequenceState
from gpufleet.engine.stats import EngineStats, RequestProgress
from gpufleet.engine.step_result import StepResult


class EngineModel:
    """A replica's waiting/running queues, paged KV cache and step timing."""

    def __init__(self, config: EngineConfig, latency: LatencyModel) -> None:
        self.config = config
        self._scheduler = Scheduler(config, latency)
        self._seqs: dict[str, SequenceState] = {}
        self._num_aborted = 0
        self._decode_latency: decode_run.DecodeLatency | None = (
            latency if hasattr(latency, "decode_terms") else None  # type: ignore[assignment]
        )
        self._run: decode_run.DecodePlan | None = None

    def add_request(self, request: EngineRequest) -> None:
        """Queue a request at the back of ``waiting``.

        ValueError if the id is live already, if prompt + max_tokens exceeds
        ``max_model_len`` (vLLM answers 400), or if it names a LoRA adapter on
        an engine without LoRA."""
        self._check_settled()
        if request.request_id in self._seqs:
            raise ValueError(f"request {request.request_id!r} is already in the engine")
        total = request.num_prompt_tokens + request.max_tokens
        if total > self.config.max_model_len:
            raise ValueError(
                f"prompt ({request.num_prompt_tokens}) + max_tokens ({request.max_tokens})"
                f" exceeds max_model_len={self.config.max_model_len}"
            )
        if request.lora is not None and self.config.max_loras == 0:
            raise ValueError(f"request {request.request_id!r} needs LoRA; max_loras is 0")
        seq = SequenceState(request)
        self._seqs[request.request_id] = seq
        self._scheduler.add(seq)

    def abort(self, request_id: str) -> bool:
        """Drop a live request and free its blocks; False if it is not live."""
        self._check_settled()
        seq = self._seqs.pop(request_id, None)
        if seq is None:
            return False
        self._scheduler.remove(seq)
        self._num_aborted += 1
        return True

    def step(self, now_s: float) -> StepResult:
        """Schedule and execute one step starting at ``now_s`` (see `scheduler`)."""
        self._check_settled()
        result = self._scheduler.step(now_s)
        if result.finished_ids:
            seqs = self._seqs
            for request_id in result.finished_ids:
                del seqs[request_id]
        return result

    def start_decode_run(self, now_s: float, max_steps: int = 4096) -> float | None:
        """Plan up to ``max_steps`` decode-only steps from ``now_s``, through the first
        step in which a request finishes; returns when the last planned step ends, or
        None when the next step is not a plain decode of the whole batch (call `step`).
        Nothing is applied until `settle`."""
        self._check_settled()
        latency = self._decode_latency
        if latency is None:
            return None
        run = decode_run.plan(self._scheduler, latency, now_s, max_steps)
        if run is None:
            return None
        self._run = run
        return run.end_s

    def settle(self, now_s: float) -> tuple[float, tuple[str, ...]]:
        """Apply the planned steps that start at or before ``now_s`` and drop the rest
        of the plan; returns (when the last applied step ends, ids that finished in it).
        The caller's next `step` or run starts at that end time."""
        run = self._run
        if run is None:
            raise RuntimeError("no decode run to settle")
        self._run = None
        num_steps, finished = decode_run.settle(self._scheduler, run, now_s)
        if finished:
            seqs = self._seqs
            for request_id in finished:
                del seqs[request_id]
        return run.end_of(num_steps), tuple(finished)

    def decode_run_plan(self) -> tuple[list[str], list[float]]:
        """The planned run's request ids (every one advances one token a step) and its
        step start times."""
        run = self._run
        if run is None:
            raise RuntimeError("no decode run")
        return [seq.request_id for seq in run.running], list(run.starts)

    def last_step_start_s(self, now_s: float) -> float:
        """Start of the last planned step that starts at or before ``now_s``."""
        run = self._run
        if run is None:
            raise RuntimeError("no decode run")
        return run.starts[max(0, run.num_started(now_s) - 1)]

    @property
    def in_decode_run(self) -> bool:
        """True between `start_decode_run` and `settle`."""
        return self._run is not None

    def _check_settled(self) -> None:
        if self._run is not None:
            raise RuntimeError("a decode run is planned: settle it first")

    @property
    def load(self) -> tuple[int, int, float]:
        """``(num_waiting, num_running, kv_cache_usage_perc)``: the scraped gauges of
        `stats`, without building the whole snapshot."""
        self._check_settled()
        s = self._scheduler
        return len(s.waiting), len(s.running), s.pool.usage

    def load_at(self, now_s: float) -> tuple[int, int, float] | None:
        """`load` as it is at ``now_s`` in the middle of a decode run, without settling it
        (the blocks allocated by the steps started by then are counted); None when the
        step in progress finishes requests (settle first: its frees are not counted here)."""
        run = self._run
        if run is None:
            return self.load
        s = self._scheduler
        num_steps = run.num_started(now_s)
        if num_steps >= len(run.starts) and run.finishes:
            return None
        pool = s.pool
        num_free = pool.num_free_blocks - run.num_allocated(num_steps, self.config.block_size)
        return len(s.waiting), len(s.running), 1.0 - num_free / (pool.num_gpu_blocks - 1)

    @property
    def has_work(self) -> bool:
        """True while any request is waiting or running."""
        return bool(self._scheduler.waiting or self._scheduler.running)

    def request_progress(self, request_id: str) -> RequestProgress | None:
        """Snapshot of a live request, None once finished, aborted or unknown."""
        self._check_settled()
        seq = self._seqs.get(request_id)
        if seq is None:
            return None
        return RequestProgress(
            request_id=seq.request_id,
            status=seq.status,
            num_prompt_tokens=seq.num_prompt_tokens,
            num_computed_tokens=seq.num_computed_tokens,
            num_output_tokens=seq.num_output_tokens,
            max_tokens=seq.max_tokens,
            num_cached_prompt_tokens=seq.num_cached_prompt_tokens,
            num_preemptions=seq.num_preemptions,
            num_blocks=seq.num_blocks,
            lora=seq.lora,
        )

    @property
    def stats(self) -> EngineStats:
        """Snapshot of gauges and counters (O(waiting) only when LoRA is enabled)."""
        self._check_settled()
        s = self._scheduler
        pool = s.pool
        waiting_loras: tuple[str, ...] = ()
        if self.config.max_loras:
            waiting_loras = tuple(sorted({q.lora for q in s.waiting if q.lora is not None}))
        return EngineStats(
            num_waiting=len(s.waiting),
            num_running=len(s.running),
            num_gpu_blocks=self.config.num_gpu_blocks,
            block_size=self.config.block_size,
            num_free_blocks=pool.num_free_blocks,
            kv_cache_usage_perc=pool.usage,
            prefix_cache_queries_tokens=s.prefix_queries,
            prefix_cache_hits_tokens=s.prefix_hits,
            preempted_prefix_cache_queries_tokens=s.preempted_prefix_queries,
            preempted_prefix_cache_hits_tokens=s.preempted_prefix_hits,
            num_preemptions=s.num_preemptions,
            num_prompt_tokens_total=s.num_prompt_tokens,
            num_generation_tokens_total=s.num_generation_tokens,
            num_requests_finished=s.num_finished,
            num_requests_aborted=self._num_aborted,
            num_steps=s.num_steps,
            max_loras=self.config.max_loras,
            running_lora_adapters=tuple(sorted(s.lora.running_adapters())),
            waiting_lora_adapters=waiting_loras,
        )
