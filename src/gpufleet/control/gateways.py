"""The controller's HTTP client of every gateway replica: gather signals, drain replicas.

Contract: ``snapshots()`` asks every gateway at once and returns the snapshots of those
that answered plus the URLs that did not (a round goes on with the others);
``drain(id)`` posts ``/admin/drain`` to every gateway and returns the URLs that did not
take it and the number of gateways that know the replica (one that answers 404 has
nothing to drain and counts as done). With ``admin_key`` every call carries
``Authorization: Bearer KEY``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import httpx2

from gpufleet.control.snapshot import GatewaySnapshot, parse_endpoints, parse_gateway_metrics

log = logging.getLogger("gpufleet.controller")


class GatewaySet:
    def __init__(self, urls: Sequence[str], admin_key: str | None = None, timeout_s: float = 2.0):
        if not urls:
            raise ValueError("at least one gateway URL is needed")
        self.urls = tuple(url.rstrip("/") for url in urls)
        headers = {"authorization": f"Bearer {admin_key}"} if admin_key else {}
        self._client = httpx2.AsyncClient(headers=headers, timeout=timeout_s)

    async def close(self) -> None:
        await self._client.aclose()

    async def snapshots(self) -> tuple[list[GatewaySnapshot], list[str]]:
        results = await asyncio.gather(*(self._snapshot(url) for url in self.urls))
        answered = [r for r in results if isinstance(r, GatewaySnapshot)]
        failed = [url for url, r in zip(self.urls, results, strict=True) if r is None]
        return answered, failed

    async def _snapshot(self, url: str) -> GatewaySnapshot | None:
        try:
            endpoints = await self._client.get(url + "/admin/endpoints")
            metrics = await self._client.get(url + "/metrics")
            endpoints.raise_for_status()
            metrics.raise_for_status()
            replicas = parse_endpoints(endpoints.content)
            queued, completed = parse_gateway_metrics(metrics.text)
        except (httpx2.HTTPError, ValueError) as exc:
            log.warning("gateway %s: no signals this round: %s", url, _describe(exc))
            return None
        return GatewaySnapshot(url, replicas, queued, completed)

    async def drain(self, endpoint_id: str, draining: bool = True) -> tuple[list[str], int]:
        path = "/admin/drain" if draining else "/admin/undrain"
        results = await asyncio.gather(
            *(self._post(url + path, {"endpoint": endpoint_id}) for url in self.urls)
        )
        failed = [url for url, status in zip(self.urls, results, strict=True) if status is None]
        return failed, sum(1 for status in results if status == 200)

    async def _post(self, url: str, body: dict[str, object]) -> int | None:
        """200 (done), 404 (unknown there) or None (failed)."""
        try:
            response = await self._client.post(url, json=body)
        except httpx2.HTTPError as exc:
            log.warning("POST %s failed: %s", url, _describe(exc))
            return None
        if response.status_code in (200, 404):
            return response.status_code
        log.warning("POST %s answered %d", url, response.status_code)
        return None


def _describe(exc: Exception) -> str:
    if isinstance(exc, httpx2.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return str(exc) or type(exc).__name__
