"""A one-shot wall-clock alarm precise to ~0.1 ms, for engines running faster than real time.

The event loop's timers have millisecond granularity: uvloop rounds a delay to
the nearest millisecond and fires against a loop clock of millisecond
resolution (measured on an idle loop: −0.5 to +0.6 ms from the target), and
asyncio's epoll wait rounds up (+0.1 to +1.2 ms). A simulated engine at 10x
speed multiplies that error by ten: every step ending ±5 ms of model time off,
noise in every TTFT and inter-token gap a benchmark measures. On Linux the alarm
is a ``timerfd`` armed at an absolute monotonic time in nanoseconds and watched
by the loop as a reader (measured: +0.03 to +0.16 ms, the kernel's timer slack
and one wake-up); elsewhere, or where timerfd is unavailable, it falls back to
the loop's ``call_at``.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import sys
import time
from collections.abc import Callable

_CLOCK_MONOTONIC = 1
_TFD_NONBLOCK = 0o4000
_TFD_CLOEXEC = 0o2000000
_TFD_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


class WallTimer:
    """At most one pending alarm: ``call_at`` replaces it, ``cancel`` drops it. Times are
    ``time.monotonic()`` seconds (CLOCK_MONOTONIC, the clock timerfd is armed on)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, precise: bool = True):
        self._loop = loop
        self._callback: Callable[[], None] | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._fd = -1
        self._settime: Callable[..., int] | None = None
        if precise and sys.platform == "linux":
            self._open_timerfd()

    @property
    def precise(self) -> bool:
        """Whether alarms go through a timerfd (else: the loop's millisecond timers)."""
        return self._fd >= 0

    def _open_timerfd(self) -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = int(libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC))
        except (OSError, AttributeError):
            return
        if fd < 0:
            return
        self._fd = fd
        self._settime = libc.timerfd_settime
        self._loop.add_reader(fd, self._on_readable)

    def call_at(self, when: float, callback: Callable[[], None]) -> None:
        self.cancel()
        self._callback = callback
        if self._settime is not None and self._arm(when):
            return
        self._handle = self._loop.call_at(self._loop.time() + when - time.monotonic(), self._fire)

    def _arm(self, when: float) -> bool:
        assert self._settime is not None
        seconds = int(when)
        nanoseconds = max(int((when - seconds) * 1e9), 0 if seconds else 1)  # 0/0 disarms
        spec = _Itimerspec(_Timespec(0, 0), _Timespec(seconds, nanoseconds))
        return self._settime(self._fd, _TFD_TIMER_ABSTIME, ctypes.byref(spec), None) == 0

    def cancel(self) -> None:
        self._callback = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        # an armed timerfd may still become readable: _on_readable finds no callback

    def close(self) -> None:
        self.cancel()
        if self._fd >= 0:
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1
            self._settime = None

    def _on_readable(self) -> None:
        try:
            os.read(self._fd, 8)
        except BlockingIOError:
            return
        self._fire()

    def _fire(self) -> None:
        self._handle = None
        callback, self._callback = self._callback, None
        if callback is not None:
            callback()
