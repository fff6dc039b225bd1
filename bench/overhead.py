"""Gateway-overhead benchmark: an instant nginx backend measured directly and through proxies.

nginx (1 worker) serves a static chat completion and a static 16-chunk SSE stream; wrk drives
POST /v1/chat/completions directly and through each proxy under test, non-streaming and streaming,
at several connection counts. Reported per run: req/s, p50/p99 latency, errors, proxy CPU
microseconds per request, ratio of req/s to direct, and at 1 connection the added latency.
wrk and nginx are pinned to one core, the proxy to another. Raw figures go to
bench/results/overhead.json.

    .venv/bin/python bench/overhead.py [--only raw,aiohttp] [--duration 8] [--connections 1,32,256]

Proxies are plug-ins (PROXIES below): a command with placeholders {port}, {upstream}, {config},
{python}, {venv}, {root}; the harness starts it, waits for GET /health (or a TCP connect), checks
one JSON and one streamed reply, measures, and terminates it.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "bench" / "overhead"
RESULTS = ROOT / "bench" / "results" / "overhead.json"
VENV = Path(sys.prefix)
# uvicorn and granian are not project dependencies: a throwaway venv (bench/overhead/README.md)
EXTRA_PYTHON = Path(os.environ.get("BENCH_EXTRA_PYTHON", "/tmp/gpufleet-bench-extra/bin/python"))
MODES = {"json": HERE / "chat.lua", "stream": HERE / "chat_stream.lua"}
CHAT_PATH = "/v1/chat/completions"


@dataclass
class Proxy:
    name: str
    command: list[str]
    requires: Path | None = None  # skip (with a message) when this file does not exist
    config_template: Path | None = None  # rendered to {config}
    start_timeout: float = 10.0
    default: bool = True  # False: only run when named in --only
    note: str = ""


def _candidate(script: str, *extra: str) -> list[str]:
    path = f"bench/overhead/candidates/{script}"
    return ["{python}", path, "--port", "{port}", "--upstream", "{upstream}", *extra]


PROXIES: list[Proxy] = [
    Proxy("raw", _candidate("raw_proxy.py"), note="asyncio Protocols + uvloop + httptools"),
    Proxy("aiohttp", _candidate("aiohttp_proxy.py"), note="aiohttp server + ClientSession"),
    Proxy(
        "uvicorn",
        [str(EXTRA_PYTHON), *_candidate("asgi_proxy.py", "--server", "uvicorn")[1:]],
        requires=EXTRA_PYTHON,
        note="uvicorn (httptools, uvloop) + raw ASGI app + aiohttp client",
    ),
    Proxy(
        "granian",
        [str(EXTRA_PYTHON), *_candidate("asgi_proxy.py", "--server", "granian")[1:]],
        requires=EXTRA_PYTHON,
        note="granian (Rust HTTP/1, uvloop) + raw ASGI app + aiohttp client",
    ),
    Proxy(
        "gpufleet",
        ["{venv}/bin/gpufleet", "serve", "-c", "{config}", "--port", "{port}"],
        requires=VENV / "bin" / "gpufleet",
        config_template=HERE / "fleet.yaml.tmpl",
        note="the gateway",
    ),
    # Ablations of the raw candidate (run with --only raw,raw-nojson,...).
    Proxy("raw-nojson", _candidate("raw_proxy.py", "--no-json"), default=False),
    Proxy("raw-tasks", _candidate("raw_proxy.py", "--task-per-request"), default=False),
    Proxy("raw-nocoalesce", _candidate("raw_proxy.py", "--no-coalesce"), default=False),
    Proxy("raw-minhdr", _candidate("raw_proxy.py", "--minimal-headers"), default=False),
]


class Skip(Exception):
    """A proxy cannot be measured; the reason is printed and the run goes on."""


# -- processes -------------------------------------------------------------------------------


class Processes:
    """Children started in their own session; all of them are killed on exit, whatever happens."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, cmd: list[str], log: Path | None = None) -> subprocess.Popen[bytes]:
        kwargs: dict[str, Any] = {
            "cwd": ROOT,
            "stdin": subprocess.DEVNULL,
            "stderr": subprocess.STDOUT,
            "start_new_session": True,
        }
        if log is None:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, **kwargs)
        else:
            with open(log, "ab") as out:
                proc = subprocess.Popen(cmd, stdout=out, **kwargs)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # stragglers left in the group
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(2)
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in list(self.procs):
            self.stop(proc, timeout=2.0)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def cpu_ticks(pid: int) -> tuple[int, int]:
    """(user, system) clock ticks of pid and its live descendants, reaped children included."""
    parents: dict[int, int] = {}
    times: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        rest = stat[stat.rindex(b")") + 2 :].split()
        child = int(entry)
        parents[child] = int(rest[1])
        # utime, stime, cutime, cstime are fields 14-17 of /proc/PID/stat
        times[child] = (int(rest[11]) + int(rest[13]), int(rest[12]) + int(rest[14]))
    tree = {pid}
    grew = True
    while grew:
        grew = False
        for child, parent in parents.items():
            if parent in tree and child not in tree:
                tree.add(child)
                grew = True
    user = sum(times.get(p, (0, 0))[0] for p in tree)
    system = sum(times.get(p, (0, 0))[1] for p in tree)
    return user, system


TICK_US = 1e6 / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    """(busy, steal) clock ticks of the whole machine from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return user + nice + system + irq + softirq, steal


def own_and_children_us() -> float:
    """CPU of this process and its reaped children (wrk), in microseconds."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        ru = resource.getrusage(who)
        total += (ru.ru_utime + ru.ru_stime) * 1e6
    return total


# -- helpers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.getheader("content-type") or "", resp.read()
    finally:
        conn.close()


def wait_ready(proc: subprocess.Popen[bytes], port: int, timeout: float, log: Path | None) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-1500:] if log and log.exists() else ""
            raise Skip(f"exited with code {proc.returncode} before it was ready\n{tail}")
        try:
            status, _, _ = http_request(port, "GET", "/health")
            if status in (200, 404):  # 404: up, but without a health endpoint
                return
            last = f"GET /health -> {status}"
        except OSError as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.05)
    raise Skip(f"not ready within {timeout:.0f} s ({last})")


def lua_body(mode: str) -> bytes:
    """The request body a wrk script sends: the string literals assigned to wrk.body."""
    text = MODES[mode].read_text()
    match = re.search(r"^wrk\.body\s*=(.*?)\n\s*\n", text, re.S | re.M)
    if match is None:
        raise SystemExit(f"{MODES[mode]}: no wrk.body assignment found")
    return "".join(re.findall(r"'([^']*)'", match.group(1))).encode()


def check_replies(port: int) -> None:
    """One JSON and one streamed request: same content as the static bodies, right types."""
    expected = json.loads((HERE / "chat.json").read_bytes())
    headers = {"content-type": "application/json", "x-bench-stream": "0"}
    status, ctype, body = http_request(port, "POST", CHAT_PATH, lua_body("json"), headers)
    if status != 200 or not ctype.startswith("application/json"):
        raise Skip(f"JSON request: status {status}, content-type {ctype!r}: {body[:200]!r}")
    if json.loads(body).get("choices") != expected["choices"]:
        raise Skip(f"JSON request: unexpected body {body[:200]!r}")
    headers = {"content-type": "application/json", "x-bench-stream": "1"}
    status, ctype, body = http_request(port, "POST", CHAT_PATH, lua_body("stream"), headers)
    want = [ln for ln in (HERE / "chat_stream.sse").read_bytes().split(b"\n") if ln]
    got = [ln for ln in body.split(b"\n") if ln]
    if status != 200 or not ctype.startswith("text/event-stream"):
        raise Skip(f"stream request: status {status}, content-type {ctype!r}: {body[:200]!r}")
    if len(got) != len(want) or got[-1] != b"data: [DONE]":
        raise Skip(f"stream request: {len(got)} events, expected {len(want)}: {body[-200:]!r}")


def render(template: Path, dest: Path, values: dict[str, str]) -> Path:
    text = template.read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    dest.write_text(text)
    return dest


def machine_info() -> dict[str, Any]:
    def version(cmd: list[str]) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
            return (out.stdout + out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "unknown"

    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "nginx": version(["nginx", "-v"]),
        "wrk": version(["wrk", "-v"]),
    }


# -- the benchmark ---------------------------------------------------------------------------


@dataclass
class Bench:
    args: argparse.Namespace
    procs: Processes
    tmp: Path
    upstream_port: int = 0
    results: list[dict[str, Any]] = field(default_factory=list)
    commands: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def pin(self, cpu: str, cmd: list[str]) -> list[str]:
        return ["taskset", "-c", cpu, *cmd]

    def start_nginx(self) -> None:
        www = self.tmp / "www"
        www.mkdir()
        for name in ("chat.json", "chat_stream.sse"):
            shutil.copy(HERE / name, www / name)
        self.upstream_port = free_port()
        conf = render(
            HERE / "nginx.conf.tmpl",
            self.tmp / "nginx.conf",
            {
                "PREFIX": str(self.tmp),
                "PORT": str(self.upstream_port),
                "DOCROOT": str(www),
                "STREAM_BODY_LENGTH": str(len(lua_body("stream"))),
            },
        )
        cmd = self.pin(
            self.args.load_cpu,
            ["nginx", "-p", f"{self.tmp}/", "-c", str(conf), "-e", f"{self.tmp}/error.log"],
        )
        self.commands["nginx"] = shlex.join(cmd)
        proc = self.procs.start(cmd, self.tmp / "nginx.out")
        try:
            wait_ready(proc, self.upstream_port, 10, self.tmp / "error.log")
        except Skip as exc:
            raise SystemExit(f"nginx did not start: {exc}") from None
        self.nginx = proc

    def wrk(self, port: int, mode: str, conns: int, duration: int) -> tuple[list[str], dict]:
        cmd = self.pin(
            self.args.load_cpu,
            [
                "wrk",
                "-t1",
                f"-c{conns}",
                f"-d{duration}s",
                "--timeout",
                "10s",
                "--latency",
                "-s",
                str(MODES[mode].relative_to(ROOT)),
                f"http://127.0.0.1:{port}",
            ],
        )
        proc = self.procs.start(cmd)
        try:
            out, _ = proc.communicate(timeout=duration + 60)
        finally:
            self.procs.stop(proc)
        text = out.decode(errors="replace")
        for line in text.splitlines():
            if line.startswith("WRKJSON "):
                return cmd, json.loads(line[8:])
        raise RuntimeError(f"wrk printed no WRKJSON line (rc {proc.returncode}):\n{text}")

    def measure(self, target: str, port: int, pid: int | None) -> None:
        for mode in self.args.modes:
            for conns in self.args.connections:
                runs = []
                for _ in range(self.args.repeat):
                    for attempt in range(1 + self.args.retries):
                        if self.args.warmup > 0:
                            self.wrk(port, mode, conns, self.args.warmup)
                        run = self.run_once(target, mode, conns, port, pid)
                        if run["background_cpu_util"] <= self.args.max_background:
                            break
                        print(
                            f"    other processes used {run['background_cpu_util']:.2f} cores"
                            + (", measuring again" if attempt < self.args.retries else ""),
                            flush=True,
                        )
                    runs.append(run)
                # the median run by req/s stands for the configuration; all runs are kept
                row = dict(sorted(runs, key=lambda r: r["rps"])[len(runs) // 2])
                if len(runs) > 1:
                    row["runs"] = [
                        {k: r[k] for k in ("rps", "p50_ms", "p99_ms", "proxy_cpu_us_per_req")}
                        for r in runs
                    ]
                direct = self.find("direct", mode, conns)
                if direct and target != "direct":
                    row["ratio"] = row["rps"] / direct["rps"] if direct["rps"] else None
                    if conns == 1:
                        row["added_p50_ms"] = row["p50_ms"] - direct["p50_ms"]
                        row["added_p99_ms"] = row["p99_ms"] - direct["p99_ms"]
                self.results.append(row)

    def run_once(
        self, target: str, mode: str, conns: int, port: int, pid: int | None
    ) -> dict[str, Any]:
        cpu0 = cpu_ticks(pid) if pid else (0, 0)
        ngx0 = cpu_ticks(self.nginx.pid)
        mach0, own0 = machine_ticks(), own_and_children_us()
        t0 = time.monotonic()
        cmd, w = self.wrk(port, mode, conns, self.args.duration)
        wall = time.monotonic() - t0
        mach1, own1 = machine_ticks(), own_and_children_us()
        cpu1 = cpu_ticks(pid) if pid else (0, 0)
        ngx1 = cpu_ticks(self.nginx.pid)
        n = w["requests"]
        user, system = (cpu1[0] - cpu0[0]) * TICK_US, (cpu1[1] - cpu0[1]) * TICK_US
        cpu_us = user + system if pid else None
        ngx_us = (sum(ngx1) - sum(ngx0)) * TICK_US
        # CPU used meanwhile by anything but proxy, nginx, wrk and this harness: interference
        busy_us = (mach1[0] - mach0[0]) * TICK_US
        other_us = busy_us - (cpu_us or 0.0) - ngx_us - (own1 - own0)
        steal_us = (mach1[1] - mach0[1]) * TICK_US
        lat = w["latency_us"]
        errs = w["errors"]
        row: dict[str, Any] = {
            "target": target,
            "mode": mode,
            "connections": conns,
            "requests": n,
            "rps": n / (w["duration_us"] / 1e6),
            "p50_ms": lat["p50"] / 1000,
            "p99_ms": lat["p99"] / 1000,
            "latency_us": lat,
            "non_2xx": errs["status"],
            "socket_errors": errs["connect"] + errs["read"] + errs["write"] + errs["timeout"],
            "errors_total": sum(errs.values()),
            "errors": errs,
            "proxy_cpu_us_per_req": cpu_us / n if cpu_us is not None and n else None,
            "proxy_cpu_user_us_per_req": user / n if cpu_us is not None and n else None,
            "proxy_cpu_sys_us_per_req": system / n if cpu_us is not None and n else None,
            "proxy_cpu_util": cpu_us / 1e6 / wall if cpu_us is not None else None,
            "nginx_cpu_us_per_req": ngx_us / n if n else None,
            "background_cpu_util": max(0.0, other_us / 1e6 / wall),
            "steal_util": steal_us / 1e6 / wall,
            "command": shlex.join(cmd),
        }
        cpu = f"{row['proxy_cpu_us_per_req']:.0f} us/req" if cpu_us is not None else ""
        print(
            f"  {target:<14} {mode:<6} c={conns:<4} {row['rps']:>9.0f} req/s  "
            f"p50 {row['p50_ms']:.2f} ms  p99 {row['p99_ms']:.2f} ms  {cpu}  "
            f"errors {row['errors_total']}  other {row['background_cpu_util']:.2f} cores",
            flush=True,
        )
        return row

    def find(self, target: str, mode: str, conns: int) -> dict[str, Any] | None:
        for row in self.results:
            if (row["target"], row["mode"], row["connections"]) == (target, mode, conns):
                return row
        return None

    def run_proxy(self, proxy: Proxy) -> None:
        if proxy.requires is not None and not proxy.requires.exists():
            raise Skip(f"{proxy.requires} does not exist")
        port = free_port()
        upstream = f"http://127.0.0.1:{self.upstream_port}"
        values = {
            "port": str(port),
            "upstream": upstream,
            "python": sys.executable,
            "venv": str(VENV),
            "root": str(ROOT),
            "config": "",
        }
        if proxy.config_template is not None:
            config = render(
                proxy.config_template,
                self.tmp / f"{proxy.name}.yaml",
                {
                    "PORT": str(port),
                    "UPSTREAM": upstream,
                    "UPSTREAM_HOST": "127.0.0.1",
                    "UPSTREAM_PORT": str(self.upstream_port),
                    "MODEL": "bench",
                },
            )
            values["config"] = str(config)
        cmd = self.pin(self.args.proxy_cpu, [part.format(**values) for part in proxy.command])
        self.commands.setdefault("proxies", {})[proxy.name] = shlex.join(cmd)
        log = self.tmp / f"{proxy.name}.log"
        proc = self.procs.start(cmd, log)
        try:
            wait_ready(proc, port, proxy.start_timeout, log)
            deadline = time.monotonic() + proxy.start_timeout
            while True:  # a gateway may answer 503 until its first backend health probe
                try:
                    check_replies(port)
                    break
                except (Skip, OSError) as exc:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise Skip(f"wrong replies: {exc}") from None
                    time.sleep(0.2)
            self.measure(proxy.name, port, proc.pid)
            if proc.poll() is not None:
                print(f"  warning: {proxy.name} exited during the run (code {proc.returncode})")
        finally:
            self.procs.stop(proc)

    def run(self, proxies: list[Proxy]) -> None:
        self.start_nginx()
        check_replies(self.upstream_port)
        print(f"direct (nginx on 127.0.0.1:{self.upstream_port})", flush=True)
        self.measure("direct", self.upstream_port, None)
        for proxy in proxies:
            print(f"{proxy.name}" + (f" ({proxy.note})" if proxy.note else ""), flush=True)
            try:
                self.run_proxy(proxy)
            except Skip as exc:
                self.skipped[proxy.name] = str(exc)
                print(f"  skipped {proxy.name}: {exc}", flush=True)


# -- output ----------------------------------------------------------------------------------


def fmt(value: Any, spec: str) -> str:
    return "" if value is None else format(value, spec)


def print_table(results: list[dict[str, Any]]) -> None:
    columns = [
        ("target", "target", "", "left"),
        ("conns", "connections", "d", "right"),
        ("req/s", "rps", ",.0f", "right"),
        ("ratio", "ratio", ".2f", "right"),
        ("p50 ms", "p50_ms", ".2f", "right"),
        ("p99 ms", "p99_ms", ".2f", "right"),
        ("+p50 ms", "added_p50_ms", ".2f", "right"),
        ("+p99 ms", "added_p99_ms", ".2f", "right"),
        ("CPU us/req", "proxy_cpu_us_per_req", ".0f", "right"),
        ("(sys)", "proxy_cpu_sys_us_per_req", ".0f", "right"),
        ("CPU %", "proxy_cpu_util", ".0%", "right"),
        ("other", "background_cpu_util", ".2f", "right"),
        ("errors", "errors_total", "d", "right"),
    ]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # plain text
        Console = None
    for mode, title in (("json", "non-streaming"), ("stream", "streaming (16 chunks + usage)")):
        rows = [r for r in results if r["mode"] == mode]
        if not rows:
            continue
        cells = [[fmt(r.get(key), spec) for _, key, spec, _ in columns] for r in rows]
        if Console is not None:
            table = Table(title=f"Gateway overhead: {title}", title_justify="left")
            for head, _, _, justify in columns:
                table.add_column(head, justify=justify)  # type: ignore[arg-type]
            for cell in cells:
                table.add_row(*cell)
            console = Console()
            if console.width < 120:  # not a terminal: do not squeeze the table into 80 columns
                console = Console(width=120)
            console.print(table)
        else:
            widths = [max(len(h), *(len(c[i]) for c in cells)) for i, (h, *_) in enumerate(columns)]
            print(f"\nGateway overhead: {title}")
            print("  ".join(h.rjust(w) for (h, *_), w in zip(columns, widths, strict=True)))
            for cell in cells:
                print("  ".join(c.rjust(w) for c, w in zip(cell, widths, strict=True)))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help="comma-separated proxy names (default: all default entries)")
    ap.add_argument("--duration", type=int, default=8, help="seconds per measured run")
    ap.add_argument(
        "--warmup", type=int, default=1, help="seconds of warm-up before each run (0: none)"
    )
    ap.add_argument("--connections", default="1,32,256", help="comma-separated wrk -c values")
    ap.add_argument(
        "--repeat", type=int, default=1, help="runs per configuration; the median is reported"
    )
    ap.add_argument(
        "--max-background",
        type=float,
        default=0.1,
        help="a run during which other processes used more cores than this is measured again",
    )
    ap.add_argument("--retries", type=int, default=2, help="re-measurements of a disturbed run")
    ap.add_argument("--modes", default="json,stream", help="json, stream or both")
    ap.add_argument("--proxy-cpu", default="0", help="core(s) for the proxy (taskset -c)")
    ap.add_argument("--load-cpu", default="1", help="core(s) for wrk and nginx (taskset -c)")
    ap.add_argument("--output", type=Path, default=RESULTS)
    ap.add_argument("--list", action="store_true", help="list the proxies under test and exit")
    args = ap.parse_args(argv)
    args.connections = [int(c) for c in args.connections.split(",") if c]
    args.modes = [m for m in args.modes.split(",") if m]
    if unknown := set(args.modes) - set(MODES):
        ap.error(f"unknown mode(s): {', '.join(sorted(unknown))}")
    if (os.cpu_count() or 1) < 2 and "1" in (args.proxy_cpu, args.load_cpu):
        args.proxy_cpu = args.load_cpu = "0"  # single core: everything shares it
    return args


def select(only: str | None) -> list[Proxy]:
    if not only:
        return [p for p in PROXIES if p.default]
    by_name = {p.name: p for p in PROXIES}
    names = [n.strip() for n in only.split(",") if n.strip() and n.strip() != "direct"]
    if unknown := [n for n in names if n not in by_name]:
        raise SystemExit(
            f"unknown proxy name(s): {', '.join(unknown)}; known: {', '.join(by_name)}"
        )
    return [by_name[n] for n in names]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for p in PROXIES:
            flag = "" if p.default else " (only with --only)"
            print(f"{p.name:<16}{shlex.join(p.command)}{flag}")
        return 0
    proxies = select(args.only)
    for tool in ("nginx", "wrk", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found (make system-deps installs nginx and wrk)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)  # also when SIGINT was ignored (background job)

    procs = Processes()
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="gpufleet-overhead-") as tmpdir:
        tmp = Path(tmpdir)
        tmp.chmod(0o755)  # nginx workers run as nobody when started by root
        bench = Bench(args, procs, tmp)
        try:
            bench.run(proxies)
        except KeyboardInterrupt:
            print("\ninterrupted; stopping everything", file=sys.stderr)
            return 130
        finally:
            procs.stop_all()
    print_table(bench.results)
    for name, reason in bench.skipped.items():
        print(f"skipped {name}: {reason.splitlines()[0]}")
    report = {
        "benchmark": "gateway overhead (bench/overhead.py)",
        "started": started.isoformat(timespec="seconds"),
        "machine": machine_info(),
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "repeat": args.repeat,
            "max_background_cores": args.max_background,
            "retries": args.retries,
            "connections": args.connections,
            "modes": args.modes,
            "request_body_bytes": {mode: len(lua_body(mode)) for mode in MODES},
            "proxy_cpu": args.proxy_cpu,
            "load_cpu": args.load_cpu,
            "argv": sys.argv,
        },
        "commands": bench.commands,
        "skipped": bench.skipped,
        "results": bench.results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"raw figures: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
