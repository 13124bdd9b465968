"""The token endpoint as the PEP of the AuthZEN Obligations Profile: a decision's
`context.obligations` are carried out before a token is issued, or the decision is not
honoured.

The profile's rules (§ "PEP Compliance Semantics", § "Non-Compliance"), as applied here:

- a permit is honoured only when every obligation on it is carried out; one that cannot be
  (an unknown type, no handler, a malformed obligation, a check or an attempt that failed)
  makes it a denial, which the mapping then refuses or narrows like any other;
- the obligations of a denial are carried out too (they are for accountability), and so are
  those the bridge can carry out on a decision it cannot honour;
- every obligation is checked first, then the feasible ones are carried out: a failed check
  never leaves a half-done side effect behind a refusal it could have foreseen.

A handler may attach the answer the client gets instead of the ordinary refusal (the front
door's `step-up`: `insufficient_user_authentication`, RFC 9470). Handlers are registered by
the parts that can carry obligations out (the front door: `step-up`; notifications:
`notification`) and by the deployment (`oauth.obligation_handlers`, Python import paths;
`custom` ones, several of which may each recognise their own). The types with a handler
are published as the authorization server metadata's `supported_obligations`.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..authzen.models import Decision, EvaluationRequest
from ..authzen.obligations import (
    CUSTOM,
    SUPPORTED_OBLIGATIONS,
    MalformedObligation,
    Obligation,
    read_obligations,
)
from ..errors import OAuthError
from ..problems import Problem
from ..settings import Settings
from .extensions import NoExtension
from .grants.base import Principal

log = logging.getLogger("bridge.oauth.obligations")


class CannotComply(Exception):
    """The profile's "cannot comply": this obligation will not be carried out, so the
    decision it rides on is not honoured. `answer`: what to tell the client instead of the
    ordinary refusal, when carrying the obligation out means the client acting (e.g. the
    person signing in again); the message is for the operator's log."""

    def __init__(self, reason: str, *, answer: OAuthError | None = None) -> None:
        super().__init__(reason)
        self.answer = answer


@dataclass(frozen=True)
class Enforcement:
    """What a decision was about, as a handler sees it: the token request's grant and
    client, the principal (with how they authenticated, `principal.authentication`), and
    the AuthZEN evaluation the decision answered."""

    grant_type: str
    client_id: str
    principal: Principal
    request: EvaluationRequest


class ObligationHandler(Protocol):
    """Carries out obligations of one `obligation_type` for the token endpoint.

    A deployment adds its own with `oauth.obligation_handlers = ["module:attribute"]`: the
    attribute is a handler, or a class (or function) that makes one when called with no
    arguments. For example, a `custom` obligation that a DLP service must be told of:

        from bridge.authzen.obligations import Obligation
        from bridge.oauth.obligations import BaseObligationHandler, CannotComply, Enforcement

        class TellTheDLP(BaseObligationHandler):
            obligation_type = "custom"

            def recognizes(self, obligation: Obligation) -> bool:
                return obligation.properties.get("vendor") == "example-dlp-suite"

            async def check(self, obligation: Obligation, enforcement: Enforcement) -> None:
                if "watermark_text" not in obligation.properties:
                    raise CannotComply("no watermark_text")

            async def carry_out(self, obligation: Obligation, enforcement: Enforcement) -> None:
                await dlp.register(enforcement.principal.token_sub, obligation.properties)
    """

    # The `type` carried out: a registered one ("notification", ...) or "custom".
    obligation_type: str

    def recognizes(self, obligation: Obligation) -> bool:
        """Whether this obligation's semantics are this handler's. Only asked of `custom`
        handlers (the profile: a `custom` obligation no handler recognises cannot be
        complied with); a handler of a registered type answers True."""
        ...

    async def check(self, obligation: Obligation, enforcement: Enforcement) -> None:
        """Raise `CannotComply` when it cannot be carried out (malformed for this type, a
        destination not known, ...). No side effect: another obligation may still refuse."""
        ...

    async def carry_out(self, obligation: Obligation, enforcement: Enforcement) -> None:
        """Carry it out; raise `CannotComply` when that fails. Called after every check,
        also on denials, and also when another obligation keeps the decision from being
        honoured."""
        ...


class BaseObligationHandler:
    """A handler that recognises every obligation of its type, finds nothing to refuse and
    has nothing to do; handlers inherit and override what they need."""

    obligation_type: str = CUSTOM

    def recognizes(self, obligation: Obligation) -> bool:
        return True

    async def check(self, obligation: Obligation, enforcement: Enforcement) -> None:
        return None

    async def carry_out(self, obligation: Obligation, enforcement: Enforcement) -> None:
        return None


class Obligations(NoExtension):
    """The handlers the deployment has, and the profile's rules for a batch of decisions.
    Installed into the OAuth part as an extension, for its metadata member."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[ObligationHandler]] = {}

    def register(self, *handlers: ObligationHandler) -> None:
        """Carry out these handlers' types from now on. A registered type has one handler
        (a second one is a configuration error); `custom` may have several."""
        for handler in handlers:
            kind = handler.obligation_type
            known = self._handlers.setdefault(kind, [])
            if known and kind != CUSTOM:
                raise ValueError(f"two handlers for {kind!r} obligations")
            known.append(handler)

    def supported(self) -> list[str]:
        """The types carried out, for `supported_obligations`."""
        return sorted(self._handlers)

    def metadata(self) -> dict[str, Any]:
        return {SUPPORTED_OBLIGATIONS: self.supported()}

    async def enforce(
        self,
        requests: Sequence[EvaluationRequest],
        decisions: Sequence[Decision],
        *,
        grant_type: str,
        client_id: str,
        principal: Principal,
    ) -> list[Decision]:
        """The decisions as they may be honoured: a permit whose obligations cannot all be
        carried out becomes a denial. Every obligation that can be carried out is (denials'
        too). When every obligation that could not be complied with came with an answer,
        and the answers agree, that answer is raised: the client can act on it (e.g. the
        person signs in again); otherwise acting on it would not help."""
        if not any(d.context and "obligations" in d.context for d in decisions):
            return list(decisions)  # the usual case: nothing to carry out
        checked: list[tuple[Obligation, ObligationHandler, Enforcement, int]] = []
        shortfall = _Shortfall()
        for n, (request, decision) in enumerate(zip(requests, decisions, strict=True)):
            about = Enforcement(grant_type, client_id, principal, request)
            try:
                obligations = read_obligations(decision)
            except MalformedObligation as malformed:
                shortfall.add(n, about, None, CannotComply(str(malformed)))
                continue
            for obligation in obligations:
                handler = self._handler_for(obligation)
                refused = (
                    CannotComply(f"no handler for {obligation.type!r} obligations like this")
                    if handler is None
                    else await _attempt(handler.check, obligation, about)
                )
                if refused is not None:
                    shortfall.add(n, about, obligation, refused)
                elif handler is not None:
                    checked.append((obligation, handler, about, n))
        for obligation, handler, about, n in checked:
            failed = await _attempt(handler.carry_out, obligation, about)
            if failed is not None:
                shortfall.add(n, about, obligation, failed)
        answer = shortfall.answer()
        if answer is not None:
            raise answer
        return [
            Decision(False, d.context) if n in shortfall.decisions and d.decision else d
            for n, d in enumerate(decisions)
        ]

    def _handler_for(self, obligation: Obligation) -> ObligationHandler | None:
        handlers = self._handlers.get(obligation.type, [])
        if obligation.type == CUSTOM:
            handlers = [h for h in handlers if _recognizes(h, obligation)]
        return handlers[0] if handlers else None


@dataclass
class _Shortfall:
    """What could not be complied with in one batch: which decisions, and what the client
    could do about it."""

    decisions: set[int] = field(default_factory=set)
    answers: list[OAuthError] = field(default_factory=list)
    unanswered: bool = False

    def add(
        self, n: int, about: Enforcement, obligation: Obligation | None, refused: CannotComply
    ) -> None:
        _log_unmet(about.request, obligation, str(refused))
        self.decisions.add(n)
        if refused.answer is None:
            self.unanswered = True
        else:
            self.answers.append(refused.answer)

    def answer(self) -> OAuthError | None:
        """The answer to give instead of the refusal: only when acting on it can lift every
        shortfall (each came with an answer, and they agree)."""
        if not self.answers or self.unanswered:
            return None
        first = self.answers[0]
        same = all(type(a) is type(first) and a.body() == first.body() for a in self.answers)
        return first if same else None


def _recognizes(handler: ObligationHandler, obligation: Obligation) -> bool:
    try:
        return handler.recognizes(obligation)
    except Exception:
        log.exception("obligation %s: a custom handler failed to read it", obligation.id)
        return False


async def _attempt(
    step: Callable[[Obligation, Enforcement], Awaitable[None]],
    obligation: Obligation,
    about: Enforcement,
) -> CannotComply | None:
    """A handler's check or carrying out; a handler that fails in any other way cannot
    comply either (a bug in a handler must not let a decision through)."""
    try:
        await step(obligation, about)
    except CannotComply as refused:
        return refused
    except Exception as exc:
        log.exception("obligation %s (%s): the handler failed", obligation.id, obligation.type)
        return CannotComply(f"the handler failed: {type(exc).__name__}")
    return None


def load_handlers(paths: Sequence[str]) -> list[ObligationHandler]:
    """The deployment's handlers, from `module:attribute` import paths (the attribute a
    handler, or a callable making one with no arguments). Raises `ValueError` naming the
    path that cannot be used: a start with a handler missing would deny what it should
    carry out."""
    found: list[ObligationHandler] = []
    for path in paths:
        module_name, _, attribute = path.partition(":")
        try:
            target = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ValueError(f"obligation handler {path!r} cannot be imported: {exc}") from None
        handler = target
        if isinstance(target, type) or (callable(target) and not _is_handler(target)):
            try:
                handler = target()
            except Exception as exc:
                raise ValueError(f"obligation handler {path!r} cannot be made: {exc}") from None
        if not _is_handler(handler):
            raise ValueError(f"obligation handler {path!r} is not an obligation handler")
        found.append(handler)
    return found


def handler_problems(settings: Settings) -> list[Problem]:
    """What `bridge check` (and a start) refuses: a handler path that cannot be used."""
    try:
        load_handlers(settings.oauth.obligation_handlers)
    except ValueError as exc:
        return [Problem("oauth.obligation_handlers", None, str(exc))]
    return []


def _is_handler(value: object) -> bool:
    return isinstance(getattr(value, "obligation_type", None), str) and all(
        callable(getattr(value, name, None)) for name in ("recognizes", "check", "carry_out")
    )


def _log_unmet(request: EvaluationRequest, obligation: Obligation | None, reason: str) -> None:
    what = f"obligation {obligation.id} ({obligation.type})" if obligation else "obligations"
    log.info(
        "%s on %s %s of %s %s cannot be carried out: %s",
        what,
        request.action.name,
        request.resource.id,
        request.subject.type,
        request.subject.id,
        reason,
    )
