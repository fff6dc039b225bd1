"""The fleet page: ``GET /dashboard`` (one self-contained HTML page) and the JSON it polls,
``GET /dashboard/fleet`` (also at ``GET /admin/fleet`` for scripts).

With API keys on, both need the admin key, like ``/admin/*``: as ``Authorization: Bearer
KEY``, or, so that a browser can open the page, as the password of HTTP Basic auth (any
user name). A request without it gets 401 with ``WWW-Authenticate: Basic``, which makes
the browser ask once and then send it with every poll of the page.

The page is read from package data once, at construction; the JSON is built per poll by
``FleetView`` (off the request path).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from importlib.resources import files

import orjson

from gpufleet.api.dashboard_data import FleetView
from gpufleet.api.errors import error_response
from gpufleet.api.server import Request, Responder
from gpufleet.errors import AuthenticationError
from gpufleet.gateway.proxy import Proxy

PAGE_HEADERS = (
    b"content-type: text/html; charset=utf-8\r\n"
    b"cache-control: no-store\r\n"
    b"x-content-type-options: nosniff\r\n"
    b"x-frame-options: DENY\r\n"
    b"referrer-policy: no-referrer\r\n"
    b"content-security-policy: default-src 'none'; style-src 'unsafe-inline'; "
    b"script-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; "
    b"form-action 'none'; frame-ancestors 'none'\r\n"
)
JSON_HEADERS = b"content-type: application/json\r\ncache-control: no-store\r\n"
CHALLENGE = b'www-authenticate: Basic realm="gpufleet admin", charset="UTF-8"\r\n'


def basic_as_bearer(headers: Mapping[str, str]) -> Mapping[str, str]:
    """Headers whose ``Authorization: Basic base64(user:KEY)`` reads as ``Bearer KEY``;
    any other header (or a malformed Basic value) is returned unchanged."""
    value = headers.get("authorization")
    if not value:
        return headers
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "basic":
        return headers
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return headers
    _, separator, password = decoded.partition(":")
    if not separator or not password:
        return headers
    return {**headers, "authorization": f"Bearer {password}"}


class Dashboard:
    """The two routes of the fleet page of one gateway."""

    def __init__(self, proxy: Proxy):
        self.proxy = proxy
        self.view = FleetView(proxy)
        self._page = files("gpufleet").joinpath("data/dashboard.html").read_bytes()

    def _authorized(self, request: Request, responder: Responder) -> bool:
        guard = self.proxy.tenancy
        if guard is None:
            return True
        try:
            guard.check_admin(basic_as_bearer(request.headers))
        except AuthenticationError as exc:
            status, headers, body = error_response(exc)
            responder.send(status, headers + CHALLENGE, body)
            return False
        return True

    async def page(self, request: Request, responder: Responder) -> None:
        if self._authorized(request, responder):
            responder.send(200, PAGE_HEADERS, self._page)

    async def data(self, request: Request, responder: Responder) -> None:
        if self._authorized(request, responder):
            responder.send(200, JSON_HEADERS, orjson.dumps(self.view.document()))
