"""Assembles simulated replicas (engine model + driver + HTTP) and runs them.

The replica's KV pool is sized the way vLLM sizes it for the (model, GPU,
TP) deployment (``plan.memory.estimate_kv_pool``) and its steps are timed by
the roofline latency model; ``speed`` scales time (10 = ten times faster).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from gpufleet.api.server import HttpServer
from gpufleet.collector import settle_heap
from gpufleet.engine.config import EngineConfig, SpeculativeConfig
from gpufleet.engine.engine_model import EngineModel
from gpufleet.engine.latency import RooflineLatency
from gpufleet.engine.tokenizer import approx_token_ids
from gpufleet.errors import ConfigError
from gpufleet.plan.catalog import Catalog
from gpufleet.plan.memory import MemoryAssumptions, estimate_kv_pool
from gpufleet.replica.app import ReplicaApp, ReplicaIdentity
from gpufleet.replica.driver import EngineDriver
from gpufleet.replica.faults import Faults
from gpufleet.replica.metrics import EngineCounters, ReplicaMetrics

MAX_BODY_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class ReplicaOptions:
    model: str
    gpu: str
    tp: int = 1
    speed: float = 1.0
    served_model_names: tuple[str, ...] = ()
    max_model_len: int | None = None
    gpu_memory_utilization: float = 0.9
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    lora_modules: tuple[str, ...] = ()
    max_loras: int = 4
    speculative_k: int = 0
    speculative_alpha: float = 0.7
    stream_interval: int = 1
    faults: Faults = field(default_factory=Faults)


def build_replica(options: ReplicaOptions) -> tuple[ReplicaApp, EngineDriver]:
    catalog = Catalog.load()
    try:
        model = catalog.model(options.model)
        gpu = catalog.gpu(options.gpu)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0] if exc.args else exc)) from None
    assumptions = MemoryAssumptions(
        gpu_memory_utilization=options.gpu_memory_utilization,
        max_model_len=options.max_model_len,
        max_num_seqs=options.max_num_seqs,
        max_num_batched_tokens=options.max_num_batched_tokens,
    )
    pool = estimate_kv_pool(model, gpu, options.tp, assumptions)
    if not pool.fits:
        raise ConfigError(f"{model.key} on {options.tp}× {gpu.key} does not fit: {pool.reason}")
    speculative = (
        SpeculativeConfig(options.speculative_k, options.speculative_alpha)
        if options.speculative_k
        else None
    )
    config = EngineConfig.from_kv_pool(
        pool,
        max_loras=options.max_loras if options.lora_modules else 0,
        speculative=speculative,
    )
    engine = EngineModel(config, RooflineLatency(model, gpu, options.tp))
    vocab_size = model.vocab_size
    driver = EngineDriver(
        engine, lambda text: approx_token_ids(text, model.key, vocab_size), options.speed
    )
    names = options.served_model_names or (options.model,)
    identity = ReplicaIdentity(names, config.max_model_len, model.key, options.lora_modules)

    def counters() -> EngineCounters:
        driver.settle()  # a decode run being ridden is applied up to now
        s = engine.stats
        return EngineCounters(
            num_running=s.num_running,
            num_waiting=s.num_waiting,
            kv_cache_usage_perc=s.kv_cache_usage_perc,
            num_gpu_blocks=s.num_gpu_blocks,
            block_size=s.block_size,
            prefix_cache_queries=s.prefix_cache_queries_tokens,
            prefix_cache_hits=s.prefix_cache_hits_tokens,
            num_preemptions=s.num_preemptions,
            prompt_tokens=s.num_prompt_tokens_total,
            generation_tokens=s.num_generation_tokens_total,
            finished={"length": s.num_requests_finished, "abort": s.num_requests_aborted},
            running_loras=s.running_lora_adapters,
            waiting_loras=s.waiting_lora_adapters,
            max_loras=s.max_loras,
        )

    app = ReplicaApp(
        identity,
        driver,
        ReplicaMetrics(names[0], counters),
        options.faults,
        stream_interval=options.stream_interval,
    )
    return app, driver


async def serve_replicas(options: ReplicaOptions, host: str, ports: Sequence[int]) -> None:
    """Serve one replica per port, all in this process: each has its own engine model,
    KV cache, HTTP server and ``/metrics``; they share the event loop (and the fault
    options: ``--die-after-tokens`` stops the whole process)."""
    loop = asyncio.get_running_loop()
    servers: list[HttpServer] = []
    runners: list[asyncio.Task[None]] = []
    for port in ports:
        app, driver = build_replica(options)
        server = HttpServer(app, MAX_BODY_BYTES, app.on_handler_error)
        bound = await server.start(host, port)
        servers.append(server)
        runners.append(loop.create_task(driver.run()))
        print(
            f"gpufleet engine {options.model} on {options.tp}x {options.gpu} "
            f"(speed {options.speed:g}x) listening on http://{host}:{bound}",
            file=sys.stderr,
            flush=True,
        )
    settle_heap()  # the engines' start-up state out of the collector's sight
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.stop_accepting()
        server.close_all()
    for runner in runners:
        runner.cancel()
