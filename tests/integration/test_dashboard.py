"""The fleet page's HTTP surface on a real gateway: the admin key guards it (Bearer or the
browser's Basic prompt), the JSON describes replicas, queues and the last decisions."""

from __future__ import annotations

import base64
import http.client
import json
import threading
from pathlib import Path
from typing import Any

from tests.integration.tenancy_helpers import ADMIN_KEY, KEYS, tenancy_section
from tests.support.processes import ProcessGroup, fleet_config, http_get, http_post, wait_for


def get(url: str, path: str, authorization: str | None = None) -> tuple[int, dict[str, str], bytes]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", path, headers={"authorization": authorization} if authorization else {})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body


def basic(password: str, user: str = "admin") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def chat(url: str, priority: int | None = None) -> int:
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"content-type": "application/json"}
    if priority is not None:
        headers["x-priority"] = str(priority)
    conn.request("POST", "/v1/chat/completions", json.dumps(body), headers)
    status = conn.getresponse().status
    conn.close()
    return status


def fleet_json(url: str) -> dict[str, Any]:
    status, body = http_get(url + "/dashboard/fleet")
    assert status == 200, body
    document: dict[str, Any] = json.loads(body)
    return document


def test_admin_key_guards_page_and_json(procs: ProcessGroup, tmp_path: Path) -> None:
    engine = procs.engine()
    config = fleet_config([engine.url], tenancy=tenancy_section())
    url = procs.gateway(config, tmp_path)
    for path in ("/dashboard", "/dashboard/fleet", "/admin/fleet"):
        for authorization in (None, f"Bearer {KEYS['acme']}", basic(KEYS["acme"]), "Basic !!"):
            status, headers, body = get(url, path, authorization)
            assert status == 401, (path, authorization)
            assert json.loads(body)["error"]["type"] == "authentication_error"
            assert ADMIN_KEY not in body.decode()
        status, headers, body = get(url, path, f"Bearer {ADMIN_KEY}")
        assert status == 200, path
    status, headers, _ = get(url, "/dashboard")
    assert headers["www-authenticate"].startswith("Basic realm=")
    status, headers, page = get(url, "/dashboard", basic(ADMIN_KEY, user="anyone"))
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in headers["content-security-policy"]
    assert b"<title>gpufleet" in page
    assert get(url, "/dashboard/fleet", basic(ADMIN_KEY))[0] == 200


def test_page_is_self_contained(procs: ProcessGroup, tmp_path: Path) -> None:
    engine = procs.engine()
    url = procs.gateway(fleet_config([engine.url]), tmp_path)
    status, _, page = get(url, "/dashboard/")
    assert status == 200
    text = page.decode()
    assert "http://" not in text and "https://" not in text, "no external assets"
    assert "<script src" not in text and '<link rel="stylesheet"' not in text


def test_json_describes_replicas_queue_and_decisions(procs: ProcessGroup, tmp_path: Path) -> None:
    engines = [procs.engine(), procs.engine()]
    config = fleet_config(
        [e.url for e in engines],
        scrape={"interval_s": 0.2},
        admission={"max_wait_s": 20.0},
    )
    url = procs.gateway(config, tmp_path)
    for _ in range(30):
        assert chat(url) == 200
    document = fleet_json(url)
    assert document["totals"]["replicas"] == 2 and document["totals"]["routable"] == 2
    (model,) = document["models"]
    assert model["name"] == "tiny" and model["ready"] is True
    (pool,) = model["pools"]
    assert pool["name"] == "pool-a" and pool["gpu"] == "h100-sxm"
    ids = [r["id"] for r in pool["replicas"]]
    assert ids == ["pool-a/tiny/0", "pool-a/tiny/1"]
    for replica in pool["replicas"]:
        assert replica["state"] == "healthy"
        assert replica["recent"]["requests_per_s"] > 0
        assert replica["recent"]["ttft"]["mean_s"] is None, "non-streamed: no TTFT"
    wait_for(
        lambda: all(
            r["metrics_age_s"] is not None
            for r in fleet_json(url)["models"][0]["pools"][0]["replicas"]
        ),
        what="a scrape of both replicas",
    )
    decisions = document["decisions"]
    assert len(decisions) == 25, "the page shows the last 25"
    assert [d["ts"] for d in decisions] == sorted((d["ts"] for d in decisions), reverse=True)
    for decision in decisions:
        assert decision["chosen"] in ids and decision["num_candidates"] == 2
        assert decision["scores"][0]["endpoint"] == decision["chosen"]
        assert {s["endpoint"] for s in decision["scores"]} == set(ids)

    # every replica drained: requests wait in the admission queue, by priority
    for endpoint in ids:
        assert (
            http_post(url + "/admin/drain", json.dumps({"endpoint": endpoint}).encode())[0] == 200
        )
    statuses: list[int] = []
    waiting = [
        threading.Thread(target=lambda p=p: statuses.append(chat(url, priority=p)))
        for p in (1, 1, 7)
    ]
    for thread in waiting:
        thread.start()
    try:
        wait_for(
            lambda: (
                fleet_json(url)["models"][0]["queue"]
                == [{"priority": 7, "depth": 1}, {"priority": 1, "depth": 2}]
            ),
            what="3 queued requests",
        )
        document = fleet_json(url)
        assert document["totals"]["queued"] == 3 and document["totals"]["routable"] == 0
        assert document["models"][0]["ready"] is False
        assert {r["state"] for r in document["models"][0]["pools"][0]["replicas"]} == {"draining"}
    finally:
        http_post(url + "/admin/undrain", json.dumps({"endpoint": ids[0]}).encode())
        for thread in waiting:
            thread.join(timeout=30)
    assert statuses == [200, 200, 200]
    # documents are reused for 0.5 s (several open pages cost one): the next shows it
    wait_for(lambda: fleet_json(url)["totals"]["queued"] == 0, timeout_s=5, what="empty queue")


def test_no_page_when_admin_is_off(procs: ProcessGroup, tmp_path: Path) -> None:
    engine = procs.engine()
    config = fleet_config([engine.url], gateway={"access_log": "off", "admin_enabled": False})
    url = procs.gateway(config, tmp_path)
    for path in ("/dashboard", "/dashboard/fleet", "/admin/fleet"):
        assert get(url, path)[0] == 404
