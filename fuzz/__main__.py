"""`make fuzz`: schemathesis against every operation of openapi/bridge.json, on a live bridge.

1. start `bridge serve` configured like the local demo (fuzz/server.py) on a free loopback
   port, its state in a temporary folder;
2. run `st run` with fuzz/schemathesis.toml: positive and negative data for every operation,
   Basic auth as the demo client for /token, /introspect and /revoke, a demo approver's
   bearer token for /access/v1/approvals*; checks: no 5xx, response schema, content type
   and status code conformance;
3. stop the bridge, and print every finding: the operation, the input, the answer, and the
   traceback's last frame in bridge/ (fuzz/hooks.py records them call by call).

Exits non-zero when schemathesis found a failure or the bridge logged a traceback.
Reports (schemathesis' JUnit XML, the findings as JSON, the bridge's log) go to
`--report-dir` (default var/fuzz, which git ignores).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fuzz import tracebacks
from fuzz.server import REPO, running_bridge

SCHEMA = REPO / "openapi" / "bridge.json"
CONFIG = Path(__file__).with_name("schemathesis.toml")
ST = Path(sys.executable).parent / "st"
# The local demo's credentials: clients.toml publishes this client's secret for the demo.
DEMO_CLIENT_ID = "demo-agent"
DEMO_CLIENT_SECRET = "demo-agent-secret"
DEMO_APPROVER = "manager-1"
DESCRIPTION = "schemathesis against every operation of openapi/bridge.json, on a live bridge"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=DESCRIPTION)
    parser.add_argument(
        "--max-examples", type=int, default=100, help="fuzzing cases per operation (default 100)"
    )
    parser.add_argument("--seed", type=int, help="schemathesis seed, to repeat a run")
    parser.add_argument(
        "--report-dir", type=Path, default=REPO / "var" / "fuzz", help="where reports go"
    )
    args = parser.parse_args(argv)
    report_dir: Path = args.report_dir
    report_dir.mkdir(parents=True, exist_ok=True)
    record = report_dir / "calls.jsonl"
    record.unlink(missing_ok=True)

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bridge-fuzz-") as folder:
        with running_bridge(Path(folder)) as bridge:
            env = os.environ | {
                "FUZZ_BASE_URL": bridge.url,
                "FUZZ_CLIENT_ID": DEMO_CLIENT_ID,
                "FUZZ_CLIENT_SECRET": DEMO_CLIENT_SECRET,
                "FUZZ_APPROVER_TOKEN": bridge.approver_token(DEMO_APPROVER),
                "FUZZ_RECEIVER_TOKEN": bridge.receiver_token(),
                "FUZZ_BRIDGE_LOG": str(bridge.log),
                "FUZZ_RECORD": str(record),
                # `hooks = "fuzz.hooks"` is imported by `st`: the repository must be on its path.
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p
                ),
            }
            command = [
                str(ST),
                "--config-file",
                str(CONFIG),
                "run",
                str(SCHEMA),
                "--max-examples",
                str(args.max_examples),
                "--report",
                "junit",
                "--report-dir",
                str(report_dir),
                "--no-color",
            ]
            if args.seed is not None:
                command += ["--seed", str(args.seed)]
            print(f"bridge serving on {bridge.url}; running: {' '.join(command[1:])}", flush=True)
            schemathesis = subprocess.run(command, env=env, cwd=REPO, check=False)
            time.sleep(0.5)  # the last call's log lines
        # The bridge has stopped: its whole log, for tracebacks no call was charged with.
        shutil.copy(bridge.log, report_dir / "bridge.log")
    elapsed = time.monotonic() - started

    summary = Summary.read(record, report_dir / "bridge.log")
    (report_dir / "findings.json").write_text(
        json.dumps(summary.as_json(elapsed), indent=2), encoding="utf-8"
    )
    print(summary.render(elapsed, schemathesis.returncode, report_dir))
    return 0 if schemathesis.returncode == 0 and not summary.findings else 1


@dataclass
class Finding:
    operation: str
    status: int | None
    crash: str  # "ExceptionType at bridge/file.py:line (function)", or the logged error
    count: int = 0
    example: dict[str, Any] = field(default_factory=dict)


@dataclass
class Summary:
    calls: Counter[str]
    statuses: Counter[int | None]
    findings: list[Finding]
    unattributed: list[tuple[tracebacks.Crash, int]]

    @classmethod
    def read(cls, record: Path, log: Path) -> Summary:
        calls: Counter[str] = Counter()
        statuses: Counter[int | None] = Counter()
        findings: dict[tuple[str, int | None, str], Finding] = {}
        charged = 0
        lines = record.read_text(encoding="utf-8").splitlines() if record.exists() else []
        for line in lines:
            entry = json.loads(line)
            calls[entry["operation"]] += 1
            statuses[entry["status"]] += 1
            if "request" not in entry:
                continue
            crashes = entry.get("crashes") or []
            charged += len(crashes)
            causes = [_cause(c) for c in crashes] or [
                f"logged: {e.split(': ', 1)[-1][:200]}" for e in entry.get("log_errors", [])[:1]
            ]
            for cause in causes or ["no traceback logged"]:
                key = (entry["operation"], entry["status"], cause)
                finding = findings.setdefault(key, Finding(*key, example=entry))
                finding.count += 1
        everything = tracebacks.parse(log.read_text(errors="replace").splitlines(), REPO)
        # Tracebacks beyond those charged to a call (e.g. logged after the last one).
        unattributed = tracebacks.summarise(everything[charged:])
        ordered = sorted(findings.values(), key=lambda f: (f.operation, -f.count))
        return cls(calls, statuses, ordered, unattributed)

    def as_json(self, elapsed: float) -> dict[str, Any]:
        return {
            "seconds": round(elapsed, 1),
            "operations": len(self.calls),
            "cases": sum(self.calls.values()),
            "calls_per_operation": dict(self.calls.most_common()),
            "statuses": {str(k): v for k, v in self.statuses.most_common()},
            "findings": [f.__dict__ for f in self.findings],
        }

    def render(self, elapsed: float, exit_code: int, report_dir: Path) -> str:
        out = [
            "",
            "=" * 78,
            f"make fuzz: {len(self.calls)} operations exercised, "
            f"{sum(self.calls.values())} requests, {elapsed:.0f} s; schemathesis exit {exit_code}",
            "statuses: "
            + ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items(), key=_status)),
        ]
        if not self.findings:
            out.append("no 5xx, no network error, no traceback in the bridge's log")
        for finding in self.findings:
            request = finding.example.get("request", {})
            response = finding.example.get("response") or {}
            out += [
                "",
                f"FINDING {finding.operation} -> {finding.status} ({finding.count}x): "
                f"{finding.crash}",
                f"  request:  {request.get('method')} {request.get('url')}",
                f"            body: {request.get('body')!s:.300}",
                f"  response: {response.get('body')!s:.300}",
            ]
        for crash, count in self.unattributed:
            out.append(f"\nUNATTRIBUTED traceback ({count}x): {_cause(_crash_json(crash))}")
        out.append(f"\nreports: {report_dir} (findings.json, junit.xml, bridge.log, calls.jsonl)")
        return "\n".join(out)


def _cause(crash: dict[str, Any]) -> str:
    where = crash.get("bridge_frame") or f"outside bridge/: {crash.get('innermost')}"
    return f"{crash['exception'][:200]} escaping at {where}"


def _crash_json(crash: tracebacks.Crash) -> dict[str, Any]:
    return {
        "exception": crash.exception,
        "bridge_frame": crash.bridge_frame.short(REPO) if crash.bridge_frame else None,
        "innermost": crash.innermost.short(REPO) if crash.innermost else None,
    }


def _status(item: tuple[int | None, int]) -> int:
    return item[0] if item[0] is not None else 0


if __name__ == "__main__":
    sys.exit(main())
