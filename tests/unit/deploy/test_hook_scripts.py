"""The engines' hook scripts, run as the pods run them.

``drain.py`` (preStop) against a fake gateway admin API; ``fetch-weights.sh`` (init
container) fetching an HTTP tarball into a cache directory: checksum enforced, a warm
cache reused without downloading, a stale one replaced.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SCRIPTS = Path(__file__).parents[3] / "src" / "gpufleet" / "deploy" / "scripts"


class FakeGateway(http.server.ThreadingHTTPServer):
    """/admin/drain and /admin/endpoints; in_flight drops by one per poll."""

    def __init__(self, in_flight: int, known: bool = True):
        super().__init__(("127.0.0.1", 0), _GatewayHandler)
        self.in_flight = in_flight
        self.known = known
        self.drained: list[str] = []
        self.polls = 0


class _GatewayHandler(http.server.BaseHTTPRequestHandler):
    server: FakeGateway

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        if self.path == "/admin/drain" and self.server.known:
            self.server.drained.append(body["endpoint"])
            self._reply(200, {"state": "draining"})
        else:
            self._reply(404, {"error": {"message": "no endpoint"}})

    def do_GET(self) -> None:
        self.server.polls += 1
        self.server.in_flight = max(0, self.server.in_flight - 1)
        endpoint = {"url": "http://10.1.2.3:8000", "in_flight": self.server.in_flight}
        self._reply(200, {"endpoints": [endpoint]})

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(server: http.server.HTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    return thread


def run_drain(port: int, timeout_s: float) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GPUFLEET_GATEWAY_HOST": "127.0.0.1",
        "GPUFLEET_GATEWAY_PORT": str(port),
        "POD_IP": "10.1.2.3",
        "ENGINE_PORT": "8000",
        "DRAIN_TIMEOUT_S": str(timeout_s),
        "DRAIN_POLL_S": "0.02",
    }
    script = SCRIPTS / "drain.py"
    return subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=30
    )


def test_drain_hook_drains_by_url_and_waits_for_in_flight_requests() -> None:
    gateway = FakeGateway(in_flight=3)
    serve(gateway)
    try:
        result = run_drain(gateway.server_address[1], timeout_s=20)
    finally:
        gateway.shutdown()
    assert result.returncode == 0, result.stderr
    assert gateway.drained == ["http://10.1.2.3:8000"]
    assert gateway.in_flight == 0 and gateway.polls >= 3
    assert "drained" in result.stderr


def test_drain_hook_never_blocks_termination() -> None:
    unknown = FakeGateway(in_flight=0, known=False)
    serve(unknown)
    try:
        result = run_drain(unknown.server_address[1], timeout_s=5)
    finally:
        unknown.shutdown()
    assert result.returncode == 0 and unknown.polls == 0, "404: nothing to wait for"
    started = time.monotonic()
    nobody = run_drain(1, timeout_s=5)
    assert nobody.returncode == 0 and time.monotonic() - started < 5


# -- fetch-weights.sh ------------------------------------------------------------------
class _Files(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def weights_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    files = {"config.json": b'{"layers": 2}', "model.safetensors": os.urandom(4096)}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (root / "weights.tar").write_bytes(buffer.getvalue())
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: _Files(*a, directory=str(root))
    )
    serve(server)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/weights.tar", root
    finally:
        server.shutdown()


def digest_of(files: dict[str, bytes]) -> str:
    listing = "".join(
        f"{hashlib.sha256(data).hexdigest()}  ./{name}\n" for name, data in sorted(files.items())
    )
    return hashlib.sha256(listing.encode()).hexdigest()


def run_fetch(uri: str, directory: Path, sha256: str = "") -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "WEIGHTS_URI": uri,
        "WEIGHTS_DIR": str(directory),
        "WEIGHTS_SHA256": sha256,
    }
    script = SCRIPTS / "fetch-weights.sh"
    return subprocess.run(
        ["/bin/sh", str(script)], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("sha256sum")), reason="needs curl")
def test_fetch_checks_the_digest_and_reuses_a_warm_cache(
    weights_server: tuple[str, Path], tmp_path: Path
) -> None:
    uri, root = weights_server
    with tarfile.open(root / "weights.tar") as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    cache = tmp_path / "cache" / "m"

    wrong = run_fetch(uri, cache, sha256="0" * 64)
    assert wrong.returncode == 1 and "checksum mismatch" in wrong.stderr
    assert not cache.exists() and not list(cache.parent.glob("m.partial-*")), (
        "nothing half-done left"
    )

    good = run_fetch(uri, cache, sha256=digest_of(files))
    assert good.returncode == 0, good.stderr
    assert (cache / "model.safetensors").read_bytes() == files["model.safetensors"]
    assert (cache / ".gpufleet-sha256").read_text().strip() == digest_of(files)

    (root / "weights.tar").unlink()
    warm = run_fetch(uri, cache, sha256=digest_of(files))
    assert warm.returncode == 0 and "cache warm" in warm.stdout, "no download when warm"


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("sha256sum")), reason="needs curl")
def test_fetch_replaces_a_cache_with_another_digest(
    weights_server: tuple[str, Path], tmp_path: Path
) -> None:
    uri, root = weights_server
    with tarfile.open(root / "weights.tar") as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    cache = tmp_path / "m"
    cache.mkdir()
    (cache / ".gpufleet-sha256").write_text("f" * 64 + "\n")
    (cache / "stale.bin").write_bytes(b"old")
    result = run_fetch(uri, cache, sha256=digest_of(files))
    assert result.returncode == 0, result.stderr
    assert not (cache / "stale.bin").exists() and (cache / "config.json").exists()
