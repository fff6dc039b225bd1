"""Tenants, API keys and quotas.

Pure parts (no I/O, time passed in): ``settings``, ``keys``, ``buckets``, ``quota``,
``breaker``, ``usage``, ``memory_store``. I/O: ``redis_store`` (the shared store) and
``guard`` (the gateway's one entry point). ``hash_key`` is a command-line helper.
"""
