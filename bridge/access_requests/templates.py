"""Each store's approval templates, as the access request service reads them while it runs:
the file format is `bridge.approval_templates` (also read by `bridge check` and `bridge policy
validate`); this keeps the templates of every store and reads a changed file again.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..approval_templates import (
    DEFAULT_STEP,
    TEMPLATES_FILE,
    CatalogField,
    Step,
    Template,
    TemplatesError,
    default_template,
    load_templates,
    parse_templates,
    templates_problems,
)

log = logging.getLogger("bridge.access_requests")


class TemplateCatalog:
    """Each store's templates by PDP identifier, read again when a file changes (as the
    policies are); a file that stops parsing keeps the last good templates."""

    def __init__(self, folders: dict[str, Path]) -> None:
        self._folders = folders
        self._loaded: dict[str, tuple[float | None, dict[str, Template]]] = {}
        for pdp in folders:
            self._refresh(pdp)

    def template(self, pdp: str, name: str) -> Template:
        self._refresh(pdp)
        known = self._loaded.get(pdp, (None, {}))[1]
        return known.get(name) or default_template(name)

    def templates_of(self, pdp: str) -> dict[str, Template]:
        """The templates the store's `approvals.toml` names (those it does not name are
        the default)."""
        self._refresh(pdp)
        return dict(self._loaded.get(pdp, (None, {}))[1])

    def folder(self, pdp: str) -> Path | None:
        """The store's folder, where its forms and catalogs are."""
        return self._folders.get(pdp)

    def _refresh(self, pdp: str) -> None:
        folder = self._folders.get(pdp)
        if folder is None:
            return
        try:
            mtime: float | None = os.stat(folder / TEMPLATES_FILE).st_mtime
        except OSError:
            mtime = None
        seen = self._loaded.get(pdp)
        if seen is not None and seen[0] == mtime:
            return
        try:
            templates = load_templates(folder)
        except TemplatesError as exc:
            # Keep the last good ones, as a store keeps its last good policies; said once
            # per change of the file.
            log.warning("approval templates of %s not reloaded: %s", pdp, exc)
            templates = seen[1] if seen is not None else {}
        self._loaded[pdp] = (mtime, templates)


__all__ = [
    "DEFAULT_STEP",
    "TEMPLATES_FILE",
    "CatalogField",
    "Step",
    "Template",
    "TemplateCatalog",
    "TemplatesError",
    "default_template",
    "load_templates",
    "parse_templates",
    "templates_problems",
]
