"""One step contract for every stage, in the manner of Paperless-ngx's consume plugins.

A step states the consent `scope` it needs, what it `reads` and `writes`, when it is
`able_to_run` on its subject (the kind of asset, whether there is anything to do), then `run`s
idempotently and `cleanup`s. Stages never ask the consent gate themselves: the runner asks it,
once per step, right before `run`. A job runs when it is taken from the queue, so a scope
revoked between queueing and running stops the step there.

A step may also read an optional input that needs another scope (tags lean on the face count
while `faces` is granted): it names that scope in `uses`, the runner answers it with the rest,
and `run` reads the answer with `may_use`. No stage asks the gate itself.

Outside a run, two questions are asked of steps, never of scope names: `consented` (which of
these steps may run now: a job queues a follow-up only if one would run) and `require_step`
(a request doing a step's work in parts, each PATCH of an upload, stops once it is switched
off). The runner still asks again right before each step runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from sqlalchemy.orm import Session

from camroll.consent.gate import ConsentRequired, granted_scopes, is_granted

S = TypeVar("S")  # what a step looks at: an asset, a batch of a library, an owner


@runtime_checkable
class Step(Protocol[S]):
    name: str
    scope: str  # the consent scope it needs (cloud_processing is always needed besides)
    reads: tuple[str, ...]  # the tables (or blobs) it reads
    writes: tuple[str, ...]  # the tables it replaces; every row carries this scope
    uses: tuple[str, ...]  # scopes of optional inputs, answered by the runner (see may_use)

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
    uses: tuple[str, ...] = ()

    def able_to_run(self, session: Session, subject: Any) -> bool:
        return True

    def cleanup(self, session: Session, subject: Any) -> None:
        return None


# The optional scopes granted to the step now running (set by `_execute` around `run`).
_uses: ContextVar[dict[str, bool] | None] = ContextVar("camroll_step_uses", default=None)


def may_use(scope: str) -> bool:
    """Inside a step's `run`: whether an optional input of `scope` (named in the step's `uses`)
    may be read now. The runner asked the gate just before `run`."""
    answers = _uses.get()
    if answers is None or scope not in answers:
        raise LookupError(f"{scope!r} is not in the running step's `uses`")
    return answers[scope]


@contextmanager
def _answering(answers: dict[str, bool]) -> Iterator[None]:
    token = _uses.set(answers)
    try:
        yield
    finally:
        _uses.reset(token)


def _execute(session: Session, user_id: str, step: Step[S], subject: S) -> Any:
    """Run a step whose scope was granted: answer its optional scopes, run, then clean up
    whatever happened."""
    on = granted_scopes(session, user_id, set(step.uses)) if step.uses else set()
    answers = {scope: scope in on for scope in step.uses}  # one query for all of them
    try:
        with _answering(answers):
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
    """The only consent gate for jobs: each step in order, its scope asked right before it runs
    (not when the job was queued); one Outcome per step, refused ones included."""
    out = []
    for step in steps:
        if not is_granted(session, user_id, step.scope):
            out.append(Outcome(step.name, False, "consent"))
        elif not step.able_to_run(session, subject):
            out.append(Outcome(step.name, False, "not able"))
        else:
            out.append(Outcome(step.name, True, value=_execute(session, user_id, step, subject)))
    return out


class Scoped(Protocol):
    scope: str


Sc = TypeVar("Sc", bound=Scoped)


def consented(session: Session, user_id: str, steps: Sequence[Sc]) -> list[Sc]:
    """The steps (or step classes) whose scope the owner grants now: a job queues a follow-up
    job only when one of its steps would run."""
    on = granted_scopes(session, user_id, {s.scope for s in steps})
    return [s for s in steps if s.scope in on]


def still_consented(session: Session, user_id: str, scopes: Iterable[str]) -> bool:
    """Inside a step's `run`, after the first write of the transaction that keeps a result it
    took long to make (a recap's encode): whether every scope the result drew on is still
    granted. The read waits for a revocation in flight (PostgreSQL's share lock; on SQLite the
    transaction already holds the write lock), so either the revocation ended first and the
    result is dropped, or it waits for this commit and then deletes the result with the rest."""
    wanted = set(scopes)
    return granted_scopes(session, user_id, wanted, held=True) == wanted


def require_step(session: Session, user_id: str, step: Scoped) -> None:
    """ConsentRequired unless the step's scope is granted now: for a request that does a
    step's work in parts (each PATCH of an upload), outside `run_steps`."""
    if not consented(session, user_id, [step]):
        raise ConsentRequired(step.scope)
