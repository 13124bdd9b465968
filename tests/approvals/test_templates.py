"""Approval templates as policy authors write them (`approvals.toml` beside the policies):
what a file says, what it refuses, and what a store without one means."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bridge.access_requests.templates import (
    DEFAULT_STEP,
    TEMPLATES_FILE,
    TemplateCatalog,
    TemplatesError,
    load_templates,
    parse_templates,
)
from bridge.authzen.cedar.store import APPROVAL_TEMPLATES_FILE, store_files
from tests.conftest import POLICIES, write_config


def test_the_demo_store_declares_a_two_step_template() -> None:
    templates = load_templates(POLICIES / "default")
    steps = templates["sensitive-export"].steps
    assert [s.name for s in steps] == ["manager", "data-protection"]
    assert steps[0].timeout_seconds == 3600 and steps[1].timeout_seconds is None
    assert templates["finance"].emergency_approval_seconds == 900
    assert templates["manager"].description


def test_a_template_the_file_does_not_name_is_one_approval() -> None:
    catalog = TemplateCatalog({"pdp": POLICIES / "default"})
    template = catalog.template("pdp", "unknown-template")
    assert [(s.name, s.approvals) for s in template.steps] == [(DEFAULT_STEP, 1)]
    assert template.emergency_approval_seconds is None


def test_a_store_without_the_file_has_no_templates(tmp_path: Path) -> None:
    assert load_templates(tmp_path) == {}


def test_quorum_and_timeouts_are_read() -> None:
    templates = parse_templates(
        """
[templates.board]
description = "Two of the board"
[[templates.board.steps]]
name = "board"
approvals = 2
timeout_seconds = 600
""",
        "approvals.toml",
    )
    [step] = templates["board"].steps
    assert (step.name, step.approvals, step.timeout_seconds) == ("board", 2, 600)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[templates.a]\nsteps = []", "at least 1"),
        ("[templates.a]\nunknown = 1", "Extra inputs"),
        ('[[templates.a.steps]]\nname = "x"\n[[templates.a.steps]]\nname = "x"', "differ"),
        ('[[templates.a.steps]]\nname = "x"\napprovals = 0', "greater than or equal to 1"),
        ('[[templates.a.steps]]\nname = "x"\ntimeout_seconds = 5', "greater than or equal to 60"),
        ('[[templates.a.steps]]\nname = "bad name"', "step name"),
        ('[templates."bad name"]', "template name"),
        ("[templates.a]\nemergency_approval_seconds = 10", "greater than or equal to 60"),
        ("[templates", "Expected"),
    ],
)
def test_a_file_that_cannot_be_used_is_refused_with_its_name(text: str, words: str) -> None:
    with pytest.raises(TemplatesError) as refused:
        parse_templates(text, "policies/x/approvals.toml")
    message = str(refused.value)
    assert message.startswith("policies/x/approvals.toml"), message
    assert words in message, message


def test_the_catalog_reads_a_changed_file_and_keeps_the_last_good_one(tmp_path: Path) -> None:
    file = tmp_path / TEMPLATES_FILE
    file.write_text('[[templates.t.steps]]\nname = "one"\n', encoding="utf-8")
    catalog = TemplateCatalog({"pdp": tmp_path})
    assert [s.name for s in catalog.template("pdp", "t").steps] == ["one"]

    file.write_text('[[templates.t.steps]]\nname = "two"\n', encoding="utf-8")
    later = time.time() + 5
    os.utime(file, (later, later))
    assert [s.name for s in catalog.template("pdp", "t").steps] == ["two"]

    file.write_text("[templates", encoding="utf-8")  # broken: the last good one stays
    os.utime(file, (later + 5, later + 5))
    assert [s.name for s in catalog.template("pdp", "t").steps] == ["two"]


def test_the_policy_store_watches_and_versions_the_templates_file(tmp_path: Path) -> None:
    # The engine's name for the file is the service's: a change reloads and re-versions it.
    assert APPROVAL_TEMPLATES_FILE == TEMPLATES_FILE
    (tmp_path / TEMPLATES_FILE).write_text("", encoding="utf-8")
    assert tmp_path / TEMPLATES_FILE in store_files(tmp_path)


def test_bridge_check_names_a_broken_templates_file(tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(POLICIES / "default", store)
    (store / TEMPLATES_FILE).write_text('[[templates.x.steps]]\nname = "a b"\n', encoding="utf-8")
    config = write_config(tmp_path / "bridge.toml", {"default": store})
    done = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stdout
    assert f"{store / TEMPLATES_FILE}: templates.x.steps.0.name" in done.stderr, done.stderr


def test_bridge_policy_validate_names_a_broken_templates_file(tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(POLICIES / "default", store)
    (store / TEMPLATES_FILE).write_text("[templates.x]\nsteps = []\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "policy", "validate", str(store)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stdout
    assert f"{store / TEMPLATES_FILE}: templates.x.steps" in done.stdout + done.stderr


def test_a_broken_file_is_said_once_and_the_last_good_templates_stay(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    file = tmp_path / TEMPLATES_FILE
    file.write_text('[[templates.t.steps]]\nname = "one"\n', encoding="utf-8")
    catalog = TemplateCatalog({"pdp": tmp_path})
    file.write_text("[templates", encoding="utf-8")
    later = time.time() + 5
    os.utime(file, (later, later))
    for _ in range(3):
        assert [s.name for s in catalog.template("pdp", "t").steps] == ["one"]
    said = [r for r in caplog.records if "not reloaded" in r.getMessage()]
    assert len(said) == 1
