"""Generated policy stores for benchmarks: many policies that cannot apply, many resources."""

from __future__ import annotations

import json
from pathlib import Path

SCHEMA = """
entity user { department: String };
entity document { department: String };
entity other;
action view, edit appliesTo { principal: user, resource: document };
"""


def write_store(folder: Path, policies: int, documents: int = 10) -> Path:
    """A store where alice may view documents of her department, plus `policies - 1` policies
    for other actions and entity types (which a request about viewing a document skips)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        '@id("view-own-department")',
        'permit (principal is user, action == Action::"view", resource is document)',
        "when { resource.department == principal.department };",
    ]
    for n in range(policies - 1):
        lines += [
            f'@id("unrelated-{n}")',
            f'permit (principal is other, action == Action::"act-{n}", resource is other)',
            f'when {{ context has k{n} && context.k{n} == "v" }};',
        ]
    (folder / "policies.cedar").write_text("\n".join(lines) + "\n")
    schema = SCHEMA + "".join(
        f'action "act-{n}" appliesTo {{ principal: other, resource: other, '
        f"context: {{ k{n}?: String }} }};\n"
        for n in range(policies - 1)
    )
    (folder / "schema.cedarschema").write_text(schema)
    entities = [
        {"uid": {"type": "user", "id": "alice"}, "attrs": {"department": "d3"}, "parents": []}
    ] + [
        {
            "uid": {"type": "document", "id": f"doc-{n}"},
            "attrs": {"department": f"d{n % 10}"},
            "parents": [],
        }
        for n in range(documents)
    ]
    (folder / "entities.json").write_text(json.dumps(entities))
    return folder


VIEW = {
    "subject": {"type": "user", "id": "alice"},
    "action": {"name": "view"},
    "resource": {"type": "document", "id": "doc-3"},
}
