"""One step contract for every stage, in the manner of Paperless-ngx's consume plugins.

A step states the consent `scope` it needs, what it `reads` and `writes`, when it is
`able_to_run` on its subject (the kind of asset, whether there is anything to do), then `run`s
idempotently and `cleanup`s. Stages never ask the consent gate themselves: the runner asks it,
once per step, right before `run`. A job runs when it is taken from the queue, so a scope
revoked between queueing and running stops the step there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from sqlalchemy.orm import Session

from camroll.consent.gate import is_granted

S = TypeVar("S")  # what a step looks at: an asset, a batch of a library, an owner
T = TypeVar("T", bound="Step[Any]")


@runtime_checkable
class Step(Protocol[S]):
    name: str
    scope: str  # the consent scope it needs (cloud_processing is always needed besides)
    reads: tuple[str, ...]  # the tables (or blobs) it reads
    writes: tuple[str, ...]  # the tables it replaces; every row carries this scope

    def able_to_run(self, session: Session, subject: S) -> bool:
        """Everything but consent: is this subject mine, is there anything to do?"""
        ...

    def run(self, session: Session, subject: S) -> Any: ...

    def cleanup(self, session: Session, subject: S) -> None:
        """After `run`, whether it finished or raised."""
        ...


class BaseStep:
    """Defaults for a step: always able to run, nothing to clean up."""

    name: str
    scope: str
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()

    def able_to_run(self, session: Session, subject: Any) -> bool:
        return True

    def cleanup(self, session: Session, subject: Any) -> None:
        return None


def granted(session: Session, user_id: str, scope: str) -> bool:
    """The one consent question a stage may ask: for a whole job's gate (cloud_processing),
    before any step is chosen."""
    return is_granted(session, user_id, scope)


def admit(session: Session, user_id: str, steps: Iterable[T], subject: Any) -> list[T]:
    """The steps that may run now: scope granted (asked once per scope), then able_to_run."""
    answers: dict[str, bool] = {}
    out = []
    for step in steps:
        if step.scope not in answers:
            answers[step.scope] = is_granted(session, user_id, step.scope)
        if answers[step.scope] and step.able_to_run(session, subject):
            out.append(step)
    return out


def execute(session: Session, step: Step[S], subject: S) -> Any:
    """Run an admitted step, then clean up whatever happened."""
    try:
        return step.run(session, subject)
    finally:
        step.cleanup(session, subject)


@dataclass
class Outcome:
    step: str
    ran: bool
    refused: str | None = None  # why it did not run: "consent" or "not able"
    value: Any = None


def run_steps(
    session: Session, user_id: str, steps: Sequence[Step[S]], subject: S
) -> list[Outcome]:
    """Admit, then run, each step in order; one Outcome per step, refused ones included."""
    out = []
    for step in steps:
        if not is_granted(session, user_id, step.scope):
            out.append(Outcome(step.name, False, "consent"))
        elif not step.able_to_run(session, subject):
            out.append(Outcome(step.name, False, "not able"))
        else:
            out.append(Outcome(step.name, True, value=execute(session, step, subject)))
    return out
