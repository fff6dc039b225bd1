"""Where requests go and the bytes that carry them.

`Target` is the parsed ``--url``: ``http(s)://host[:port][/prefix]`` — a bare
server URL gets ``/v1/chat/completions`` or ``/v1/completions``, a URL ending
in ``/v1`` gets ``/chat/completions`` or ``/completions``, and a URL that
already names one of those paths is used as it is. `RequestEncoder` turns a
`RequestSpec` into one complete HTTP/1.1 request: a constant header block
prepared once, the per-request labels as headers (``x-session-id``,
``x-tenant``, ``x-priority``, ``x-request-class``), and the JSON body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson

from gpufleet.workload.spec import RequestSpec

Endpoint = Literal["chat", "completions"]
_PATHS = {"chat": "/chat/completions", "completions": "/completions"}


@dataclass(frozen=True, slots=True)
class Target:
    host: str
    port: int
    tls: bool
    path: str
    """The request path, e.g. ``/v1/chat/completions``."""
    base_path: str
    """The path up to and including ``/v1`` (for ``GET .../models``)."""

    @property
    def host_header(self) -> str:
        default = 443 if self.tls else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"

    @classmethod
    def parse(cls, url: str, endpoint: Endpoint) -> Target:
        """The target of ``url``; ``ValueError`` with a reason when it is not usable."""
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"--url {url!r}: expected http(s)://host[:port][/path]")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise ValueError(f"--url {url!r}: invalid port") from None
        path = parts.path.rstrip("/")
        for known in _PATHS.values():
            if path.endswith(known):
                return cls(parts.hostname, port, parts.scheme == "https", path,
                           path[: -len(known)])  # fmt: skip
        base = path if path.endswith("/v1") else path + "/v1"
        return cls(parts.hostname, port, parts.scheme == "https", base + _PATHS[endpoint], base)


@dataclass(frozen=True, slots=True)
class RequestOptions:
    endpoint: Endpoint
    model: str
    stream: bool = True
    ignore_eos: bool = False
    headers: tuple[tuple[str, str], ...] = ()
    """Extra headers sent with every request (``--header``, ``--api-key``)."""


class RequestEncoder:
    """Bytes of the request for a spec (module doc)."""

    def __init__(self, target: Target, options: RequestOptions):
        self._options = options
        lines = [
            f"POST {target.path} HTTP/1.1",
            f"host: {target.host_header}",
            "content-type: application/json",
            "user-agent: gpufleet-bench",
            *(f"{name}: {value}" for name, value in options.headers),
        ]
        self._head = ("\r\n".join(lines) + "\r\n").encode("latin-1")
        self._extra: dict[str, Any] = {"stream": options.stream}
        if options.stream:
            self._extra["stream_options"] = {"include_usage": True}
        if options.ignore_eos:
            self._extra["ignore_eos"] = True

    def encode(self, spec: RequestSpec) -> bytes:
        options = self._options
        body: dict[str, Any] = {"model": spec.model or options.model}
        if options.endpoint == "chat":
            body["messages"] = [{"role": m.role, "content": m.content} for m in spec.messages]
        else:
            body["prompt"] = spec.prompt
        body["max_tokens"] = spec.max_tokens
        body.update(self._extra)
        payload = orjson.dumps(body)
        labels = b""
        if spec.session_id is not None:
            labels += b"x-session-id: " + spec.session_id.encode("latin-1") + b"\r\n"
        if spec.tenant is not None:
            labels += b"x-tenant: " + spec.tenant.encode("latin-1") + b"\r\n"
        if spec.priority is not None:
            labels += b"x-priority: %d\r\n" % spec.priority
        if spec.request_class is not None:
            labels += b"x-request-class: " + spec.request_class.encode("latin-1") + b"\r\n"
        return b"%s%scontent-length: %d\r\n\r\n%s" % (self._head, labels, len(payload), payload)


def models_request(target: Target, headers: tuple[tuple[str, str], ...]) -> bytes:
    """``GET <base>/models`` closing the connection after the answer."""
    lines = [f"GET {target.base_path}/models HTTP/1.1", f"host: {target.host_header}",
             "connection: close", *(f"{name}: {value}" for name, value in headers)]  # fmt: skip
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
