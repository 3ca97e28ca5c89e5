"""What the deployments domain refuses, as typed errors (``tandem.problems`` answers them).

Each is a kind of :mod:`tandem.errors`, so its HTTP status and problem type follow from the
kind; a caller that expects one refusal catches exactly that class.
"""

from __future__ import annotations

from typing import Any

from tandem.errors import Conflict, Invalid


class GateNotAllowed(Conflict):
    """A deployment starts (``in_progress``) only once its gate is ``allowed``; the problem
    carries the gate and the moves that remain."""

    code = "gate-not-allowed"

    def __init__(self, number: str, gate: dict[str, Any], allowed: list[str]) -> None:
        super().__init__(f"Deployment {number} cannot start: its gate is {gate['decision']}.",
                         gate=gate, allowed=allowed)


class UnknownEnvironment(Invalid):
    """A sender named an environment the environment map does not know."""

    code = "unknown-environment"

    def __init__(self, name: str) -> None:
        super().__init__("environment", f"{name[:100]!r} is not in the environment map "
                         "(TANDEM_DEPLOYMENTS_ENVIRONMENT_MAP); add it as name=environment.")
