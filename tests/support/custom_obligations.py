"""A deployment's own obligation handler, loaded by the bridge from its import path
(`oauth.obligation_handlers = ["tests.support.custom_obligations:Watermark"]`), the way
docs/obligations.md tells a deployment to write one.

`Watermark` carries out the `custom` obligations of the obligations profile's example (a
DLP suite watermarking what is fetched): it recognises `vendor = "example-dlp-suite"` with
`action = "watermark"`, refuses one without `watermark_text`, fails to carry out one whose
text is `"fail"`, and records the others in `CARRIED_OUT` (the bridge runs in the test's
process, in a thread).
"""

from __future__ import annotations

from bridge.authzen.obligations import Obligation
from bridge.oauth.obligations import BaseObligationHandler, CannotComply, Enforcement

# (obligation id, the token's subject, the watermark text), in the order carried out.
CARRIED_OUT: list[tuple[str, str, str]] = []


class Watermark(BaseObligationHandler):
    obligation_type = "custom"

    def recognizes(self, obligation: Obligation) -> bool:
        properties = obligation.properties
        return properties.get("vendor") == "example-dlp-suite" and (
            properties.get("action") == "watermark"
        )

    async def check(self, obligation: Obligation, enforcement: Enforcement) -> None:
        if not isinstance(obligation.properties.get("watermark_text"), str):
            raise CannotComply("a watermark needs its watermark_text")

    async def carry_out(self, obligation: Obligation, enforcement: Enforcement) -> None:
        text = obligation.properties["watermark_text"]
        if text == "fail":
            raise CannotComply("the DLP suite did not answer")
        CARRIED_OUT.append((obligation.id, enforcement.principal.token_sub, text))


def not_a_handler() -> object:
    """What a mistyped import path might name: the bridge refuses to start with it."""
    return object()
