"""The fleet simulator: routing, admission and engine models on virtual time.

`Simulator` runs a `FleetConfig` against a workload with the gateway's own
routing profile and admission queue and one `EngineModel` per replica;
`build_report` turns the run into latency, SLO, throughput and cost figures.
Pure: no sockets, no asyncio, no clock; time is virtual.
"""
