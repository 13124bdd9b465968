"""`bridge check` (and `bridge serve` refusing to start) as real processes on broken stores.

Every store here is a real folder under `tmp_path`: a copy of the shipped `certification`
store with one thing broken, so each test knows exactly which file and line must be named.
cedarpy gives no positions, so the bridge places a policy problem at the line (and column)
where the broken policy statement starts; the tests pin those lines exactly.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "policies" / "certification"


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def check(config: Path) -> subprocess.CompletedProcess[str]:
    return run_cli("check", "--config", str(config))


def problems(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The problem lines on stderr (without the closing count line)."""
    return [
        line
        for line in result.stderr.splitlines()
        if line.strip() and not re.fullmatch(r"\d+ problem\(s\) found", line)
    ]


def write_config(tmp_path: Path, stores: dict[str, Path], name: str = "bridge.toml") -> Path:
    lines = []
    for store, folder in stores.items():
        lines += [f"[stores.{store}]", f"path = {json.dumps(str(folder))}", ""]
    path = tmp_path / name
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def copy_store(tmp_path: Path, name: str = "cert") -> Path:
    folder = tmp_path / name
    shutil.copytree(SHIPPED, folder)
    return folder


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def assert_failed(result: subprocess.CompletedProcess[str], expected_problems: int) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{expected_problems} problem(s) found" in result.stderr.splitlines()
    assert "configuration, policy stores, profiles and clients are valid" not in result.stdout


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return copy_store(tmp_path)


@pytest.fixture
def config(tmp_path: Path, store: Path) -> Path:
    return write_config(tmp_path, {"cert": store})


# -- valid configurations -----------------------------------------------------------------


def test_shipped_configuration_is_valid() -> None:
    result = check(REPO / "bridge.toml")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout.splitlines()
    assert out[-1] == "configuration, policy stores, profiles and clients are valid"
    for name in ("default", "certification", "todo", "search", "gateway", "idp"):
        assert any(re.fullmatch(rf"store {name}: \d+ policies, \d+ entities", ln) for ln in out)


def test_copied_store_is_valid(config: Path, store: Path) -> None:
    result = check(config)
    assert result.returncode == 0, result.stderr
    shipped = len(re.findall(r"@id\(", (store / "policies.cedar").read_text()))
    assert f"store cert: {shipped} policies," in result.stdout


# -- policies -------------------------------------------------------------------------------


def test_policy_syntax_error_names_file_line_and_column(config: Path, store: Path) -> None:
    broken = write(
        store / "broken.cedar",
        "// A fine policy first.\n"
        '@id("fine")\n'
        'permit (principal is user, action == Action::"read", resource is record);\n'
        "\n"
        "// The comma after `action` is missing.\n"
        "permit (principal is user, action resource is record);\n",
    )
    result = check(config)
    assert_failed(result, 1)
    assert problems(result) == [f"{broken}:6:1: unexpected token `resource`"]


def test_two_broken_policies_in_one_file_are_both_reported(config: Path, store: Path) -> None:
    broken = write(
        store / "broken.cedar",
        '@id("first-broken")\n'  # line 1
        "permit (principal, action, resource) when { 1 + };\n"
        "\n"
        '@id("between-is-fine")\n'  # line 4
        "forbid (principal, action, resource);\n"
        "\n"
        '  @id("second-broken")\n'  # line 7, column 3
        "  permit (principal, action resource);\n"
        "\n"
        '@id("no-semicolon")\n'  # line 10: the file ends without `;`
        "permit (principal, action, resource)\n",
    )
    result = check(config)
    assert_failed(result, 3)
    assert problems(result) == [
        f"{broken}:1:1: unexpected token `}}`",
        f"{broken}:7:3: unexpected token `resource`",
        f"{broken}:10:1: unexpected end of input",
    ]


def test_schema_type_errors_carry_the_policys_line(config: Path, store: Path) -> None:
    typed = write(
        store / "typed.cedar",
        "// Valid: reads a declared attribute.\n"
        '@id("reads-status")\n'  # line 2: policy0
        "permit (\n"
        "  principal is user,\n"
        '  action == Action::"read",\n'
        "  resource is record\n"
        ")\n"
        'when { resource has status && resource.status == "active" };\n'
        "\n"
        "// Invalid: `colour` is not an attribute of `record`.\n"
        '@id("reads-colour")\n'  # line 11: policy1
        "permit (\n"
        "  principal is user,\n"
        '  action == Action::"read",\n'
        "  resource is record\n"
        ")\n"
        'when { resource.colour == "red" };\n'
        "\n"
        '@id("reads-shoe-size")\n'  # line 19: policy2
        'permit (principal is user, action == Action::"write", resource is record)\n'
        "when { principal.shoe_size == 44 };\n",
    )
    result = check(config)
    assert_failed(result, 2)
    found = problems(result)
    assert len(found) == 2, found
    assert found[0].startswith(f"{typed}:11: ")
    assert "`colour`" in found[0] and "`record`" in found[0]
    assert found[1].startswith(f"{typed}:19: ")
    assert "`shoe_size`" in found[1] and "`user`" in found[1]
    # The message is cedar's own, without the `for policy `policyN`` prefix.
    assert not any("policy1" in p or "policy2" in p for p in found)


def test_duplicate_id_in_one_file(config: Path, store: Path) -> None:
    dup = write(
        store / "dup.cedar",
        '@id("twice")\n'
        'permit (principal is user, action == Action::"read", resource is record);\n'
        "\n"
        "// Same id again.\n"
        '@id("twice")\n'
        'forbid (principal is user, action == Action::"read", resource is record);\n',
    )
    result = check(config)
    assert_failed(result, 1)
    assert problems(result) == [f"{dup}:5: duplicate policy id 'twice' ({dup}:1)"]


def test_duplicate_id_across_files(config: Path, store: Path) -> None:
    shipped = (store / "policies.cedar").read_text(encoding="utf-8")
    match = re.search(r'@id\("([^"]+)"\)', shipped)
    assert match is not None
    first_line = shipped.count("\n", 0, match.start()) + 1
    # `zz.cedar` sorts after `policies.cedar`, so it holds the second occurrence.
    dup = write(
        store / "zz.cedar",
        "// A copy of a shipped policy's id.\n"
        "\n"
        f'@id("{match.group(1)}")\n'
        'permit (principal is user, action == Action::"read", resource is record);\n',
    )
    result = check(config)
    assert_failed(result, 1)
    assert problems(result) == [
        f"{dup}:3: duplicate policy id {match.group(1)!r} ({store / 'policies.cedar'}:{first_line})"
    ]


# -- schema -----------------------------------------------------------------------------------

SCHEMA_WITH_UNKNOWN_TYPE = """\
entity user {
  role?: String,
};

entity record;

action read appliesTo {
  principal: NAME,
  resource: record,
};
"""


def test_broken_schema_names_the_file_and_the_tokens_line(config: Path, store: Path) -> None:
    schema = write(store / "schema.cedarschema", SCHEMA_WITH_UNKNOWN_TYPE.replace("NAME", "usr"))
    result = check(config)
    assert_failed(result, 1)
    assert problems(result) == [f"{schema}:8: schema: failed to resolve type: usr"]


def test_broken_schema_token_line_is_a_whole_word_match(config: Path, store: Path) -> None:
    # `use` is a prefix of `user` (line 1); the unresolved type is on line 8.
    schema = write(store / "schema.cedarschema", SCHEMA_WITH_UNKNOWN_TYPE.replace("NAME", "use"))
    result = check(config)
    assert_failed(result, 1)
    assert problems(result) == [f"{schema}:8: schema: failed to resolve type: use"]


def test_schema_syntax_error_names_the_file(config: Path, store: Path) -> None:
    schema = write(store / "schema.cedarschema", "entity user {\n  role?: String,\n\n")
    result = check(config)
    assert_failed(result, 1)
    [problem] = problems(result)
    assert problem.startswith(f"{schema}")
    assert "schema: error parsing schema" in problem


def test_two_schemas_are_refused(config: Path, store: Path) -> None:
    write(store / "other.cedarschema", "entity thing;\n")
    result = check(config)
    assert_failed(result, 1)
    assert problems(result) == [
        f"{store}: more than one schema: other.cedarschema, schema.cedarschema"
    ]


# -- entities ---------------------------------------------------------------------------------


def test_entities_not_json_names_line_and_column(config: Path, store: Path) -> None:
    entities = write(
        store / "entities.json",
        "[\n"
        '  {"uid": {"type": "user", "id": "alice"}, "attrs": {}, "parents": []},\n'
        '  {"uid": {"type": "user", "id": bob}, "attrs": {}, "parents": []}\n'
        "]\n",
    )
    col = len('  {"uid": {"type": "user", "id": ') + 1
    result = check(config)
    assert_failed(result, 1)
    assert problems(result) == [f"{entities}:3:{col}: not valid JSON: Expecting value"]


def test_entities_not_an_array(config: Path, store: Path) -> None:
    entities = write(store / "entities.json", '{"uid": {"type": "user", "id": "alice"}}\n')
    result = check(config)
    assert_failed(result, 1)
    assert problems(result) == [f"{entities}:1: must be a JSON array of entities"]


def test_nonconforming_entities_are_reported_at_their_lines(config: Path, store: Path) -> None:
    entities = write(
        store / "entities.json",
        "[\n"
        "  {\n"  # line 2: #0, fine
        '    "uid": {"type": "user", "id": "alice"},\n'
        '    "attrs": {},\n'
        '    "parents": []\n'
        "  },\n"
        '  {"uid": {"type": "record", "id": "r1"}, "attrs": {"status": 5}, "parents": []},\n'
        '  {"uid": {"type": "record", "id": "r2"}, "attrs": {"status": "ok"}, "parents": []},\n'
        "  {\n"  # line 9: #3, an attribute the schema does not declare
        '    "uid": {"type": "user", "id": "bob"},\n'
        '    "attrs": {"shoe_size": 44},\n'
        '    "parents": []\n'
        "  }\n"
        "]\n",
    )
    result = check(config)
    assert_failed(result, 2)
    found = problems(result)
    assert len(found) == 2, found
    assert found[0].startswith(f"{entities}:7: entity #1: ")
    assert found[1].startswith(f"{entities}:9: entity #3: ")


# -- several stores, several problems -----------------------------------------------------------


def test_problems_of_every_store_are_all_printed(tmp_path: Path) -> None:
    first = copy_store(tmp_path, "first")
    second = copy_store(tmp_path, "second")
    good = copy_store(tmp_path, "good")
    broken = write(first / "broken.cedar", "permit (principal, action resource);\n")
    dup = write(
        first / "zz.cedar",
        '@id("x")\npermit (principal, action, resource);\n'
        '@id("x")\nforbid (principal, action, resource);\n',
    )
    entities = write(second / "entities.json", "[\n  {,\n]\n")
    missing = tmp_path / "nowhere"
    config = write_config(
        tmp_path, {"first": first, "good": good, "second": second, "missing": missing}
    )
    result = check(config)
    assert_failed(result, 4)
    assert sorted(problems(result)) == sorted(
        [
            f"{broken}:1:1: unexpected token `resource`",
            f"{dup}:3: duplicate policy id 'x' ({dup}:1)",
            f"{entities}:2:4: not valid JSON: Expecting property name enclosed in double quotes",
            f"{missing}: not a folder",
        ]
    )
    assert str(good) not in result.stderr


# -- configuration file -------------------------------------------------------------------------


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    config = write(tmp_path / "bridge.toml", "[server]\nport = 8080\nhost = \n\n[reload]\n")
    result = check(config)
    assert result.returncode == 1
    [problem] = result.stderr.splitlines()
    assert problem.startswith(f"{config}:3: "), problem


def test_unknown_option_is_reported_at_its_line(tmp_path: Path) -> None:
    config = write(tmp_path / "bridge.toml", "[server]\nprot = 1\n")
    result = check(config)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{config}:2: server.prot: Extra inputs are not permitted"
    ]


def test_every_option_problem_is_reported_at_its_line(tmp_path: Path, store: Path) -> None:
    config = write(
        tmp_path / "bridge.toml",
        "# comment\n"
        "[server]\n"
        "port = 99999\n"
        "\n"
        "[stores.cert]\n"
        f"path = {json.dumps(str(store))}\n"
        "colour = 1\n",
    )
    result = check(config)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"{config}:3: server.port: ")
    assert lines[1] == f"{config}:7: stores.cert.colour: Extra inputs are not permitted"


def test_missing_config_file(tmp_path: Path) -> None:
    result = check(tmp_path / "absent.toml")
    assert result.returncode == 1
    assert result.stderr.startswith(f"{tmp_path / 'absent.toml'}: cannot read")


# -- serve ------------------------------------------------------------------------------------


def test_serve_with_a_broken_store_exits_1_printing_the_problem(
    tmp_path: Path, store: Path
) -> None:
    broken = write(store / "broken.cedar", "\n\n  permit (principal, action resource);\n")
    config = write_config(tmp_path, {"cert": store})
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # subprocess.run kills the child if it is still running at the timeout.
    result = run_cli("serve", "--config", str(config), "--port", str(port), timeout=30)
    assert result.returncode == 1
    assert f"{broken}:3:3: unexpected token `resource`" in result.stderr.splitlines()
    assert "Uvicorn running" not in result.stderr
