"""Command-line overrides of the configuration, and the request id in log lines."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pytest

from bridge.cli import _settings
from bridge.request_id import RequestIdLogFilter, request_id_var
from tests.conftest import POLICIES


def test_policy_store_override_keeps_the_store_options(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(
        f'[stores.default]\npath = "{POLICIES / "certification"}"\nexplanations = true\n\n'
        '[stores.default.auth]\napi_keys = ["pep-key-1"]\n'
    )
    args = argparse.Namespace(config=config, policy_store=[f"default={POLICIES / 'default'}"])
    settings = _settings(args)
    assert settings is not None
    store = settings.stores["default"]
    assert store.path == (POLICIES / "default").resolve()
    # The folder changed; the authentication and explanations of the store did not.
    assert [k.get_secret_value() for k in store.auth.api_keys] == ["pep-key-1"]
    assert store.explanations is True


def test_policy_store_adds_a_new_store_without_options(tmp_path: Path) -> None:
    args = argparse.Namespace(config=None, policy_store=[f"extra={POLICIES / 'todo'}"])
    settings = _settings(args)
    assert settings is not None
    assert settings.stores["extra"].auth.enabled is False


def test_log_lines_carry_the_request_id(caplog: pytest.LogCaptureFixture) -> None:
    record_filter = RequestIdLogFilter()
    logger = logging.getLogger("bridge.test")
    logger.addFilter(record_filter)
    try:
        with caplog.at_level(logging.INFO, logger="bridge.test"):
            token = request_id_var.set(None)
            logger.info("outside a request")
            request_id_var.set("req-42")
            logger.info("inside a request")
            request_id_var.reset(token)
    finally:
        logger.removeFilter(record_filter)
    assert [r.request_id for r in caplog.records] == ["-", "req-42"]  # type: ignore[attr-defined]
