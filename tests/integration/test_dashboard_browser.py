"""The fleet page in headless Chromium (Debian's ``chromium``), driven over the DevTools
protocol: a real gateway in front of two simulated engines, traffic sent first; the page
must load with no console error, exception or failed request, show both replicas, follow
a drain on its next refresh, and leave a screenshot in ``test-artifacts/dashboard.png``."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from tests.integration.tenancy_helpers import ADMIN_KEY, tenancy_section
from tests.support.processes import ProcessGroup, fleet_config, http_post

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--no-first-run", "--no-default-browser-check",
    "--disable-extensions", "--hide-scrollbars", "--remote-debugging-port=0",
)  # fmt: skip
DEVTOOLS_LINE = re.compile(r"DevTools listening on (ws://\S+)")
TIMEOUT_S = 20.0


class Page:
    """One browser tab over a DevTools websocket (flattened session): send commands, and
    collect every console error, uncaught exception and failed or 4xx/5xx request."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, session: str):
        self.ws = ws
        self.session = session
        self.problems: list[str] = []
        self.credentials: tuple[str, str] | None = None
        """Typed into the browser's HTTP authentication prompt (with ``Fetch`` enabled)."""
        self.num_auth_prompts = 0
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: set[asyncio.Task[dict[str, Any]]] = set()

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        command_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[command_id] = future
        message = {"id": command_id, "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        await self.ws.send_str(json.dumps(message))
        return await asyncio.wait_for(future, TIMEOUT_S)

    def on_message(self, message: dict[str, Any]) -> None:
        if "id" in message:
            future = self._pending.pop(message["id"], None)
            if future is not None and not future.done():
                if "error" in message:
                    future.set_exception(RuntimeError(f"DevTools: {message['error']}"))
                else:
                    future.set_result(message.get("result", {}))
            return
        method, params = message.get("method"), message.get("params", {})
        if method == "Fetch.requestPaused":
            self._later("Fetch.continueRequest", requestId=params["requestId"])
        elif method == "Fetch.authRequired":  # the prompt: answer it like a user would
            self.num_auth_prompts += 1
            username, password = self.credentials or ("", "")
            self._later(
                "Fetch.continueWithAuth", requestId=params["requestId"],
                authChallengeResponse={
                    "response": "ProvideCredentials" if self.credentials else "CancelAuth",
                    "username": username, "password": password,
                },
            )  # fmt: skip
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            self.problems.append(f"uncaught exception: {text}")
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
            self.problems.append(f"console.{params['type']}: {args}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            self.problems.append(f"log error: {entry['text']} ({entry.get('url', '')})")
        elif method == "Network.responseReceived" and params["response"]["status"] >= 400:
            response = params["response"]
            self.problems.append(f"HTTP {response['status']} for {response['url']}")
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            self.problems.append(f"request failed: {params.get('errorText')}")

    def _later(self, method: str, **params: Any) -> None:
        task = asyncio.get_running_loop().create_task(self.send(method, **params))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, what: str) -> Any:
        """Poll a JS expression until it is truthy (the page refreshes every 2 s)."""
        deadline = asyncio.get_running_loop().time() + TIMEOUT_S
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{what} not shown within {TIMEOUT_S} s")
            await asyncio.sleep(0.1)


@asynccontextmanager
async def chromium_page() -> AsyncIterator[Page]:
    binary = shutil.which("chromium")
    assert binary, "Debian's chromium is required (make test-deps installs it)"
    with tempfile.TemporaryDirectory(prefix="gpufleet-chromium-") as profile:
        process = await asyncio.create_subprocess_exec(
            binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert process.stderr is not None
        try:
            browser_url = await asyncio.wait_for(_devtools_url(process.stderr), TIMEOUT_S)
            async with (
                aiohttp.ClientSession() as http,
                http.ws_connect(browser_url, max_msg_size=0) as ws,
            ):
                page = Page(ws, session="")
                reader = asyncio.get_running_loop().create_task(_read(ws, page))
                target = await page.send("Target.createTarget", url="about:blank")
                attached = await page.send(
                    "Target.attachToTarget", targetId=target["targetId"], flatten=True
                )
                page.session = attached["sessionId"]
                for domain in ("Runtime", "Log", "Network", "Page"):
                    await page.send(f"{domain}.enable")
                try:
                    yield page
                finally:
                    reader.cancel()
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()


async def _devtools_url(stderr: asyncio.StreamReader) -> str:
    while True:
        line = await stderr.readline()
        if not line:
            raise AssertionError("chromium exited before opening its DevTools port")
        found = DEVTOOLS_LINE.search(line.decode(errors="replace"))
        if found:
            return found.group(1)


async def _read(ws: aiohttp.ClientWebSocketResponse, page: Page) -> None:
    async for message in ws:
        if message.type == aiohttp.WSMsgType.TEXT:
            page.on_message(json.loads(message.data))


@pytest.fixture
def fleet(procs: ProcessGroup, tmp_path: Path) -> Iterator[str]:
    engines = [procs.engine(), procs.engine()]
    config = fleet_config([e.url for e in engines], scrape={"interval_s": 0.2})
    url = procs.gateway(config, tmp_path)
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    for index in range(8):
        stream = client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": f"hello {index}"}],
            max_tokens=24, stream=True,
        )  # fmt: skip
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    yield url


def test_fleet_page_in_headless_chromium(fleet: str) -> None:
    asyncio.run(_drive(fleet))


async def _drive(url: str) -> None:
    replicas = ["pool-a/tiny/0", "pool-a/tiny/1"]
    async with chromium_page() as page:
        await page.send(
            "Emulation.setDeviceMetricsOverride", width=1400, height=860, deviceScaleFactor=1,
            mobile=False,
        )  # fmt: skip
        await page.send("Page.navigate", url=url + "/dashboard")
        shown = await page.wait_for(
            "[...document.querySelectorAll('tr[data-replica]')].map(r => r.dataset.replica)"
            ".length >= 2 && document.getElementById('updated').textContent",
            "both replicas",
        )
        assert shown.startswith("updated"), shown
        text = await page.evaluate("document.body.innerText")
        for replica in replicas:
            assert replica in text
        assert "healthy" in text and "h100-sxm" in text
        # routing decisions recorded for the traffic sent before, with their scores
        num_decisions = await page.evaluate("document.querySelectorAll('#decisions tr').length")
        assert num_decisions >= 8 + 1, "8 decisions and the header row"
        # tokens/s of the last 30 s are shown (traffic happened): not all zero
        rates = await page.evaluate(
            "[...document.querySelectorAll('tr[data-replica] td:last-child')]"
            ".map(td => td.textContent)"
        )
        assert any(rate != "0" for rate in rates), rates

        # the next refresh follows a drain
        status, _ = http_post(url + "/admin/drain", json.dumps({"endpoint": replicas[0]}).encode())
        assert status == 200
        await page.wait_for(
            f"document.querySelector('tr[data-replica=\"{replicas[0]}\"] .badge')"
            ".textContent === 'draining'",
            "the drained replica",
        )
        dom = await page.evaluate("document.documentElement.outerHTML")
        assert all(replica in dom for replica in replicas)

        shot = await page.send("Page.captureScreenshot", format="png")
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / "dashboard.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert page.problems == [], page.problems


def test_console_errors_are_caught() -> None:
    """The harness itself can fail: a page with a script error and a 404 is reported."""

    async def drive() -> list[str]:
        async with chromium_page() as page:
            html = "<script>console.error('boom'); undefinedFunction();</script>"
            await page.send("Page.navigate", url="data:text/html," + html)
            await page.wait_for("document.readyState === 'complete'", "the page")
            await page.evaluate("fetch('http://127.0.0.1:1/').catch(() => 0) && 1")
            await page.wait_for("true", "idle")
            deadline = asyncio.get_running_loop().time() + TIMEOUT_S
            while len(page.problems) < 3 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
            return page.problems

    problems = asyncio.run(drive())
    assert any("boom" in p for p in problems), problems
    assert any("undefinedFunction" in p for p in problems), problems
    assert any("request failed" in p for p in problems), problems


def test_fleet_page_behind_the_admin_key(procs: ProcessGroup, tmp_path: Path) -> None:
    """With API keys on, the browser asks for credentials once (HTTP Basic, the admin key
    as password) and its polls carry them from then on: the page fills in."""
    engine = procs.engine()
    url = procs.gateway(fleet_config([engine.url], tenancy=tenancy_section()), tmp_path)
    asyncio.run(_drive_with_key(url))


async def _drive_with_key(url: str) -> None:
    async with chromium_page() as page:
        page.credentials = ("admin", ADMIN_KEY)
        await page.send("Fetch.enable", handleAuthRequests=True, patterns=[{"urlPattern": "*"}])
        await page.send("Page.navigate", url=url + "/dashboard")
        await page.wait_for(
            "document.querySelectorAll('tr[data-replica]').length === 1", "the replica"
        )
        first = await page.evaluate("document.getElementById('updated').textContent")
        await page.wait_for(
            f"document.getElementById('updated').textContent !== {json.dumps(first)}",
            "a second poll",
        )
        assert page.num_auth_prompts == 1, "asked once; the polls reuse the credentials"
        assert [p for p in page.problems if "HTTP 401" not in p] == []
        assert not any("/dashboard/fleet" in p for p in page.problems), page.problems
        banner = await page.evaluate("getComputedStyle(document.getElementById('banner')).display")
        assert banner == "none", "no error banner"
