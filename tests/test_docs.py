"""The documentation keeps up with the code.

- docs/configuration.md has a table row for every option of bridge/settings.py, written as
  `section.option` in the first column (`stores.<name>.…` for store and auth options), and
  no row for an option that does not exist;
- README.md gives `make run` and `make test` before its first `##` heading, and stays
  under 300 lines;
- relative links between documents point at files that exist;
- no document (any Markdown file of the project) names a path of the machine it was
  written on.
"""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from bridge.settings import Settings

REPO = Path(__file__).resolve().parents[1]
CONFIGURATION = REPO / "docs" / "configuration.md"
README = REPO / "README.md"
# Every Markdown file of the project: hidden folders (.venv) and installed packages
# (node_modules) and generated output (var) left out.
_NOT_OURS = {"node_modules", "var"}
DOCS = sorted(
    path
    for path in REPO.rglob("*.md")
    if not any(part.startswith(".") or part in _NOT_OURS for part in path.relative_to(REPO).parts)
)

# `dict[str, StoreSettings]` tables are documented under this placeholder key.
NAME_PLACEHOLDER = "<name>"


def _models(annotation: Any) -> list[tuple[type[BaseModel], bool]]:
    """Settings models inside an annotation; True when they are the values of a dict."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(annotation, False)]
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return [found for arg in get_args(annotation) for found in _models(arg)]
    if origin is dict:
        return [(model, True) for model, _ in _models(get_args(annotation)[1])]
    if origin is list:
        # An array of tables (`[[section]]`): its members are documented as `section.option`.
        return _models(get_args(annotation)[0])
    return []


def options(model: type[BaseModel], prefix: str = "") -> tuple[set[str], set[str]]:
    """(leaf options, section names) of `model`, as dotted names."""
    leaves: set[str] = set()
    sections: set[str] = set()
    for name, field in model.model_fields.items():
        if model is Settings and name == "base_dir":
            continue
        dotted = f"{prefix}{name}"
        nested = _models(field.annotation)
        if not nested:
            leaves.add(dotted)
            continue
        sections.add(dotted)
        for sub, keyed in nested:
            sub_prefix = f"{dotted}.{NAME_PLACEHOLDER}." if keyed else f"{dotted}."
            sub_leaves, sub_sections = options(sub, sub_prefix)
            leaves |= sub_leaves
            sections |= sub_sections
    return leaves, sections


def documented_options(text: str) -> set[str]:
    """Names in the first column of Markdown table rows: | `section.option` | ..."""
    return set(re.findall(r"^\|\s*`([a-z_]+(?:\.[a-z_<>]+)+)`\s*\|", text, flags=re.MULTILINE))


def test_the_walk_finds_every_section() -> None:
    leaves, sections = options(Settings)
    assert {"server", "limits", "search", "reload", "stores", "pdp", "pdp.remote"} <= sections
    assert "stores.<name>.auth" in sections
    assert {"server.port", "stores.<name>.path", "stores.<name>.auth.api_keys"} <= leaves
    assert "pdp.remote.url" in leaves
    assert not any("base_dir" in name for name in leaves)


def test_every_option_is_documented() -> None:
    leaves, _ = options(Settings)
    documented = documented_options(CONFIGURATION.read_text(encoding="utf-8"))
    missing = sorted(leaves - documented)
    assert not missing, f"options without a row in docs/configuration.md: {missing}"


def test_no_documented_option_is_made_up() -> None:
    leaves, sections = options(Settings)
    documented = documented_options(CONFIGURATION.read_text(encoding="utf-8"))
    unknown = sorted(documented - leaves - sections)
    assert not unknown, f"rows in docs/configuration.md for options that do not exist: {unknown}"


def test_readme_starts_with_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    heading = re.search(r"^## ", text, flags=re.MULTILINE)
    intro = text[: heading.start()] if heading else text
    assert "make run" in intro
    assert "make test" in intro


def test_readme_stays_short() -> None:
    # What a newcomer needs in the first hour; the rest lives in docs/.
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 300


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_point_at_files(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^()\s]+)\)", text)
    broken = [
        target
        for target in targets
        if not re.match(r"[a-z]+:|#", target) and not (doc.parent / target.split("#")[0]).exists()
    ]
    assert not broken, f"{doc.name} links to missing files: {broken}"


def test_the_documents_include_the_walkthroughs_and_data_notes() -> None:
    names = {path.relative_to(REPO).as_posix() for path in DOCS}
    assert {
        "README.md",
        "docs/configuration.md",
        "docs/walkthroughs/tokens.md",
        "docs/walkthroughs/approvals.md",
        "policies/README.md",
        "tests/data/authzen-interop/README.md",
    } <= names


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_no_machine_paths(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    found = re.findall(r"(?<![\w.])/(?:work|home|root|Users|tmp)/\S*", text)
    assert not found, f"{doc.name} names machine paths: {found}"
