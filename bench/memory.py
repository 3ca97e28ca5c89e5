"""``python -m bench.memory``: resident memory of each idle Tandem service (aim <= 150 MB).

Starts an embedded broker and every service as its own uvicorn process on SQLite, waits until
each is ready and connected, leaves them idle for ``--idle`` seconds, then reads VmRSS and the
peak VmHWM from /proc.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import httpx

from bench.harness import Services, broker, machine, rss_mb

NAMES = ["incidents", "changes", "deployments", "dashboard"]


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--idle", type=float, default=15.0)
    args = parser.parse_args(argv)
    print(f"memory: {machine()}")
    with broker() as b, tempfile.TemporaryDirectory() as tmp, \
            Services(b.bootstrap, Path(tmp), NAMES) as services:
        deadline = time.monotonic() + 60
        for name in NAMES:
            while httpx.get(f"{services.url(name)}/readyz").json().get("broker") not in (
                    "connected", "n/a") and time.monotonic() < deadline:
                time.sleep(0.2)
        time.sleep(args.idle)
        figures = {}
        for name in NAMES:
            rss, peak = rss_mb(services.processes[name].pid)
            figures[name] = rss
            verdict = "within" if rss <= 150 else "OVER"
            print(f"  {name:12s} RSS {rss:6.1f} MB (peak {peak:6.1f} MB) {verdict} the 150 MB aim")
        assert b.process is not None
        print(f"  {'broker':12s} RSS {rss_mb(b.process.pid)[0]:6.1f} MB (embedded Tansu)")
    return figures


if __name__ == "__main__":
    main()
