"""The one place that maps gpufleet errors to HTTP: OpenAI's error shape.

``{"error": {"message", "type", "param", "code"}}`` with the status of the
error class; capacity errors carry ``Retry-After``.
"""

from __future__ import annotations

import math

import orjson

from gpufleet.errors import BackendError, CapacityError, GpufleetError, RequestError


def error_body(message: str, error_type: str, param: str | None, code: str | int | None) -> bytes:
    return orjson.dumps(
        {"error": {"message": message, "type": error_type, "param": param, "code": code}}
    )


def error_response(error: GpufleetError, request_id: str = "") -> tuple[int, bytes, bytes]:
    """(status, header lines, body) for ``error``."""
    headers = b"content-type: application/json\r\n"
    if request_id:
        headers += b"x-request-id: %s\r\n" % request_id.encode()
    if isinstance(error, RequestError):
        body = error_body(error.message, error.error_type, error.param, error.code)
        return error.status, headers, body
    if isinstance(error, CapacityError):
        retry_after = max(1, math.ceil(error.retry_after_s))
        headers += b"retry-after: %d\r\n" % retry_after
        body = error_body(error.message, error.error_type, None, error.code)
        return error.status, headers, body
    if isinstance(error, BackendError):
        message = f"the model replicas failed to answer: {error.message}"
        body = error_body(message, "upstream_error", None, "bad_gateway")
        return 502, headers, body
    body = error_body(str(error), "server_error", None, "internal_error")
    return 500, headers, body
