"""The ``tandem dev`` fault drills, run as a script inside a network namespace of their own:

    unshare -n --fork bash -c 'ip link set lo up; exec python dev_drills.py SCENARIO WORK REPORT'

``restart``: failing production deployments at a steady rate, the incidents service paused
(SIGSTOP) so their events pile up unapplied, SIGINT to the whole ``tandem dev`` (the paused
service is killed by its shutdown timeout), ``tandem dev`` again on the same var dir with a new,
empty embedded broker; then every failed deployment has one incident, every open major incident
its freeze, the board agrees with the APIs, and ``tandem events tail --from-beginning`` prints
the whole history.

``sigkill``: load on every service while each service in turn, then the embedded broker, is
SIGKILLed; ``tandem dev`` starts each again by itself (with a new broker, the services that
publish too), nothing accepted is lost, no reaction is missing or doubled; a second
``tandem dev`` meanwhile exits 1 with one line and disturbs nothing.

The JSON report at REPORT holds the figures and, on failure, the error; the exit code is 0 when
the drill held, 1 when it did not. Everything the drill starts is stopped before it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import time
import traceback
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# Run as a script: the fault suite's modules and the e2e package beside it.
sys.path[:0] = [str(HERE), str(HERE.parent)]

import httpx  # noqa: E402
from devstack import TANDEM, DevStack  # noqa: E402
from load import Ledger, Load, new_tag, verify  # noqa: E402

#: Every wait of a drill ends by itself; the whole drill stays well under four minutes.
RECOVERY_TIMEOUT_S = 120.0
OWNERS = ("incidents", "changes", "deployments")
INCIDENT_OVER = ("resolved", "closed", "canceled")


class DrillFailed(AssertionError):
    """What the drill found wrong, in a sentence."""


# --- reading the stack ---------------------------------------------------------------------


async def every_item(client: httpx.AsyncClient, stack: DevStack, service: str, path: str,
                     role: str = "viewer", **params: Any) -> list[dict[str, Any]]:
    """Every item of a list endpoint, page by page (bounded)."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(200):
        query = {**params, "limit": 200, **({"cursor": cursor} if cursor else {})}
        r = await client.get(f"{stack.url(service)}{path}", params=query,
                             headers=stack.headers(role))
        if r.status_code != 200:
            raise DrillFailed(f"GET {service} {path}: {r.status_code} {r.text[:200]}")
        body = r.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            return items
    raise DrillFailed(f"{service} {path} has more than 200 pages")


async def across_the_wall(client: httpx.AsyncClient, stack: DevStack) -> tuple[list[str],
                                                                             dict[str, int]]:
    """What does not (yet) agree: S2 once per failed production deployment, S4's freeze for
    every open major incident, the board's counts against the APIs'. Returns the disagreements
    and the counts."""
    failed = await every_item(client, stack, "deployments", "/api/v1/deployments",
                              status="failed", environment="production")
    incidents = await every_item(client, stack, "incidents", "/api/v1/incidents")
    freezes = await every_item(client, stack, "changes", "/api/v1/freezes")
    all_freezes = await every_item(client, stack, "changes", "/api/v1/freezes",
                                   status="scheduled,active,ended")
    r = await client.get(f"{stack.url('dashboard')}/api/v1/board",
                         headers=stack.headers("viewer"))
    if r.status_code != 200:
        raise DrillFailed(f"GET dashboard /api/v1/board: {r.status_code} {r.text[:200]}")
    board = r.json()
    wrong: list[str] = []
    caused = Counter(i["cause_deployment_id"] for i in incidents if i.get("cause_deployment_id"))
    for deployment in failed:
        if caused[deployment["id"]] != 1:
            wrong.append(f"{deployment['number']} failed: {caused[deployment['id']]} incidents")
    open_ = [i for i in incidents if i["status"] not in INCIDENT_OVER]
    major = [i for i in open_ if i["priority"] <= 2]
    active = Counter(f["incident_id"] for f in freezes
                     if f["source"] == "incident" and f["status"] == "active")
    for incident in major:
        if active[incident["id"]] != 1:
            wrong.append(f"{incident['number']} (P{incident['priority']}): "
                         f"{active[incident['id']]} active freezes")
    per_incident = Counter(f["incident_id"] for f in all_freezes if f["source"] == "incident")
    wrong += [f"incident {i}: {n} freezes" for i, n in per_incident.items() if n > 1]
    on_board = {"open incidents": len(board["incidents"]["open"]),
                "freezes": len(board["freezes"])}
    in_apis = {"open incidents": len(open_), "freezes": len(freezes)}
    wrong += [f"board shows {on_board[k]} {k}, the API {in_apis[k]}" for k in in_apis
              if on_board[k] != in_apis[k]]
    return wrong, {"failed_deployments": len(failed), "incidents": len(incidents),
                   "open_incidents": len(open_), "open_major_incidents": len(major),
                   "freezes": len(freezes), "board_events_applied": board["events_applied"]}


async def settle(client: httpx.AsyncClient, stack: DevStack, timeout: float
                 ) -> tuple[float, dict[str, int]]:
    """Until everything agrees across the wall; returns how long that took, and the counts."""
    started = time.monotonic()
    while True:
        wrong, counts = await across_the_wall(client, stack)
        if not wrong:
            return time.monotonic() - started, counts
        if time.monotonic() - started > timeout:
            raise DrillFailed(f"not settled in {timeout:.0f}s: {len(wrong)} disagreements, "
                              f"such as {wrong[:8]}")
        await asyncio.sleep(1)


async def no_dead_letters(client: httpx.AsyncClient, stack: DevStack) -> None:
    """A crash or a restart is no reason for a dead letter (none of the drills' events is bad)."""
    for service in OWNERS:
        letters = await every_item(client, stack, service, "/api/v1/dead-letters", "manager")
        if letters:
            raise DrillFailed(f"{service} dead-lettered {len(letters)} events, such as "
                              f"{letters[0]}")


#: What a reader of the topics says when it finds that the broker lost what it had read.
LOST_LINE = "no longer holds what"


def false_alarms(stack: DevStack) -> None:
    """Nobody claims the broker lost events while the broker lost nothing (a reader that does
    reads every partition again from its start, at every check)."""
    if said := [line for line in stack.stderr().splitlines() if LOST_LINE in line]:
        raise DrillFailed(f"{len(said)} claims that the broker lost events it held, such as "
                          f"{said[0][:300]}")


def database(stack: DevStack, service: str) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{stack.var_dir / f'{service}.db'}?mode=ro", uri=True,
                           timeout=10)


def outbox(stack: DevStack) -> tuple[set[uuid.UUID], int]:
    """Every event id in the three outboxes (the retained history), and how many are unsent."""
    ids: set[uuid.UUID] = set()
    unsent = 0
    for service in OWNERS:
        with contextlib.closing(database(stack, service)) as db:
            ids |= {uuid.UUID(str(row[0])) for row in db.execute("SELECT id FROM outbox")}
            unsent += db.execute(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL").fetchone()[0]
    return ids, unsent


def unapplied_failures(stack: DevStack, failed: set[str]) -> int:
    """Of the ``failed`` deployments, how many the incidents database holds no incident for
    (read from the file of a crashed service: the backlog its next start must work off)."""
    with contextlib.closing(database(stack, "incidents")) as db:
        caused = {uuid.UUID(str(row[0])) for row in db.execute(
            "SELECT cause_deployment_id FROM incident WHERE cause_deployment_id IS NOT NULL")}
    return len({uuid.UUID(d) for d in failed} - caused)


async def whole_history_tailed(stack: DevStack, timeout: float = RECOVERY_TIMEOUT_S
                               ) -> dict[str, int]:
    """``tandem events tail --from-beginning --idle 2`` prints every retained event."""
    deadline = time.monotonic() + timeout
    while (unsent := outbox(stack)[1]) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    if unsent:
        raise DrillFailed(f"{unsent} outbox events still unsent after {timeout:.0f}s")
    history, _ = outbox(stack)
    tail = await asyncio.to_thread(
        subprocess.run, [TANDEM, "events", "tail", "--from-beginning", "--idle", "2", "--json"],
        env=stack.cli_env(), capture_output=True, timeout=90, check=False)
    if tail.returncode != 0:
        raise DrillFailed(f"tandem events tail exited {tail.returncode}: "
                          f"{tail.stderr.decode(errors='replace')[-500:]}")
    printed = [json.loads(line) for line in tail.stdout.decode().splitlines() if line.strip()]
    seen = {uuid.UUID(e["id"]) for e in printed}
    if missing := history - seen:
        raise DrillFailed(f"tandem events tail printed {len(printed)} events; {len(missing)} of "
                          f"the {len(history)} retained are missing")
    return {"history": len(history), "tailed": len(printed)}


# --- the drills ----------------------------------------------------------------------------


async def restart_drill(stack: DevStack, report: dict[str, Any]) -> None:
    report["first_start_s"] = round(stack.start(), 1)
    stack.wait_ready()
    async with httpx.AsyncClient(timeout=10) as client:
        await verify(stack, Ledger("warm"))  # every consumer is in its group before the load
        async with Load(stack, new_tag("restart"), per_second=4) as load:
            await asyncio.sleep(4)
            stack.signal("incidents", signal.SIGSTOP)
            paused_at = time.monotonic()
            failed_before = len(load.ledger.failed)
            await asyncio.sleep(14)
        ledger = load.ledger
        false_alarms(stack)
        report["paused_s"] = round(time.monotonic() - paused_at, 1)
        report["failed_while_paused"] = len(ledger.failed) - failed_before
        code, took = stack.interrupt()
        report["first_stop"] = {"exit_code": code, "seconds": round(took, 1)}
        if code != 0 or "stopped" not in stack.stdout():
            raise DrillFailed(f"tandem dev exited {code} on SIGINT:\n{stack.stderr()[-800:]}")
        if left := stack.stop():
            raise DrillFailed(f"tandem dev left processes behind: {left}")
        report["backlog_unapplied"] = unapplied_failures(stack, ledger.failed)
        if report["backlog_unapplied"] == 0:
            raise DrillFailed("the paused incidents service left no backlog to recover")

        restarted = time.monotonic()
        report["second_start_s"] = round(stack.start(), 1)
        stack.wait_ready(timeout=RECOVERY_TIMEOUT_S)
        figures = await verify(stack, ledger, timeout=RECOVERY_TIMEOUT_S)
        report["reactions_after_s"] = round(time.monotonic() - restarted, 1)
        _, counts = await settle(client, stack, RECOVERY_TIMEOUT_S)
        report["recovery_s"] = round(time.monotonic() - restarted, 1)
        report["load"] = figures
        report["counts"] = counts
        if figures["failed"] < 20:
            raise DrillFailed(f"too few failed deployments to mean anything: {figures}")
        await no_dead_letters(client, stack)
        false_alarms(stack)
        report["tail"] = await whole_history_tailed(stack)
        report["restarts"] = [line for name in [*stack.services, "broker"]
                              for line in stack.restart_lines(name)]


async def sigkill_drill(stack: DevStack, report: dict[str, Any]) -> None:
    report["start_s"] = round(stack.start(), 1)
    stack.wait_ready()
    kills: list[dict[str, Any]] = []
    async with httpx.AsyncClient(timeout=10) as client:
        await verify(stack, Ledger("warm"))
        async with Load(stack, new_tag("kill"), per_second=4) as load:
            for name in ("incidents", "changes", "deployments", "dashboard"):
                await asyncio.sleep(3)
                kills.append(await kill_and_wait(stack, name))
            report["second_dev"] = await second_dev_refused(stack)
            false_alarms(stack)  # the broker lost nothing so far
            await asyncio.sleep(3)
            # Last, the embedded broker: a new, empty one, and the services that publish again.
            kills.append(await kill_and_wait(stack, "broker"))
            await asyncio.sleep(3)
        report["kills"] = kills
        figures = await verify(stack, load.ledger, timeout=RECOVERY_TIMEOUT_S)
        report["load"] = figures
        if figures["refused"] == 0:
            raise DrillFailed("the kills refused no write: they did not land under load")
        if figures["failed"] < 20:
            raise DrillFailed(f"too few failed deployments to mean anything: {figures}")
        report["settle_s"], report["counts"] = await settle(client, stack, 60)
        await no_dead_letters(client, stack)
        report["restarts"] = [line for name in [*stack.services, "broker"]
                              for line in stack.restart_lines(name)]
        code, took = stack.interrupt()
        report["stop"] = {"exit_code": code, "seconds": round(took, 1)}
        if code != 0:
            raise DrillFailed(f"tandem dev exited {code} on SIGINT:\n{stack.stderr()[-800:]}")


async def kill_and_wait(stack: DevStack, name: str, timeout: float = 60) -> dict[str, Any]:
    """SIGKILL ``name`` (a service, or ``broker``); ``tandem dev`` must say so and start it
    again (for the broker: with the services that publish, so their history comes first), and
    it (every service, for the broker) must be ready with the broker connected."""
    restarted = [*OWNERS] if name == "broker" else [name]
    watched = [name, *restarted] if name == "broker" else [name]
    before = {n: len(stack.restart_lines(n)) for n in watched}
    old = stack.signal(name, signal.SIGKILL)
    killed = time.monotonic()
    needed = stack.services if name == "broker" else [name]
    while True:
        await asyncio.sleep(0.3)
        lines = [line for n in watched for line in stack.restart_lines(n)[before[n]:]]
        new = None
        with contextlib.suppress(LookupError):
            new = stack.pid(name)
        back = all(any(line.startswith(f"{n} restarted") for line in lines) for n in restarted)
        if (new not in (None, old) and back
                and all([await asyncio.to_thread(stack.ready, n) for n in needed])):
            return {"process": name, "back_s": round(time.monotonic() - killed, 1),
                    "lines": lines}
        if time.monotonic() - killed > timeout:
            raise DrillFailed(f"{name} not back {timeout:.0f}s after SIGKILL; supervisor said "
                              f"{lines}; stderr:\n{stack.stderr()[-800:]}")


async def second_dev_refused(stack: DevStack) -> dict[str, Any]:
    """A second ``tandem dev`` beside the running one: exit 1, one line, nothing disturbed."""
    pids = {name: stack.pid(name) for name in [*stack.services, "broker"]}
    supervisor_before = {name: stack.restart_lines(name) for name in pids}
    second = await asyncio.to_thread(subprocess.run, [TANDEM, "dev"], env=stack.env,
                                     capture_output=True, timeout=60, check=False,
                                     cwd=stack.var_dir.parent)
    err = second.stderr.decode(errors="replace").strip().splitlines()
    out = second.stdout.decode(errors="replace").strip()
    if second.returncode != 1 or len(err) != 1 or out:
        raise DrillFailed(f"a second tandem dev exited {second.returncode} with stdout {out!r} "
                          f"and stderr {err!r}")
    after = {name: stack.pid(name) for name in pids}
    supervisor_after = {name: stack.restart_lines(name) for name in pids}
    if after != pids or supervisor_after != supervisor_before:
        raise DrillFailed(f"a second tandem dev disturbed the first: {pids} -> {after}; "
                          f"{supervisor_after}")
    not_ready = [n for n in stack.services if not await asyncio.to_thread(stack.ready, n)]
    if not_ready:
        raise DrillFailed(f"after a second tandem dev, not ready: {not_ready}")
    return {"exit_code": second.returncode, "line": err[0]}


DRILLS = {"restart": restart_drill, "sigkill": sigkill_drill}


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in DRILLS:
        print(f"usage: dev_drills.py {{{'|'.join(DRILLS)}}} WORK_DIR REPORT", file=sys.stderr)
        return 2
    scenario, work, report_path = argv[0], Path(argv[1]), Path(argv[2])
    work.mkdir(parents=True, exist_ok=True)

    def on_term(signum: int, _: object) -> None:
        raise KeyboardInterrupt  # the finally below stops the stack

    signal.signal(signal.SIGTERM, on_term)
    stack = DevStack(work / "var")
    report: dict[str, Any] = {"scenario": scenario, "ok": False, "error": None}
    started = time.monotonic()
    try:
        asyncio.run(DRILLS[scenario](stack, report))
        report["ok"] = True
    except BaseException as exc:  # the report says what went wrong, whatever it was
        report["error"] = f"{type(exc).__name__}: {exc}"
        report["traceback"] = traceback.format_exc()[-4000:]
    finally:
        left = stack.stop()
        if left:
            report["ok"] = False
            report["left_behind"] = left
        report["seconds"] = round(time.monotonic() - started, 1)
        report["dev_stderr"] = stack.all_stderr()[-6000:]
        report_path.write_text(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
