# Every target creates and uses the local virtualenv by itself.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYTHON ?= python3

.PHONY: up test test-vllm test-deps lint typecheck unit venv clean system-deps \
	bench-faults bench-load bench-overhead bench-engine bench-loadgen bench-routing-decision bench-routing bench-sim \
	bench-autoscale compiled

venv: $(STAMP)

$(STAMP): pyproject.toml deploy/install-helm.sh
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[dev]'
	@sh deploy/install-helm.sh $(VENV)
	@touch $(STAMP)

## make up: the gateway in front of a local simulated fleet (Ctrl-C stops everything)
up: venv
	$(VENV)/bin/gpufleet up

## make test: lint, type-check and the whole test suite
test: venv test-deps lint typecheck
	$(PY) -m pytest -q

## make test-vllm: the integration tier against two real vLLM CPU servers on loopback
## (builds its vLLM virtualenv once, cached in ~/.cache/gpufleet; prints its timings)
test-vllm: venv
	@bash tests/vllm/ensure_venv.sh >/dev/null
	$(PY) -m pytest -q tests/vllm

# Debian packages the test suite runs for real: redis-server (shared limits across gateways),
# chromium (the fleet page's browser test).
test-deps:
	@command -v redis-server >/dev/null || \
	  { apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }
	@command -v chromium >/dev/null || \
	  { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

lint: venv
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: venv
	$(VENV)/bin/mypy src

# Debian packages used by benchmarks and some tests (nginx, wrk, redis-server).
system-deps:
	@command -v nginx >/dev/null && command -v wrk >/dev/null || \
	  { apt-get update -qq && apt-get install -y -qq nginx-light wrk >/dev/null; }

## make bench-faults: the local fleet under streaming load while faults hit it (docs/reliability.md)
bench-faults: venv
	$(PY) bench/faults.py

## make bench-load: 5,000 concurrent streaming clients for 60 s through one gateway process
bench-load: venv
	$(PY) bench/load.py

bench-overhead: venv system-deps
	$(PY) bench/overhead.py

bench-engine: venv
	$(PY) bench/engine.py

bench-loadgen: venv system-deps
	$(PY) bench/loadgen.py

bench-routing-decision: venv
	$(PY) bench/routing_decision.py

bench-routing: venv
	$(PY) bench/routing.py

## make compiled: the simulator's hot path compiled by mypyc into build/compiled (setup.py);
## `PYTHONPATH=build/compiled` runs gpufleet from it
compiled: build/compiled/.stamp

build/compiled/.stamp: $(STAMP) setup.py $(shell find src/gpufleet -name '*.py')
	rm -rf build/compiled build/mypyc
	GPUFLEET_MYPYC=1 $(PY) setup.py -q build --build-base build/mypyc --build-lib build/compiled
	@touch $@

## make bench-sim: the compiled build and pure Python side by side (identical results checked;
## the main 1 h run three times per build, median kept)
bench-sim: venv compiled
	taskset -c 0 $(PY) bench/sim.py --repeat 3

## make bench-autoscale: static peak vs KEDA-style threshold vs gpufleet's SLO autoscaler
## on a simulated diurnal day (bench/results/autoscale.json and .png; docs/autoscale.md)
bench-autoscale: venv
	taskset -c 0 $(PY) bench/autoscale.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache bench/results build
