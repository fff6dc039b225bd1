"""``gpufleet bench``: a load generator for OpenAI-compatible endpoints (docs/bench.md).

Layers, each a small module: `options`/`arguments` (command line) → `command`
(runs, report, exit code) → `runner` (open/closed-loop dispatch) →
`connection` (keep-alive HTTP/1.1 on asyncio + httptools) → `exchange` (one
request's SSE measurement). `stats`, `report`, `console` and `plots` turn
results into numbers, JSON, tables and PNGs. Workloads come from
`gpufleet.workload`.
"""
