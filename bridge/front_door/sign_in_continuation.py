"""Where a sign-in goes once the person is known: on to the consent of the authorization
request they came with, or back to a page of the bridge's own (an approval page); and which
sign-ins that request asked for (`acr_values`, `step_up`), checked when the person is back.

`next` is only ever a path on the bridge: a sign-in page is a classic open redirector when it
sends people wherever its query says (RFC 9700 §4.11), so anything else falls back to the
signed-in page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..grammar import has_control_character

SIGNED_IN_PATH = "/signed-in"
_MAX_PATH = 512


def local_path(value: str | None) -> str:
    """`value` when it is a path on this server, else the signed-in page."""
    if (
        not value
        or len(value) > _MAX_PATH
        or not value.startswith("/")
        # `//host` and `/\host` are other servers to a browser.
        or value[1:2] in ("/", "\\")
        or "\\" in value
        or has_control_character(value)
    ):
        return SIGNED_IN_PATH
    return value


@dataclass(frozen=True)
class Continuation:
    interaction: str | None = None
    next_path: str = SIGNED_IN_PATH
    acr_values: tuple[str, ...] = field(default=())

    @classmethod
    def to_interaction(cls, uid: str, acr_values: tuple[str, ...] = ()) -> Continuation:
        return cls(interaction=uid, next_path=f"/interaction/{uid}", acr_values=acr_values)

    @classmethod
    def to_page(cls, next_path: str | None) -> Continuation:
        return cls(next_path=local_path(next_path))

    @property
    def password_action(self) -> str:
        return f"/interaction/{self.interaction}/sign-in" if self.interaction else "/sign-in"

    @property
    def upstream_action(self) -> str:
        return f"{self.password_action}/upstream"

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"interaction": self.interaction, "next": self.next_path}
        if self.acr_values:
            data["acr_values"] = list(self.acr_values)
        return data

    @classmethod
    def from_json(cls, data: Any) -> Continuation:
        """Back from `as_json`; `ValueError` when `data` is not one."""
        if not isinstance(data, dict):
            raise ValueError("not a continuation")
        interaction = data.get("interaction")
        if interaction is not None:
            acr_values = data.get("acr_values", [])
            if not isinstance(interaction, str) or not isinstance(acr_values, list):
                raise ValueError("not a continuation")
            return cls.to_interaction(interaction, tuple(str(v) for v in acr_values))
        next_path = data.get("next")
        return cls.to_page(next_path if isinstance(next_path, str) else None)
