"""Print the stored form of an API key read from stdin: ``sha256:<hex>``.

Usage: ``printf %s "$KEY" | python -m gpufleet.tenancy.hash_key``. One trailing
newline is stripped (so ``echo`` works too); the key is never echoed.
"""

from __future__ import annotations

import sys

from gpufleet.tenancy.keys import hash_key


def main() -> int:
    key = sys.stdin.read()
    key = key.removesuffix("\n").removesuffix("\r")
    if not key:
        print("hash_key: no key on stdin", file=sys.stderr)
        return 2
    print(hash_key(key))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
