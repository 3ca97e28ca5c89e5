"""``python -m bench``: every benchmark (``make bench``); ``python -m bench NAME [options]`` runs
one: ``storm`` (the write paths under wrk against bare and raw-driver baselines, the default),
``propagation``, ``relay``, ``catchup``, ``memory``. Options without a name go to ``storm``.
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = ("storm", "propagation", "relay", "catchup", "memory")


def main() -> None:
    """``python -m bench`` runs every benchmark; ``python -m bench NAME [options]`` runs one."""
    if len(sys.argv) > 1 and sys.argv[1] in BENCHMARKS:
        chosen, rest = [sys.argv[1]], sys.argv[2:]
    elif len(sys.argv) > 1 and sys.argv[1].startswith("-"):
        chosen, rest = ["storm"], sys.argv[1:]  # options of the storm benchmark
    elif len(sys.argv) > 1:
        raise SystemExit(f"unknown benchmark {sys.argv[1]!r}; one of: {', '.join(BENCHMARKS)}")
    else:
        chosen, rest = list(BENCHMARKS), []
    for name in chosen:
        print(f"\n=== {name} ===", flush=True)
        importlib.import_module(f"bench.{name}").main(rest)


if __name__ == "__main__":
    main()
