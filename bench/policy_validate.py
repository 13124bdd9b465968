"""Policy validation benchmark: `bridge policy validate` on generated 1,000-policy stores.

Target: validating a 1,000-policy store takes under 2 s on the project's machine class
(2 cores). Validation is one `load_store` (parse, strict validation, entities) plus one parse
per file for the authoring rules, so the load is shown beside it. Two store shapes:

- `bench.stores`: the decision benchmark's store, 1,000 actions with one policy each (Cedar's
  validator works per action, so this is the expensive shape);
- authoring: 20 actions over 10 resource types, comments and `@id` on every policy, every
  tenth a `forbid` with `@approval`, plus the approver policies that `validate` looks for.

Usage: python -m bench.policy_validate [--policies 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from bench.stores import write_store
from bridge.authzen.cedar.store import load_store
from bridge.policy.validate import validate_store

ACTIONS = 20
RESOURCE_TYPES = 10
TEMPLATES = ("manager", "finance")


def write_authoring_store(folder: Path, policies: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    resources = ", ".join(f"res{n}" for n in range(RESOURCE_TYPES))
    schema = [
        "entity user { dept?: String, role?: String };",
        *(f"entity res{n} {{ dept?: String, owner?: user }};" for n in range(RESOURCE_TYPES)),
        "entity AccessRequest { template: String };",
        *(
            f'action "act-{n}" appliesTo {{ principal: user, resource: [{resources}], '
            "context: { k?: String, approval?: { id: String } } };"
            for n in range(ACTIONS)
        ),
        "action approve appliesTo { principal: user, resource: AccessRequest };",
    ]
    (folder / "schema.cedarschema").write_text("\n".join(schema) + "\n")
    lines = []
    for template in TEMPLATES:
        lines += [
            f"// A {template} may approve requests for the {template} template.",
            f'@id("approve-{template}")',
            'permit (principal is user, action == Action::"approve", resource is AccessRequest)',
            f'when {{ principal has role && principal.role == "{template}" && '
            f'resource.template == "{template}" }};',
            "",
        ]
    for n in range(policies - len(TEMPLATES)):
        scope = f'principal is user, action == Action::"act-{n % ACTIONS}", resource is res{n % 10}'
        if n % 10 == 9:
            template = TEMPLATES[n % 2]
            lines += [
                f"// Rule {n} needs {template} approval unless the request carries one.",
                f'@id("rule-{n}")',
                f'@approval("{template}")',
                f"forbid ({scope})",
                "unless { context has approval };",
                "",
            ]
        else:
            lines += [
                f"// Rule {n}: same department, with a context flag.",
                f'@id("rule-{n}")',
                f"permit ({scope})",
                "when { principal has dept && resource has dept && principal.dept == "
                f'resource.dept && context has k && context.k == "v{n}" }};',
                "",
            ]
    (folder / "policies.cedar").write_text("\n".join(lines))
    entities = [
        {"uid": {"type": "user", "id": f"u{n}"}, "attrs": {"dept": f"d{n % 5}"}, "parents": []}
        for n in range(100)
    ] + [
        {"uid": {"type": f"res{n % 10}", "id": f"r{n}"}, "attrs": {"dept": "d1"}, "parents": []}
        for n in range(1000)
    ]
    (folder / "entities.json").write_text(json.dumps(entities))
    return folder


def median_seconds(work: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policies", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stores = {
            "bench.stores shape (1,000 actions)": write_store(Path(tmp) / "a", args.policies),
            "authoring shape (20 actions, @approval)": write_authoring_store(
                Path(tmp) / "b", args.policies
            ),
        }
        for label, folder in stores.items():
            problems = validate_store(folder)
            assert not problems, [str(p) for p in problems]
            validate = median_seconds(partial(validate_store, folder), args.rounds)
            load = median_seconds(partial(load_store, "bench", folder), args.rounds)
            print(
                f"validate {args.policies:,} policies, {label}: {validate:.2f} s "
                f"(load_store alone {load:.2f} s; target < 2 s)"
            )


if __name__ == "__main__":
    main()
