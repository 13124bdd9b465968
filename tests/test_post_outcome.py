"""What an answer to a POST means for an outbox delivery (`bridge.outbox.post_outcome`),
shared by ARAP callbacks, approvers' webhooks and SSF push delivery: a 2xx is delivered;
no answer, 408, 429 or a 5xx is tried again; a refused target or any other answer is
given up. The poster is a stand-in that answers as told: the network is not the point."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
import pytest

from bridge.outbound import OutboundPoster, TargetRefused
from bridge.outbox import Delivered, GiveUp, Outcome, Retry, post_outcome


class Answering(OutboundPoster):
    def __init__(self, answer: int | Exception) -> None:
        super().__init__(allow_private=False)
        self.answer = answer

    async def post(self, url: str, headers: Mapping[str, str], body: bytes) -> int:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (200, Delivered),
        (204, Delivered),
        (400, GiveUp),
        (401, GiveUp),
        (404, GiveUp),
        (408, Retry),
        (429, Retry),
        (500, Retry),
        (503, Retry),
        (TargetRefused("a private address"), GiveUp),
        (httpx.ConnectError("refused"), Retry),
        (TimeoutError(), Retry),
        (OSError(-2, "Name or service not known"), Retry),
    ],
)
async def test_an_answer_means(answer: int | Exception, outcome: type[Outcome]) -> None:
    got = await post_outcome(Answering(answer), "https://hook.test/", {}, b"{}", "webhook")
    assert isinstance(got, outcome), got
    if not isinstance(got, Delivered):
        assert got.reason.startswith("webhook "), got
