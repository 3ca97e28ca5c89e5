"""What every CLI command shares: the service URLs and token, HTTP calls, errors and output."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, NoReturn

import httpx
import typer

from tandem_cli.config import ConfigError, Profile, load_profile

#: Exit codes every command uses; ``deploy`` adds 3 (prevented) and 4 (still awaiting).
EXIT_ERROR = 1
EXIT_USAGE = 2

def command_group(help: str, **options: Any) -> typer.Typer:
    """A group of commands: plain help (no boxes), help when called without a command."""
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None, **options)


def cli_version() -> str:
    """The installed ``tandem-cli`` distribution's version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tandem-cli")
    except PackageNotFoundError:
        return "unknown"


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for machines")]


class CommandError(Exception):
    """A failure to report on stderr as one line (never a traceback) with a non-zero exit."""

    def __init__(self, message: str, *, problem: dict[str, Any] | None = None,
                 exit_code: int = EXIT_ERROR, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient
        self.message = message
        self.problem = problem
        self.exit_code = exit_code


def current_profile() -> Profile:
    """The configuration profile in force; an unusable config file is a usage error."""
    try:
        return load_profile()
    except ConfigError as exc:
        raise CommandError(str(exc), exit_code=EXIT_USAGE) from None


def service_url(service: str, profile: Profile | None = None) -> str:
    """``TANDEM_URL_<SERVICE>``, else the profile's URL, else the embedded default
    (``http://127.0.0.1:8001``...)."""
    configured = os.environ.get(f"TANDEM_URL_{service.upper()}")
    if configured:
        return configured.rstrip("/")
    profile = profile or current_profile()
    if service in profile.urls:
        return profile.urls[service]
    from tandem.settings import SERVICES

    return f"http://127.0.0.1:{SERVICES[service]}"


def _problem_line(status: int, body: Any) -> str:
    if not isinstance(body, dict):
        return f"HTTP {status}"
    line = f"{status} {body.get('title', '')}".rstrip()
    if body.get("detail"):
        line += f": {body['detail']}"
    if isinstance(body.get("allowed"), list):
        line += f" (allowed: {', '.join(map(str, body['allowed'])) or 'none'})"
    return line


class Api:
    """An HTTP client for one service, authenticated with the profile's token
    (``TANDEM_TOKEN`` over the config file's)."""

    def __init__(self, service: str, *, timeout: float = 30.0) -> None:
        self.service = service
        profile = current_profile()
        self.base_url = service_url(service, profile)
        headers = {"Accept": "application/json", "User-Agent": f"tandem-cli/{cli_version()}"}
        if profile.token:
            headers["Authorization"] = f"Bearer {profile.token}"
        self.client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def request(self, method: str, path: str, *, json_body: Any = None,
                params: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
                timeout: float | None = None, attempts: int = 1,
                content: bytes | None = None) -> Any:
        """The decoded JSON answer; a problem or an unreachable service raises CommandError.

        ``attempts`` > 1 retries transient failures (unreachable, 502-504, a 409 for a request
        still in flight): only safe for reads and for writes carrying an Idempotency-Key.
        """
        for attempt in range(1, attempts + 1):
            try:
                return self._request_once(method, path, json_body, params, headers, timeout,
                                          content)
            except CommandError as exc:
                if attempt == attempts or not exc.transient:
                    raise
                time.sleep(min(8.0, 0.5 * 2**attempt))
        raise AssertionError("unreachable")

    def _request_once(self, method: str, path: str, json_body: Any,
                      params: dict[str, Any] | None, headers: dict[str, str] | None,
                      timeout: float | None, content: bytes | None = None) -> Any:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self.client.request(
                method, path, json=json_body, content=content, params=query, headers=headers,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TimeoutException:
            raise CommandError(f"the {self.service} service at {self.base_url} did not answer "
                               "in time", transient=True) from None
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            raise CommandError(
                f"cannot reach the {self.service} service at {self.base_url} ({reason}); "
                f"is it running? Set TANDEM_URL_{self.service.upper()} to point elsewhere",
                transient=True,
            ) from None
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = None
        if response.status_code >= 400:
            problem = body if isinstance(body, dict) else None
            message = _problem_line(response.status_code, body)
            if response.status_code == 401 and not self.client.headers.get("Authorization"):
                message += (" (set TANDEM_TOKEN or a profile's token; `tandem token mint` "
                            "makes one)")
            if problem and isinstance(problem.get("errors"), list):
                fields = [f"{e.get('field')}: {e.get('message')}" for e in problem["errors"]
                          if isinstance(e, dict)]
                if fields and problem.get("detail", "").find(fields[0]) < 0:
                    message += " [" + "; ".join(fields) + "]"
            # A 409 conflict of a concurrent request with the same key asks to retry.
            conflict = (problem or {}).get("type") == "urn:tandem:problem:conflict"
            transient = response.status_code in (502, 503, 504) or (
                response.status_code == 409 and conflict)
            raise CommandError(message, problem=problem, transient=transient)
        if body is None and response.content:
            raise CommandError(f"the {self.service} service answered {response.status_code} "
                               "with a body that is not JSON")
        return body

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any, **kwargs: Any) -> Any:
        return self.request("POST", path, json_body=body, **kwargs)


@contextmanager
def reporting(as_json: bool = False) -> Iterator[None]:
    """Turn a CommandError into one line on stderr (the problem body too with ``--json``)."""
    try:
        yield
    except CommandError as exc:
        fail(exc.message, problem=exc.problem if as_json else None, exit_code=exc.exit_code)


def fail(message: str, *, problem: dict[str, Any] | None = None,
         exit_code: int = EXIT_ERROR) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``exit_code``."""
    if problem is not None:
        typer.echo(json.dumps(problem), err=True)
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(exit_code)


def transition(api: Api, plural: str, ref: str, to: str, reason: str | None = None,
               **fields: Any) -> Any:
    """``POST /api/v1/<plural>/{ref}/transitions``: the one way every resource changes state."""
    body: dict[str, Any] = {"to": to, **{k: v for k, v in fields.items() if v is not None}}
    if reason is not None:
        body["reason"] = reason
    return api.post(f"/api/v1/{plural}/{ref}/transitions", body)


def resolve_id(service: str, plural: str, ref: str) -> str:
    """The UUID of ``ref``, which may be a number such as ``INC0000042`` (asked of its service)."""
    try:
        return str(uuid.UUID(ref))
    except ValueError:
        pass
    with Api(service) as api:
        return str(api.get(f"/api/v1/{plural}/{ref}")["id"])


def list_all(api: Api, path: str, params: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` items of a list endpoint, following ``next_cursor``."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while len(items) < limit:
        page = api.get(path, params={**params, "limit": min(200, limit - len(items)),
                                     "cursor": cursor})
        items.extend(page.get("items", []))
        cursor = page.get("next_cursor")
        if not cursor:
            break
    return items


def list_any_of(api: Api, path: str, params: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    """Like :func:`list_all`, where a filter given as a list matches any of its values.

    The services take one value per filter; each combination is listed on its own and the
    answers are merged newest first (the services' own order), each item once.
    """
    multi = {k: v for k, v in params.items() if isinstance(v, list | tuple) and v}
    single = {k: v for k, v in params.items() if not isinstance(v, list | tuple)}
    combinations: list[dict[str, Any]] = [{}]
    for name, values in multi.items():
        combinations = [{**c, name: v} for c in combinations for v in dict.fromkeys(values)]
    seen: dict[str, dict[str, Any]] = {}
    for combination in combinations:
        for item in list_all(api, path, {**single, **combination}, limit):
            seen.setdefault(str(item.get("id")), item)
    items = sorted(seen.values(), key=lambda i: (str(i.get("created_at")), str(i.get("id"))),
                   reverse=True)
    return items[:limit]


def number_of(service: str, plural: str, ref: Any) -> str | None:
    """The human number of ``ref`` (a UUID), asked of its service; the UUID if it cannot say."""
    if not ref:
        return None
    try:
        with Api(service, timeout=5.0) as api:
            return str(api.get(f"/api/v1/{plural}/{ref}").get("number") or ref)
    except CommandError:
        return str(ref)


_RELATIVE = re.compile(r"^([+-])(\d+)([smhd])$")


def parse_when(value: str) -> datetime:
    """``now``, ``+2h``, ``-30m`` or an RFC 3339 time (UTC when no offset is given)."""
    text = value.strip()
    if text == "now":
        return datetime.now(UTC)
    if m := _RELATIVE.match(text):
        sign, n, unit = m.groups()
        delta = timedelta(**{{"s": "seconds", "m": "minutes", "h": "hours",
                              "d": "days"}[unit]: int(n)})
        return datetime.now(UTC) + (delta if sign == "+" else -delta)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not now, +2h, -30m or an RFC 3339 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_span(value: str) -> timedelta:
    """``30m``, ``2h``, ``1d`` or ``90s`` as a duration."""
    if not (m := _RELATIVE.match("+" + value.strip().lstrip("+"))):
        raise typer.BadParameter(f"{value!r} is not a span such as 30m, 2h or 1d")
    _, n, unit = m.groups()
    return timedelta(**{{"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[unit]:
                        int(n)})


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- output -------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value) or "-"
    text = str(value)
    # Times are shown to the second, in UTC, without the noise.
    if re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", text):
        return text[:16].replace("T", " ") + "Z"
    return text


def terminal_width() -> int | None:
    """The terminal's width when stdout is one (a pipe or a file gets whole lines)."""
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


def table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]],
          *, empty: str = "nothing found", width: int | None = None) -> str:
    """Aligned columns: ``columns`` are (heading, field) pairs; the last column is not padded.

    With ``width`` (default: the terminal's, when stdout is one) a line longer than it has its
    last column cut with an ellipsis, as gh and kubectl do on a terminal.
    """
    if not rows:
        return empty
    width = width if width is not None else terminal_width()
    cells = [[_cell(_field(row, field)) for _, field in columns] for row in rows]
    headings = [h for h, _ in columns]
    widths = [max(len(headings[i]), *(len(r[i]) for r in cells)) for i in range(len(columns))]

    def line(values: Sequence[str]) -> str:
        text = "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()
        if width is not None and len(text) > width:
            lead = len(text) - len(values[-1])
            text = text[:max(width - 1, lead + 1)] + "…"
        return text

    return "\n".join([line(headings), *(line(r) for r in cells)])


def _field(row: dict[str, Any], dotted: str) -> Any:
    value: Any = row
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def details(resource: dict[str, Any], fields: Sequence[tuple[str, str]]) -> str:
    """One ``label  value`` line per field present in ``resource``."""
    width = max(len(label) for label, _ in fields)
    lines = []
    for label, field in fields:
        value = _field(resource, field)
        if value is None or value == "" or value == []:
            continue
        lines.append(f"{label.ljust(width)}  {_cell(value)}")
    return "\n".join(lines)


def emit(value: Any, as_json: bool, human: str) -> None:
    """Print JSON for machines or the human rendering for people, on stdout."""
    if as_json:
        typer.echo(json.dumps(value, indent=2, sort_keys=False))
    else:
        typer.echo(human)


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()
