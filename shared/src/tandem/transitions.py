"""The one state-machine mechanism every service uses for its resources' ``status``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import GetJsonSchemaHandler, JsonSchemaValue
from pydantic_core import CoreSchema

from tandem.errors import IllegalTransition, Invalid


class TransitionRequest(BaseModel):
    """The body of ``POST .../transitions``; services subclass it for state-specific fields."""

    model_config = ConfigDict(extra="forbid")

    to: str = Field(min_length=1, max_length=32, description="The state to move to.")
    reason: str = Field(default="", max_length=2000, description="Why, for the timeline.",
                        examples=["Rolled back: error rate above 5%"])

    #: The machines whose states ``to`` may name; the API schema lists them as its enum (the
    #: machine itself refuses any other with ``unknown-state``).
    machines: ClassVar[tuple[StateMachine, ...]] = ()

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core_schema)
        states = sorted({state for machine in cls.machines for state in machine.states})
        if states:
            handler.resolve_ref_schema(schema)["properties"]["to"]["enum"] = states
        return schema


@dataclass(frozen=True)
class StateMachine:
    """Legal moves between states; ``final`` states allow none.

    >>> m = StateMachine("incident", {"new": {"resolved"}, "resolved": {"closed"}})
    >>> m.allowed("new")
    ['resolved']
    """

    name: str
    moves: Mapping[str, Iterable[str]]
    _moves: dict[str, tuple[str, ...]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        normal = {state: tuple(sorted(set(targets))) for state, targets in self.moves.items()}
        for targets in list(normal.values()):
            for t in targets:
                normal.setdefault(t, ())
        object.__setattr__(self, "_moves", normal)

    @property
    def states(self) -> list[str]:
        return sorted(self._moves)

    def allowed(self, state: str) -> list[str]:
        return list(self._moves.get(state, ()))

    def can(self, state: str, to: str) -> bool:
        return to in self._moves.get(state, ())

    def check(self, state: str, to: str) -> None:
        """Raise :class:`IllegalTransition` (listing the allowed moves) unless ``state -> to``
        is legal; a target that is no state at all is :class:`Invalid` on the field ``to``."""
        if to not in self._moves:
            raise Invalid("to", f"{to!r} is not a {self.name} state; states are: "
                          f"{', '.join(self.states)}", code="unknown-state",
                          detail=f"{to!r} is not a {self.name} state; states are: "
                                 f"{', '.join(self.states)}.",
                          allowed=self.allowed(state))
        if not self.can(state, to):
            allowed = self.allowed(state)
            raise IllegalTransition(
                f"A {self.name} cannot move from {state} to {to}; allowed: "
                f"{', '.join(allowed) if allowed else 'none (final state)'}.",
                allowed=allowed, current=state)
