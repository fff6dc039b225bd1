"""The simulator's own error. Kept out of the mypyc-compiled modules (``setup.py``):
compiled classes cannot subclass built-in exceptions."""

from __future__ import annotations


class SimulationError(RuntimeError):
    """The simulation broke one of its invariants (a bug, not an input error)."""
