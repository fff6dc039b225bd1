"""The one exception hierarchy of gpufleet.

::

    GpufleetError
    ├── ConfigError                 fleet.yaml / environment is invalid (key path + reason)
    ├── RequestError                the client's request is wrong (4xx, never retried)
    │   ├── InvalidRequest          400: malformed JSON, wrong types, missing fields
    │   ├── AuthenticationError     401: missing or unknown API key
    │   ├── PermissionDenied        403: key not allowed for this model / endpoint
    │   ├── NotFound                404: unknown model or route
    │   ├── MethodNotAllowed        405
    │   └── PayloadTooLarge         413: body over the configured limit
    ├── CapacityError               the fleet cannot take it now (429/503 + Retry-After)
    │   ├── RateLimited             429: quota, rate limit or shed by admission
    │   └── NoCapacity              503: no healthy replica for the model
    └── BackendError                an engine replica failed us
        ├── BackendUnavailable      refused, reset or timed out before the first byte (retryable)
        ├── BackendStatusError      the replica answered 5xx or 429 (retryable before 1st byte)
        └── StreamBroken            failed after bytes reached the client (not retryable)

Foreign exceptions (OSError, httptools, orjson, pydantic) are translated into
this tree where they enter gpufleet; the HTTP mapping lives only in ``api/``.
"""

from __future__ import annotations


class GpufleetError(Exception):
    """Base of every error gpufleet raises on purpose."""


class ConfigError(GpufleetError):
    """The configuration is invalid; the message names the key path and the reason."""


class RequestError(GpufleetError):
    """The request itself is wrong. ``param`` names the offending field when known."""

    status = 400
    error_type = "invalid_request_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code


class InvalidRequest(RequestError):
    status = 400


class AuthenticationError(RequestError):
    status = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(RequestError):
    status = 403
    error_type = "permission_error"


class NotFound(RequestError):
    status = 404
    error_type = "not_found_error"
    code = "model_not_found"


class MethodNotAllowed(RequestError):
    status = 405


class PayloadTooLarge(RequestError):
    status = 413
    code = "payload_too_large"


class CapacityError(GpufleetError):
    """The fleet cannot serve the request now; the client should retry after ``retry_after_s``."""

    status = 503
    error_type = "service_unavailable"
    code = "no_capacity"

    def __init__(self, message: str, *, retry_after_s: float = 1.0):
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s


class RateLimited(CapacityError):
    status = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"


class NoCapacity(CapacityError):
    status = 503


class BackendError(GpufleetError):
    """A replica failed. ``retryable`` is true while nothing has reached the client."""

    retryable = True

    def __init__(self, message: str, *, endpoint_id: str = ""):
        super().__init__(message)
        self.message = message
        self.endpoint_id = endpoint_id


class BackendUnavailable(BackendError):
    """Connection refused or reset, or a timeout before the first byte.

    ``stale_connection``: a reused keep-alive connection closed before any
    response byte; retrying on a fresh connection to the same replica is safe.
    """

    def __init__(self, message: str, *, endpoint_id: str = "", stale_connection: bool = False):
        super().__init__(message, endpoint_id=endpoint_id)
        self.stale_connection = stale_connection


class BackendStatusError(BackendError):
    """The replica answered with a 5xx or 429 status."""

    def __init__(self, message: str, *, status: int, body: bytes, endpoint_id: str = ""):
        super().__init__(message, endpoint_id=endpoint_id)
        self.status = status
        self.body = body


class StreamBroken(BackendError):
    """The replica failed after part of the response had been relayed."""

    retryable = False
