"""Approval templates, the file format: what an `@approval("<template>")` denial needs before
it is approved.

A policy store may hold `approvals.toml` beside its policies. Each `[templates.<name>]`
says, in data the policy author owns:

- `description`: why an approval is needed, in words approvers read;
- `steps`: the ordered steps, each with a `name` (which policies read as
  `resource.step`), how many different people must approve it (`approvals`, k of the
  people policy allows: a quorum), and optionally `timeout_seconds`, after which the step
  is escalated;
- `emergency_approval_seconds`: emergency requests (`requested_access.emergency`) may be
  approved at once, for at most this long, when policy permits `approve_emergency`; they
  then wait for a review.

A template the file does not name (or a store without the file) has one step, `approve`,
needing one approval: the behaviour of a store written before templates existed.

    [templates.sensitive-export]
    description = "Exports of sensitive records: a manager, then data protection."

    [[templates.sensitive-export.steps]]
    name = "manager"
    timeout_seconds = 3600

    [[templates.sensitive-export.steps]]
    name = "data-protection"
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .problems import Problem, ProblemsError

# The Cedar store watches and versions this file with its policies
# (`authzen.cedar.store.APPROVAL_TEMPLATES_FILE`, the same name).
TEMPLATES_FILE = "approvals.toml"
DEFAULT_STEP = "approve"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
MAX_STEPS = 10
MAX_QUORUM = 20


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StepModel(_Strict):
    name: str = Field(description="The step's name; policies read it as `resource.step`.")
    approvals: int = Field(
        1, ge=1, le=MAX_QUORUM, description="Different people who must approve this step."
    )
    timeout_seconds: int | None = Field(
        None, ge=60, description="Escalate the step when it waits longer than this."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError("a step name is 1 to 100 letters, digits and _ . : -")
        return value


class TemplateModel(_Strict):
    description: str | None = Field(None, max_length=500)
    steps: list[StepModel] = Field(
        default_factory=lambda: [StepModel(name=DEFAULT_STEP)], min_length=1
    )
    emergency_approval_seconds: int | None = Field(None, ge=60, le=86_400)

    @field_validator("steps")
    @classmethod
    def _distinct(cls, steps: list[StepModel]) -> list[StepModel]:
        if len(steps) > MAX_STEPS:
            raise ValueError(f"a template has at most {MAX_STEPS} steps")
        names = [s.name for s in steps]
        if len(set(names)) != len(names):
            raise ValueError("step names must differ within a template")
        return steps


class TemplatesFile(_Strict):
    templates: dict[str, TemplateModel] = Field(default_factory=dict)

    @field_validator("templates")
    @classmethod
    def _names(cls, templates: dict[str, TemplateModel]) -> dict[str, TemplateModel]:
        for name in templates:
            if not _NAME.fullmatch(name):
                raise ValueError(f"template name {name!r}: 1 to 100 letters, digits and _ . : -")
        return templates


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    approvals: int
    timeout_seconds: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "approvals": self.approvals,
            "timeout_seconds": self.timeout_seconds,
        }


@dataclass(frozen=True, slots=True)
class Template:
    name: str
    description: str | None
    steps: tuple[Step, ...]
    emergency_approval_seconds: int | None


def default_template(name: str) -> Template:
    return Template(name, None, (Step(DEFAULT_STEP, 1, None),), None)


class TemplatesError(ProblemsError):
    """An `approvals.toml` that cannot be used."""


def parse_templates(text: str, where: str) -> dict[str, Template]:
    """The templates of one file's text; raises `TemplatesError` naming `where`."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TemplatesError([Problem(where, None, str(exc))]) from exc
    try:
        parsed = TemplatesFile.model_validate(raw)
    except ValidationError as exc:
        problems = [
            Problem(where, None, f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}")
            for e in exc.errors(include_url=False)
        ]
        raise TemplatesError(problems) from exc
    return {
        name: Template(
            name,
            model.description,
            tuple(Step(s.name, s.approvals, s.timeout_seconds) for s in model.steps),
            model.emergency_approval_seconds,
        )
        for name, model in parsed.templates.items()
    }


def load_templates(folder: Path) -> dict[str, Template]:
    """A store folder's templates; {} when it has no `approvals.toml`."""
    path = folder / TEMPLATES_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise TemplatesError([Problem(str(path), None, f"cannot read: {exc.strerror}")]) from exc
    return parse_templates(text, str(path))


def templates_problems(folders: list[Path]) -> list[Problem]:
    """Every problem of the stores' `approvals.toml` files (for `bridge check` and start)."""
    problems: list[Problem] = []
    for folder in folders:
        try:
            load_templates(folder)
        except TemplatesError as exc:
            problems.extend(exc.problems)
    return problems
