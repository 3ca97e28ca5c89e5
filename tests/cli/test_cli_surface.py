"""The CLI's surface a person meets first: help, version, usage errors, completion, profiles.

Help and usage errors run in this process (``CliRunner``, through the same root command as the
program); version, completion and profiles run the installed ``tandem`` as a shell would.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from e2e.stack import TANDEM
from tandem.auth import mint_token
from tandem.settings import SERVICES
from tandem_cli import build_app

APP = build_app()

COMMANDS = [
    ("deploy", "start"), ("deploy", "finish"), ("deploy", "gate"), ("deploy", "list"),
    ("incident", "list"), ("incident", "show"), ("incident", "create"), ("incident", "ack"),
    ("incident", "assign"), ("incident", "resolve"), ("incident", "note"),
    ("change", "create"), ("change", "list"), ("change", "show"),
    ("freeze", "create"), ("freeze", "list"),
    ("catalog", "import"), ("events", "tail"), ("dlq", "list"), ("token", "mint"),
    ("whoami",),
]


def tandem(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("TANDEM_URL_", "TANDEM_TOKEN", "TANDEM_PROFILE"))}
    return subprocess.run([TANDEM, *args], env={**base, "COLUMNS": "80", **(env or {})},
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help_in_words_within_80_columns(command):
    short = CliRunner().invoke(APP, [*command, "-h"], env={"COLUMNS": "80"}, prog_name="tandem")
    long = CliRunner().invoke(APP, [*command, "--help"], env={"COLUMNS": "80"},
                              prog_name="tandem")
    assert short.exit_code == 0, short.output
    assert short.stdout == long.stdout
    assert short.stdout.startswith(f"Usage: tandem {' '.join(command)}")
    assert max(len(line) for line in short.stdout.splitlines()) <= 80
    for python_type in ("<str>", "<int>", "<float>", "<bool>", "list[", "<int range>"):
        assert python_type not in short.stdout


def test_groups_list_only_commands_that_exist():
    listing = CliRunner().invoke(APP, ["incident", "-h"], prog_name="tandem").stdout
    named = re.search(r"Incidents: (.*)\.", listing).group(1)  # type: ignore[union-attr]
    commands = listing.split("Commands:")[1].split()
    for word in named.split(", "):
        expected = {"acknowledge": "ack"}.get(word, word)
        assert expected in commands, (word, commands)


def test_version_is_the_installed_cli_version():
    from importlib.metadata import version

    result = tandem("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"tandem {version('tandem-cli')}"


@pytest.mark.parametrize("args", [
    ("incident", "list", "--bogus"),
    ("incident", "create", "--title", "x"),
    ("incident", "create", "--title", "x", "--service", "api", "--impact", "7", "--urgency", "1"),
    ("deploy", "finish", "DEP0000001", "--status", "exploded"),
    ("nosuchcommand",),
])
def test_usage_errors_are_one_line_with_exit_2_before_any_request(args):
    # No service runs at this URL: a usage error must not get as far as asking one.
    env = {f"TANDEM_URL_{s}": "http://127.0.0.1:9" for s in ("INCIDENTS", "DEPLOYMENTS")}
    result = CliRunner().invoke(APP, list(args), env=env, prog_name="tandem")
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "cannot reach" not in lines[0]


def test_the_program_itself_answers_a_usage_error_in_one_line():
    result = tandem("--profile", "x", "incident", "list", "--bogus")
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: No such option: --bogus "
                                      "(see 'tandem incident list --help')")


def test_a_group_without_its_command_prints_its_help():
    result = tandem("incident")
    assert result.returncode == 2
    assert "Commands:" in result.stdout


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_for_each_shell(shell):
    result = invoke("--show-completion", shell, env={})
    assert result.exit_code == 0, result.output
    assert "_TANDEM_COMPLETE" in result.stdout


def test_bash_completion_completes_commands_and_options():
    env = {"_TANDEM_COMPLETE": "complete_bash", "COMP_WORDS": "tandem inc", "COMP_CWORD": "1"}
    assert "incident" in invoke(env=env).stdout.split()
    env = {"_TANDEM_COMPLETE": "complete_bash", "COMP_WORDS": "tandem incident list --st",
           "COMP_CWORD": "3"}
    assert "--status" in invoke(env=env).stdout.split()


def invoke(*args: str, env: dict[str, str]) -> Result:
    base = {"TANDEM_TOKEN": None, "TANDEM_PROFILE": None,
            **{f"TANDEM_URL_{s.upper()}": None for s in SERVICES}}
    return CliRunner().invoke(APP, list(args), env={**base, **env}, prog_name="tandem")


def _config(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return {"TANDEM_CONFIG": str(path), "TANDEM_AUTH_SECRET": "s" * 32}


def test_profiles_choose_urls_and_token_and_the_environment_wins(tmp_path):
    token_file = tmp_path / "staging.token"
    token_file.write_text("a.eyJzdWIiOiJzdGFnaW5nLWJvdCIsInJvbGUiOiJwaXBlbGluZSJ9.c\n")
    env = _config(tmp_path, f"""
profile = "staging"

[profiles.default]
token = "a.eyJzdWIiOiJkZWZhdWx0LXVzZXIiLCJyb2xlIjoidmlld2VyIn0.c"

[profiles.staging]
token_file = "{token_file}"
urls = {{ incidents = "https://incidents.staging.example.org/" }}
""")
    chosen = json.loads(invoke("whoami", "--no-check", "--json", env=env).stdout)
    assert chosen["profile"] == "staging"
    assert chosen["sub"] == "staging-bot"
    assert chosen["role"] == "pipeline"
    assert chosen["services"]["incidents"] == {
        "url": "https://incidents.staging.example.org", "from": "profile staging"}
    assert chosen["services"]["changes"]["url"] == "http://127.0.0.1:8002"

    named = json.loads(invoke("--profile", "default", "whoami", "--no-check", "--json",
                              env=env).stdout)
    assert (named["profile"], named["sub"]) == ("default", "default-user")
    by_env = json.loads(invoke("whoami", "--no-check", "--json",
                               env={**env, "TANDEM_PROFILE": "default"}).stdout)
    assert by_env["sub"] == "default-user"

    token = mint_token("s" * 32, sub="carol", role="manager", ttl=timedelta(hours=1))
    wins = json.loads(invoke("whoami", "--no-check", "--json", env={
        **env, "TANDEM_TOKEN": token,
        "TANDEM_URL_INCIDENTS": "http://127.0.0.1:9"}).stdout)
    assert (wins["sub"], wins["token_source"]) == ("carol", "TANDEM_TOKEN")
    assert wins["services"]["incidents"] == {"url": "http://127.0.0.1:9",
                                             "from": "TANDEM_URL_INCIDENTS"}


@pytest.mark.parametrize(("text", "says"), [
    ("[profiles.default\n", "config.toml"),
    ("[profiles.default.urls]\nincidnets = 'http://x'\n", "incidnets"),
])
def test_a_config_file_that_cannot_be_used_is_a_usage_error_naming_it(tmp_path, text, says):
    result = invoke("incident", "list", env=_config(tmp_path, text))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_named_profile_that_does_not_exist_is_refused(tmp_path):
    env = _config(tmp_path, "[profiles.prod]\ntoken = 'x'\n")
    result = invoke("--profile", "prdo", "incident", "list", env=env)
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"error: no profile 'prdo' in {tmp_path / 'config.toml'} "
                                      "(profiles: prod)")
