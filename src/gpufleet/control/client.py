"""``gpufleet preempt``: post a manual notice to ``gpufleet up`` or ``gpufleet controller``."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from gpufleet.control.admin import PREEMPT_PATH
from gpufleet.errors import GpufleetError


def request_preemption(
    url: str, replica: str, notice_s: float, admin_key: str | None = None, timeout_s: float = 10.0
) -> str:
    """POST the notice; returns a one-line summary, raises GpufleetError with the reason."""
    base = url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise GpufleetError(f"not an http(s) URL: {url!r}")
    headers = {"content-type": "application/json"}
    if admin_key:
        headers["authorization"] = f"Bearer {admin_key}"
    body = json.dumps({"replica": replica, "notice_s": notice_s}).encode()
    request = urllib.request.Request(base + PREEMPT_PATH, body, headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise GpufleetError(_refusal(base, exc)) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise GpufleetError(
            f"cannot reach {base}: {reason} (is `gpufleet up` or `gpufleet controller` running?)"
        ) from None
    except ValueError:
        raise GpufleetError(f"{base}{PREEMPT_PATH} did not answer JSON") from None
    where = answer.get("replacement")
    return (
        f"{answer.get('replica')}: draining; notice {notice_s:g} s "
        f"({float(answer.get('notice_wall_s', notice_s)):.3g} s wall); "
        + (f"replacement requested in {where}" if where else "already under notice")
    )


def _refusal(base: str, exc: urllib.error.HTTPError) -> str:
    try:
        error = json.loads(exc.read()).get("error", {})
    except (ValueError, AttributeError):
        error = {}
    message = error.get("message") if isinstance(error, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    if exc.code == 404 and code != "replica_not_found":
        return (
            f"{base} has no {PREEMPT_PATH} (it is neither `gpufleet up` nor "
            "`gpufleet controller`, or its admin routes are off)"
        )
    return f"{base} refused: {message or f'HTTP {exc.code}'}"
