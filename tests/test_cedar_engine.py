"""The embedded Cedar engine, in process, on real store folders written under `tmp_path`.

Covers the name and value mapping, the policy index (checked against Cedar evaluating the
whole policy set), the entity overlay paths (fast path, slices, batches), search with
pagination and explanations.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import cedarpy
import pytest
from cedarpy import pst

from bridge.authzen.cedar import calls as cedar_calls_module
from bridge.authzen.cedar import engine as engine_module
from bridge.authzen.cedar import entities as entities_module
from bridge.authzen.cedar.engine import CedarPDP
from bridge.authzen.cedar.names import DROPPED, cedar_record, cedar_type, to_cedar_value
from bridge.authzen.cedar.reload import StoreHolder
from bridge.authzen.cedar.store import PolicyStore, load_store
from bridge.authzen.models import (
    ActionSearchRequest,
    EvaluationRequest,
    ResourceSearchRequest,
    SubjectSearchRequest,
)
from bridge.authzen.pagination import Paginator

SECRET = b"test-page-token-secret"


def make_store(folder: Path, policies: str, schema: str | None, entities: list[Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "policies.cedar").write_text(policies, encoding="utf-8")
    if schema is not None:
        (folder / "schema.cedarschema").write_text(schema, encoding="utf-8")
    (folder / "entities.json").write_text(json.dumps(entities, indent=2), encoding="utf-8")
    return folder


def pdp_for(store: PolicyStore, *, explanations: bool = False, page_size: int = 1000) -> CedarPDP:
    return CedarPDP(StoreHolder(store), Paginator(SECRET, page_size), explanations=explanations)


def entity(etype: str, eid: str, attrs: dict[str, Any] | None = None, parents=()) -> Any:
    return {
        "uid": {"type": etype, "id": eid},
        "attrs": attrs or {},
        "parents": [{"type": t, "id": i} for t, i in parents],
    }


def ref(etype: str, eid: str) -> dict[str, Any]:
    return {"__entity": {"type": etype, "id": eid}}


def evaluation(
    subject: tuple[str, str],
    action: str,
    resource: tuple[str, str],
    *,
    subject_props: dict[str, Any] | None = None,
    resource_props: dict[str, Any] | None = None,
    action_props: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
) -> EvaluationRequest:
    body: dict[str, Any] = {
        "subject": {"type": subject[0], "id": subject[1]},
        "action": {"name": action},
        "resource": {"type": resource[0], "id": resource[1]},
    }
    if subject_props is not None:
        body["subject"]["properties"] = subject_props
    if resource_props is not None:
        body["resource"]["properties"] = resource_props
    if action_props is not None:
        body["action"]["properties"] = action_props
    if context is not None:
        body["context"] = context
    return EvaluationRequest.model_validate(body)


# -- names and values -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["user", "User_2", "_x", "Acme::Doc", "a::b", "a::b::c"])
def test_cedar_type_keeps_valid_names(name: str) -> None:
    assert cedar_type(name) == name


@pytest.mark.parametrize(
    "name",
    ["my-type", "if", "in", "true", "a::if", "2fa", "", "a:b", "a::", "ü", "a b", "AuthZEN_6966"],
)
def test_cedar_type_escapes_other_names(name: str) -> None:
    escaped = cedar_type(name)
    assert escaped != name
    assert escaped == "AuthZEN_" + name.encode("utf-8").hex()
    # The result is itself a valid Cedar type name.
    cedarpy.PolicySet.from_str(f"permit (principal is {escaped}, action, resource);")


def test_cedar_type_is_injective() -> None:
    names = ["my-type", "if", "a::b", "a::if", "a_b", "a-b", "a::b::c", "ab", "IF", "", "If"]
    mapped = [cedar_type(n) for n in names]
    assert len(set(mapped)) == len(names), dict(zip(names, mapped, strict=True))


def test_cedar_type_escape_does_not_collide_with_a_verbatim_name() -> None:
    # `AuthZEN_6d792d74797065` is a valid Cedar name, so it is kept verbatim, and it is also
    # what `my-type` escapes to: two AuthZEN types would then share one Cedar type.
    escaped = cedar_type("my-type")
    assert escaped != "my-type"
    assert cedar_type(escaped) != escaped


def test_to_cedar_value_conversions() -> None:
    assert to_cedar_value(None) is DROPPED
    assert to_cedar_value(True) is True
    assert to_cedar_value("x") == "x"
    assert to_cedar_value(7) == 7
    one = to_cedar_value(1.0)
    assert one == 1 and type(one) is int
    assert to_cedar_value(2.5) == {"__extn": {"fn": "decimal", "arg": "2.5000"}}
    assert to_cedar_value(-0.125) == {"__extn": {"fn": "decimal", "arg": "-0.1250"}}
    assert to_cedar_value(0.123456) is DROPPED
    assert to_cedar_value(float("nan")) is DROPPED
    assert to_cedar_value(float("inf")) is DROPPED
    assert to_cedar_value(2**70) is DROPPED
    assert to_cedar_value(-(2**63)) == -(2**63)
    assert to_cedar_value(2**63) is DROPPED
    assert to_cedar_value([1, None, 2.5, 0.123456, 2**70, "a", [None]]) == [
        1,
        {"__extn": {"fn": "decimal", "arg": "2.5000"}},
        "a",
        [],
    ]


def test_to_cedar_value_drops_reserved_members_at_every_depth() -> None:
    value = {
        "a": None,
        "b": 1.0,
        "__entity": {"type": "user", "id": "alice"},
        "nested": {
            "owner": {"__entity": {"type": "user", "id": "alice"}, "name": "x"},
            "__extn": {"fn": "ip", "arg": "10.0.0.1"},
            "list": [{"__entity": {"type": "user", "id": "alice"}}, 3],
        },
        "_single": 1,
    }
    assert to_cedar_value(value) == {
        "b": 1,
        "nested": {"owner": {"name": "x"}, "list": [{}, 3]},
        "_single": 1,
    }
    assert cedar_record({"x": 0.123456, "y": 2**70}) == {}


async def test_decimal_context_values(tmp_path: Path) -> None:
    folder = make_store(
        tmp_path / "dec",
        '@id("cheap")\npermit (principal, action, resource)\n'
        'when { context has price && context.price.lessThan(decimal("10.5")) };\n',
        None,
        [],
    )
    pdp = pdp_for(load_store("dec", folder))
    decisions = []
    for price in (2.25, 10.75, 0.123456, 3):
        req = evaluation(("u", "1"), "buy", ("item", "1"), context={"price": price})
        decisions.append((await pdp.evaluate(req)).decision)
    # 0.123456 is dropped (so `has` fails); 3 is a Long, and `lessThan` on a Long is an error.
    assert decisions == [True, False, False, False]


# -- forging entity references --------------------------------------------------------------

OWNERSHIP_SCHEMA = """\
entity user {
  dept?: String,
};

entity doc {
  owner?: user,
  title?: String,
};

action read appliesTo {
  principal: user,
  resource: doc,
  context: {
    who?: user,
  },
};
"""

OWNERSHIP_POLICIES = """\
// The owner of a doc may read it.
@id("owner-reads")
permit (principal is user, action == Action::"read", resource is doc)
when { resource has owner && resource.owner == principal };

// The user the context names may read.
@id("context-names-reader")
permit (principal is user, action == Action::"read", resource is doc)
when { context has who && context.who == principal };
"""


@pytest.fixture
def ownership_store(tmp_path: Path) -> PolicyStore:
    folder = make_store(
        tmp_path / "own",
        OWNERSHIP_POLICIES,
        OWNERSHIP_SCHEMA,
        [
            entity("user", "alice"),
            entity("user", "bob"),
            entity("doc", "d1", {"owner": ref("user", "bob"), "title": "plan"}),
        ],
    )
    return load_store("own", folder)


async def test_request_properties_cannot_forge_an_entity_reference(
    ownership_store: PolicyStore,
) -> None:
    pdp = pdp_for(ownership_store)
    alice, bob = ("user", "alice"), ("user", "bob")
    d1 = ("doc", "d1")
    explicit = ref("user", "alice")
    implicit = {"type": "user", "id": "alice"}

    # Sanity: the stored owner reads, another user does not.
    assert (await pdp.evaluate(evaluation(bob, "read", d1))).decision is True
    assert (await pdp.evaluate(evaluation(alice, "read", d1))).decision is False
    # Changing an unrelated property keeps the stored reference.
    kept = evaluation(bob, "read", d1, resource_props={"title": "other"})
    assert (await pdp.evaluate(kept)).decision is True

    forged = [
        evaluation(alice, "read", d1, resource_props={"owner": explicit}),
        evaluation(alice, "read", d1, resource_props={"owner": implicit}),
        evaluation(alice, "read", ("doc", "unknown"), resource_props={"owner": explicit}),
        evaluation(alice, "read", ("doc", "unknown"), resource_props={"owner": implicit}),
        evaluation(alice, "read", d1, resource_props={"owner": [explicit]}),
        evaluation(alice, "read", d1, context={"who": explicit}),
        evaluation(alice, "read", d1, context={"who": implicit}),
    ]
    for request in forged:
        assert (await pdp.evaluate(request)).decision is False, request
    assert [d.decision for d in await pdp.evaluations(forged)] == [False] * len(forged)
    # The forged owner replaced the stored one: even the real owner is no longer it.
    replaced = evaluation(bob, "read", d1, resource_props={"owner": ref("user", "bob")})
    assert (await pdp.evaluate(replaced)).decision is False


# -- the policy index against the whole policy set ----------------------------------------------

INDEX_SCHEMA = """\
entity Group in [Group];
entity User in [Group] {
  level?: Long,
  dept?: String,
};
entity Bot in [Group] {
  level?: Long,
  dept?: String,
};
entity Folder in [Folder] {
  owner?: User,
  level?: Long,
  dept?: String,
};
entity Doc in [Folder] {
  owner?: User,
  level?: Long,
  dept?: String,
};
entity Photo in [Folder] {
  owner?: User,
  level?: Long,
  dept?: String,
};

action g_all;
action g_read, g_write in [g_all];
action view, list in [g_read] appliesTo {
  principal: [User, Bot],
  resource: [Folder, Doc, Photo],
  context: { flag?: Bool },
};
action edit, remove in [g_write] appliesTo {
  principal: [User, Bot],
  resource: [Folder, Doc, Photo],
  context: { flag?: Bool },
};
action share appliesTo {
  principal: [User, Bot],
  resource: [Folder, Doc, Photo],
  context: { flag?: Bool },
};
"""

GROUPS = ["g0", "g1", "g2", "g3"]
USERS = [f"u{n}" for n in range(8)]
BOTS = ["b0", "b1", "b2"]
FOLDERS = ["f0", "f1", "f2", "f3"]
DOCS = [f"d{n}" for n in range(8)]
PHOTOS = ["p0", "p1", "p2", "p3"]
DEPTS = ["eng", "ops", "law"]

PRINCIPAL_SCOPES = [
    "principal",
    "principal",
    'principal == User::"u1"',
    'principal == Bot::"b0"',
    "principal is User",
    "principal is Bot",
    'principal in Group::"g0"',
    'principal in Group::"g2"',
    'principal is User in Group::"g1"',
    'principal is Bot in Group::"g3"',
]
ACTION_SCOPES = [
    "action",
    'action == Action::"view"',
    'action == Action::"edit"',
    'action == Action::"share"',
    'action in [Action::"list", Action::"remove"]',
    'action in Action::"g_read"',
    'action in Action::"g_write"',
    'action in Action::"g_all"',
    'action in [Action::"g_write", Action::"share"]',
]
RESOURCE_SCOPES = [
    "resource",
    "resource",
    'resource == Doc::"d1"',
    'resource == Photo::"p2"',
    "resource is Doc",
    "resource is Photo",
    "resource is Folder",
    'resource in Folder::"f0"',
    'resource in Folder::"f2"',
    'resource is Doc in Folder::"f1"',
]
CONDITIONS = [
    "",
    "",
    "when { principal has level && principal.level > 2 }",
    "when { resource has owner && resource.owner == principal }",
    "when { principal has dept && resource has dept && principal.dept == resource.dept }",
    "when { context has flag && context.flag }",
    'when { principal in Group::"g1" }',
    'when { resource in Folder::"f3" }',
    "unless { resource has level && resource.level >= 3 }",
    'when { principal has level && User::"u0" has level && principal.level >= User::"u0".level }',
    'when { resource has owner && resource.owner in Group::"g2" }',
]


def index_entities(rng: random.Random) -> list[Any]:
    def attrs(owner: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if rng.random() < 0.8:
            out["level"] = rng.randrange(6)
        if rng.random() < 0.8:
            out["dept"] = rng.choice(DEPTS)
        if owner and rng.random() < 0.7:
            out["owner"] = ref("User", rng.choice(USERS))
        return out

    group_parents = {"g0": [], "g1": [("Group", "g0")], "g2": [("Group", "g1")], "g3": []}
    folder_parents = {"f0": [], "f1": [("Folder", "f0")], "f2": [], "f3": [("Folder", "f2")]}
    out = [entity("Group", g, None, group_parents[g]) for g in GROUPS]
    for etype, ids in (("User", USERS), ("Bot", BOTS)):
        for eid in ids:
            parents = [("Group", g) for g in rng.sample(GROUPS, rng.randrange(3))]
            out.append(entity(etype, eid, attrs(False), parents))
    out += [entity("Folder", f, attrs(True), folder_parents[f]) for f in FOLDERS]
    for etype, ids in (("Doc", DOCS), ("Photo", PHOTOS)):
        for eid in ids:
            parents = [("Folder", f) for f in rng.sample(FOLDERS, rng.randrange(2))]
            out.append(entity(etype, eid, attrs(True), parents))
    return out


def index_policies(rng: random.Random, count: int) -> str:
    parts = []
    for n in range(count):
        effect = "forbid" if rng.random() < 0.15 else "permit"
        scope = ",\n  ".join(
            (
                rng.choice(PRINCIPAL_SCOPES),
                rng.choice(ACTION_SCOPES),
                rng.choice(RESOURCE_SCOPES),
            )
        )
        condition = rng.choice(CONDITIONS)
        parts.append(f'@id("p{n:03d}")\n{effect} (\n  {scope}\n)\n{condition};\n')
    return "\n".join(parts)


@pytest.fixture(scope="module")
def index_store(tmp_path_factory: pytest.TempPathFactory) -> PolicyStore:
    rng = random.Random(20240611)
    folder = make_store(
        tmp_path_factory.mktemp("index") / "idx",
        index_policies(rng, 200),
        INDEX_SCHEMA,
        index_entities(rng),
    )
    return load_store("idx", folder)


def test_index_store_is_what_was_written(index_store: PolicyStore) -> None:
    assert len(index_store.policies) == 200
    assert index_store.schema is not None
    # The schema's actions (groups included) are entities; policies name every leaf action.
    assert {"view", "list", "edit", "remove", "share"} <= set(index_store.actions)


def random_request(rng: random.Random, with_properties: bool) -> EvaluationRequest:
    ids = {
        "User": USERS,
        "Bot": BOTS,
        "Group": GROUPS,
        "Doc": DOCS,
        "Photo": PHOTOS,
        "Folder": FOLDERS,
    }
    subject_type = rng.choice(["User"] * 6 + ["Bot"] * 3 + ["Group", "Robot", "my-type", "Doc"])
    resource_type = rng.choice(["Doc"] * 4 + ["Photo"] * 2 + ["Folder"] * 2 + ["User", "Thing"])
    action = rng.choice(
        ["view", "list", "edit", "remove", "share"] * 3
        + ["g_read", "g_write", "g_all", "nope", "View"]
    )

    def pick(etype: str) -> str:
        known = ids.get(etype, [])
        return rng.choice(known) if known and rng.random() < 0.9 else "ghost"

    def props(resource: bool) -> dict[str, Any] | None:
        if not with_properties or rng.random() < 0.4:
            return None
        out: dict[str, Any] = {}
        if rng.random() < 0.7:
            out["level"] = rng.choice([0, 1, 3, 5, 4.0, None])
        if rng.random() < 0.5:
            out["dept"] = rng.choice(DEPTS)
        if resource and rng.random() < 0.2:
            out["owner"] = ref("User", rng.choice(USERS))
        return out

    context = {"flag": rng.random() < 0.5} if rng.random() < 0.6 else None
    return evaluation(
        (subject_type, pick(subject_type)),
        action,
        (resource_type, pick(resource_type)),
        subject_props=props(False),
        resource_props=props(True),
        action_props={"n": 1} if rng.random() < 0.2 else None,
        context=context,
    )


def reference(store: PolicyStore, request: EvaluationRequest) -> cedarpy.AuthzResult:
    """Cedar on the store's whole policy set, the entities overlaid as the README says."""
    principal = {"type": cedar_type(request.subject.type), "id": request.subject.id}
    resource = {"type": cedar_type(request.resource.type), "id": request.resource.id}
    context = cedar_record(request.context or {})
    context["action_properties"] = cedar_record(request.action.properties or {})
    cedar_request = {
        "principal": principal,
        "action": {"type": "Action", "id": request.action.name},
        "resource": resource,
        "context": context,
    }
    entities: Any = store.entities.handle
    overlays = [(principal, request.subject.properties), (resource, request.resource.properties)]
    if any(props for _, props in overlays):
        records = {
            (r["uid"]["type"], r["uid"]["id"]): r for r in json.loads(str(store.entities.handle))
        }
        for uid, props in overlays:
            if not props:
                continue
            key = (uid["type"], uid["id"])
            attrs = cedar_record(props)
            if key in records:
                base = records[key]
                records[key] = {**base, "attrs": {**base["attrs"], **attrs}}
            elif attrs:
                records[key] = {"uid": uid, "attrs": attrs, "parents": []}
        entities = json.dumps(list(records.values()))
    return cedarpy.is_authorized(cedar_request, store.policy_set, entities)


def assert_same(decision: Any, expected: cedarpy.AuthzResult, request: Any) -> None:
    assert expected.decision in (cedarpy.Decision.Allow, cedarpy.Decision.Deny), request
    assert decision.decision is (expected.decision is cedarpy.Decision.Allow), request
    assert decision.context["determining_policies"] == sorted(expected.diagnostics.reasons), request
    assert sorted(decision.context.get("evaluation_errors", [])) == sorted(
        expected.diagnostics.errors
    ), request


async def test_index_decides_like_the_whole_policy_set(index_store: PolicyStore) -> None:
    rng = random.Random(7)
    pdp = pdp_for(index_store, explanations=True)
    plain = [random_request(rng, with_properties=False) for _ in range(250)]
    overlaid = [random_request(rng, with_properties=True) for _ in range(250)]
    allowed = 0
    for request in plain + overlaid:
        expected = reference(index_store, request)
        assert_same(await pdp.evaluate(request), expected, request)
        allowed += expected.decision is cedarpy.Decision.Allow
    # The comparison means something only if both answers occur often.
    assert 50 < allowed < 450, allowed
    # Batched: items are grouped by index key and decided together; in the second batch
    # items overlay the same entities differently, or reach them as stored.
    for batch in (plain, overlaid, plain[:100] + overlaid[:100]):
        for request, decision in zip(batch, await pdp.evaluations(batch), strict=True):
            assert_same(decision, reference(index_store, request), request)


CONTEXT_POLICIES = """
@reason("the word context in an annotation and a string reads nothing")
permit (principal is User, action == Action::"view", resource is Doc)
when { resource.title != "context" };

permit (principal is User, action == Action::"edit", resource is Doc);

forbid (principal, action == Action::"edit", resource)
when { context has frozen && context.frozen };

forbid (principal, action == Action::"share", resource)
unless { [1, {"n": context.action_properties}].contains(1) };
"""


async def test_a_context_no_candidate_reads_is_left_out_and_one_that_is_read_decides(
    tmp_path: Path,
) -> None:
    store = load_store(
        "ctx",
        make_store(
            tmp_path / "ctx",
            CONTEXT_POLICIES,
            None,
            [entity("User", "u1"), entity("Doc", "d1", {"title": "plan"})],
        ),
    )
    index = store.index
    assert not index.policy_set(index.key("User", "view", "Doc")).reads_context
    assert index.policy_set(index.key("User", "edit", "Doc")).reads_context
    assert index.policy_set(index.key("User", "share", "Doc")).reads_context  # deep in a record
    pdp = pdp_for(store, explanations=True)
    frozen = {"frozen": True}
    requests = [
        evaluation(("User", "u1"), "view", ("Doc", "d1"), context=frozen),
        evaluation(("User", "u1"), "edit", ("Doc", "d1")),
        evaluation(("User", "u1"), "edit", ("Doc", "d1"), context=frozen),
    ]
    # Alone and in one batch, each as Cedar decides it over every policy with the context.
    singles = [await pdp.evaluate(r) for r in requests]
    batched = await pdp.evaluations(requests)
    for request, single, in_batch in zip(requests, singles, batched, strict=True):
        expected = reference(store, request)
        assert_same(single, expected, request)
        assert_same(in_batch, expected, request)
    assert [d.decision for d in singles] == [True, True, False]


def test_index_narrows_the_candidates(index_store: PolicyStore) -> None:
    index = index_store.index
    by_key = {
        key: len(index.candidates(key))
        for key in (
            index.key("User", "view", "Doc"),
            index.key("Bot", "share", "Photo"),
            index.key("Robot", "nope", "Thing"),
            index.key("User", "g_all", "Folder"),
        )
    }
    assert all(0 < n < 200 for n in by_key.values()), by_key
    # Unknown types and actions collapse into one key.
    assert index.key("Robot", "nope", "Thing") == index.key("Other", "other", "Else")
    # Action groups: `action in Action::"g_all"` applies to a leaf action through g_read.
    leaf = {p.policy_id for p in index.candidates(index.key("User", "view", "Doc"))}
    open_scope = (pst.ScopeAny, pst.ScopeIn)  # these admit a principal or resource of any type
    group_policies = {
        p.policy_id
        for p in index_store.policies
        if isinstance(p.template.action, pst.ActionIn)
        and {u.id for u in p.template.action.entities} == {"g_all"}
        and isinstance(p.template.principal, open_scope)
        and isinstance(p.template.resource, open_scope)
    }
    assert group_policies, "the generated store should have such policies"
    assert group_policies <= leaf


# -- overlays: fast path, slices, batches ------------------------------------------------------

ORG_SCHEMA = """\
entity Group in [Group];
entity Team in [Group];
entity User in [Team, Group] {
  level?: Long,
  dept?: String,
  nickname?: String,
};
entity Folder {
  owner?: User,
  meta?: {
    reviewer?: User,
  },
};
entity Doc in [Folder] {
  folder?: Folder,
  title?: String,
};

action view, edit appliesTo {
  principal: User,
  resource: Doc,
};
"""

ORG_POLICIES = """\
// Staff (directly or through a team) with a level may view docs.
@id("staff-view")
permit (principal in Group::"staff", action == Action::"view", resource is Doc)
when { principal has level && principal.level >= 1 };

// A user of the folder owner's department may edit its docs.
@id("folder-owner-dept-edit")
permit (principal is User, action == Action::"edit", resource is Doc)
when
{
  principal has dept &&
  resource has folder &&
  resource.folder has owner &&
  resource.folder.owner has dept &&
  resource.folder.owner.dept == principal.dept
};

// Senior users may edit docs of folders that an auditor reviews.
@id("audited-senior-edit")
permit (principal is User, action == Action::"edit", resource is Doc)
when
{
  principal has level &&
  principal.level >= 2 &&
  resource has folder &&
  resource.folder has meta &&
  resource.folder.meta has reviewer &&
  resource.folder.meta.reviewer has dept &&
  resource.folder.meta.reviewer.dept == "audit"
};
"""


@pytest.fixture(scope="module")
def org_store(tmp_path_factory: pytest.TempPathFactory) -> PolicyStore:
    folder = make_store(
        tmp_path_factory.mktemp("org") / "org",
        ORG_POLICIES,
        ORG_SCHEMA,
        [
            entity("Group", "staff"),
            entity("Team", "eng", None, [("Group", "staff")]),
            entity("User", "alice", {"level": 0, "dept": "eng"}, [("Team", "eng")]),
            entity("User", "dave", {"level": 3, "dept": "eng"}, [("Group", "staff")]),
            entity("User", "bob", {"level": 5, "dept": "sales"}),
            entity("User", "carol", {"dept": "ops"}),
            entity("User", "rita", {"dept": "audit"}),
            entity(
                "Folder",
                "f1",
                {"owner": ref("User", "carol"), "meta": {"reviewer": ref("User", "rita")}},
            ),
            entity(
                "Doc", "d1", {"folder": ref("Folder", "f1"), "title": "plan"}, [("Folder", "f1")]
            ),
        ],
    )
    return load_store("org", folder)


class CedarCalls:
    """Records the entities argument of every Cedar call the engine makes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entities: list[Any] = []
        real = cedar_calls_module.authorize

        def authorize(requests: Any, policies: Any, entities: Any) -> Any:
            self.entities.append(entities)
            return real(requests, policies, entities)

        monkeypatch.setattr(engine_module, "authorize", authorize)

    def take(self) -> list[Any]:
        out, self.entities = self.entities, []
        return out


@pytest.fixture
def cedar_calls(monkeypatch: pytest.MonkeyPatch) -> CedarCalls:
    return CedarCalls(monkeypatch)


async def decide(pdp: CedarPDP, request: EvaluationRequest) -> bool:
    return (await pdp.evaluate(request)).decision


ALICE, DAVE, BOB, ZOE = ("User", "alice"), ("User", "dave"), ("User", "bob"), ("User", "zoe")
D1 = ("Doc", "d1")


async def test_properties_that_change_a_stored_attribute_change_the_decision(
    org_store: PolicyStore, cedar_calls: CedarCalls
) -> None:
    pdp = pdp_for(org_store)
    assert await decide(pdp, evaluation(DAVE, "view", D1)) is True
    assert await decide(pdp, evaluation(DAVE, "view", D1, subject_props={"level": 0})) is False
    assert await decide(pdp, evaluation(ALICE, "view", D1)) is False
    assert await decide(pdp, evaluation(ALICE, "view", D1, subject_props={"level": 1})) is True
    # bob has the level but no membership: properties cannot add parents.
    assert await decide(pdp, evaluation(BOB, "view", D1, subject_props={"level": 9})) is False
    # Requests without properties use the stored handle; overlays are decided on a slice.
    handle = org_store.entities.handle
    calls = cedar_calls.take()
    assert [c is handle for c in calls] == [True, False, True, False, False]
    assert all(isinstance(c, str) for c in calls if c is not handle)


async def test_identical_properties_take_the_fast_path(
    org_store: PolicyStore, cedar_calls: CedarCalls
) -> None:
    pdp = pdp_for(org_store)
    same = [
        evaluation(DAVE, "view", D1, subject_props={"level": 3}),
        evaluation(DAVE, "view", D1, subject_props={"level": 3.0, "dept": "eng"}),
        evaluation(DAVE, "view", D1, subject_props={"level": 3, "nothing": None}),
        evaluation(ALICE, "view", D1, subject_props={"level": 0}, resource_props={"title": "plan"}),
        evaluation(ALICE, "view", D1, subject_props={}),
    ]
    expected = [True, True, True, False, False]
    assert [await decide(pdp, r) for r in same] == expected
    assert [d.decision for d in await pdp.evaluations(same)] == expected
    calls = cedar_calls.take()
    assert calls and all(c is org_store.entities.handle for c in calls)


async def test_unknown_entity_is_evaluated_from_its_properties(org_store: PolicyStore) -> None:
    pdp = pdp_for(org_store)
    assert await decide(pdp, evaluation(ZOE, "edit", D1)) is False
    assert await decide(pdp, evaluation(ZOE, "edit", D1, subject_props={"dept": "ops"})) is True
    assert await decide(pdp, evaluation(ZOE, "edit", D1, subject_props={"dept": "eng"})) is False
    assert await decide(pdp, evaluation(ZOE, "edit", D1, subject_props={"level": 2})) is True
    # No parents for an entity that is not stored, whatever its properties.
    assert await decide(pdp, evaluation(ZOE, "view", D1, subject_props={"level": 9})) is False
    # An unknown resource has only what the request gives it: no folder, so no grant.
    unknown_doc = ("Doc", "d9")
    edit = evaluation(("User", "carol"), "edit", unknown_doc, resource_props={"title": "x"})
    assert await decide(pdp, edit) is False


async def test_a_small_store_adds_new_entities_to_its_handle(
    org_store: PolicyStore, cedar_calls: CedarCalls, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entities a request adds (none of them stored) go into a copy of a small store's
    handle instead of a slice; the decisions are the slices' (and the tests')."""
    carol = ("User", "carol")
    pdp = pdp_for(org_store)
    cases = [
        (evaluation(ZOE, "edit", D1, subject_props={"dept": "ops"}), True),
        (evaluation(ZOE, "edit", D1, subject_props={"dept": "eng"}), False),
        (evaluation(ZOE, "edit", D1, subject_props={"level": 2}), True),
        (evaluation(ZOE, "view", D1, subject_props={"level": 9}), False),
        (evaluation(carol, "edit", ("Doc", "d9"), resource_props={"title": "x"}), False),
    ]
    expected = [want for _, want in cases]
    requests = [request for request, _ in cases]
    assert len(org_store.entities) <= entities_module.SMALL_STORE
    assert [await decide(pdp, r) for r in requests] == expected
    assert [d.decision for d in await pdp.evaluations(requests)] == expected
    added = cedar_calls.take()
    assert added and all(isinstance(c, cedarpy.Entities) for c in added)
    assert all(c is not org_store.entities.handle for c in added)
    monkeypatch.setattr(entities_module, "SMALL_STORE", 0)
    assert [await decide(pdp, r) for r in requests] == expected
    assert [d.decision for d in await pdp.evaluations(requests)] == expected
    assert all(isinstance(c, str) for c in cedar_calls.take())


async def test_batch_items_overlaying_one_entity_differently(org_store: PolicyStore) -> None:
    pdp = pdp_for(org_store)
    items = [
        (evaluation(DAVE, "view", D1, subject_props={"level": 0}), False),
        (evaluation(DAVE, "view", D1), True),
        (evaluation(DAVE, "view", D1, subject_props={"level": 0}), False),
        (evaluation(DAVE, "view", D1, subject_props={"level": 3}), True),
        (evaluation(ALICE, "view", D1, subject_props={"level": 2}), True),
        (evaluation(ALICE, "view", D1), False),
        (evaluation(ALICE, "edit", D1, subject_props={"dept": "ops"}), True),
        (evaluation(ALICE, "edit", D1, subject_props={"dept": "eng"}), False),
        (evaluation(ZOE, "edit", D1, subject_props={"dept": "ops"}), True),
        (evaluation(ZOE, "edit", D1), False),
    ]
    # Each item alone is right...
    assert [await decide(pdp, r) for r, _ in items] == [want for _, want in items]
    # ...and so is each item of one batch, whatever the other items overlay.
    decisions = await pdp.evaluations([r for r, _ in items])
    assert [d.decision for d in decisions] == [want for _, want in items]


async def test_batch_item_without_properties_after_an_overlay(org_store: PolicyStore) -> None:
    """Item order must not matter: an item without properties sees the stored entity."""
    pdp = pdp_for(org_store)
    elevated = evaluation(ALICE, "view", D1, subject_props={"level": 2})
    stored = evaluation(ALICE, "view", D1)
    assert [d.decision for d in await pdp.evaluations([elevated, stored])] == [True, False]
    assert [d.decision for d in await pdp.evaluations([stored, elevated])] == [False, True]


async def test_parents_still_count_when_the_entity_is_overlaid(
    org_store: PolicyStore, cedar_calls: CedarCalls
) -> None:
    pdp = pdp_for(org_store)
    # alice is in Team eng, which is in Group staff: membership through two levels.
    for props in ({"level": 1}, {"level": 1, "nickname": "al"}, {"level": 4, "dept": "x"}):
        assert await decide(pdp, evaluation(ALICE, "view", D1, subject_props=props)) is True
    # dave is in staff directly; overlaying an unrelated attribute keeps him there.
    assert await decide(pdp, evaluation(DAVE, "view", D1, subject_props={"nickname": "d"})) is True
    calls = cedar_calls.take()
    assert len(calls) == 4 and all(isinstance(c, str) for c in calls)


async def test_entity_valued_attributes_resolve_in_a_slice(
    org_store: PolicyStore, cedar_calls: CedarCalls
) -> None:
    pdp = pdp_for(org_store)
    # d1.folder -> f1.owner -> carol (dept ops): two references away from the resource.
    assert await decide(pdp, evaluation(ALICE, "edit", D1)) is False
    assert await decide(pdp, evaluation(ALICE, "edit", D1, subject_props={"dept": "ops"})) is True
    # d1.folder -> f1.meta.reviewer -> rita (dept audit): a reference inside a record.
    assert await decide(pdp, evaluation(ALICE, "edit", D1, subject_props={"level": 2})) is True
    # Overlaying the resource keeps its stored references.
    both = evaluation(
        ALICE, "edit", D1, subject_props={"dept": "ops"}, resource_props={"title": "new"}
    )
    assert await decide(pdp, both) is True
    # Replacing the reference with a request value (a record, never an entity) removes it.
    forged = evaluation(
        ALICE,
        "edit",
        D1,
        subject_props={"dept": "ops", "level": 2},
        resource_props={"folder": ref("Folder", "f1")},
    )
    assert await decide(pdp, forged) is False
    calls = cedar_calls.take()
    assert calls[0] is org_store.entities.handle
    assert all(isinstance(c, str) for c in calls[1:])
    # A slice holds what the request reaches, not the whole store.
    sliced = {(e["uid"]["type"], e["uid"]["id"]) for e in json.loads(calls[1])}
    assert {("User", "alice"), ("Doc", "d1"), ("Folder", "f1"), ("User", "carol")} <= sliced
    assert ("User", "bob") not in sliced


# -- search -----------------------------------------------------------------------------------

LIBRARY_SCHEMA = """\
entity User {
  role?: String,
};
entity Book {
  owner?: User,
  public?: Bool,
};

action read, write, lend appliesTo {
  principal: User,
  resource: Book,
};
"""

LIBRARY_POLICIES = """\
// Anyone stored may read a public book.
@id("read-public")
permit (principal is User, action == Action::"read", resource is Book)
when { principal has role && resource has public && resource.public };

// The owner may read and write their book.
@id("owner-read-write")
permit (
  principal is User,
  action in [Action::"read", Action::"write"],
  resource is Book
)
when { resource has owner && resource.owner == principal };

// Librarians may lend any book.
@id("librarian-lends")
permit (principal is User, action == Action::"lend", resource is Book)
when { principal has role && principal.role == "librarian" && resource has owner };
"""

# Ids deliberately out of order in the file, with mixed case.
LIBRARY_USERS = {"zed": "reader", "amy": "librarian", "Cat": "reader", "bob": "reader", "dan": "x"}
LIBRARY_BOOKS = {
    "b07": ("amy", True),
    "b02": ("bob", False),
    "b05": ("amy", False),
    "b01": ("zed", True),
    "b10": ("amy", True),
    "b03": ("Cat", False),
}


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> PolicyStore:
    entities = [entity("User", uid, {"role": role}) for uid, role in LIBRARY_USERS.items()]
    entities += [
        entity("Book", bid, {"owner": ref("User", owner), "public": public})
        for bid, (owner, public) in LIBRARY_BOOKS.items()
    ]
    folder = make_store(
        tmp_path_factory.mktemp("library") / "lib", LIBRARY_POLICIES, LIBRARY_SCHEMA, entities
    )
    return load_store("lib", folder)


def resource_search(subject: str, action: str, **extra: Any) -> ResourceSearchRequest:
    body = {
        "subject": {"type": "User", "id": subject},
        "action": {"name": action},
        "resource": {"type": "Book"},
        **extra,
    }
    return ResourceSearchRequest.model_validate(body)


def subject_search(action: str, book: str, **extra: Any) -> SubjectSearchRequest:
    body = {
        "subject": {"type": "User"},
        "action": {"name": action},
        "resource": {"type": "Book", "id": book},
        **extra,
    }
    return SubjectSearchRequest.model_validate(body)


def action_search(subject: str, book: str, **extra: Any) -> ActionSearchRequest:
    body = {
        "subject": {"type": "User", "id": subject},
        "resource": {"type": "Book", "id": book},
        **extra,
    }
    return ActionSearchRequest.model_validate(body)


async def test_resource_search_is_sorted_and_complete(library: PolicyStore) -> None:
    pdp = pdp_for(library)
    result = await pdp.search_resource(resource_search("amy", "read"))
    assert result.page is None
    assert result.results == [
        {"type": "Book", "id": b} for b in ["b01", "b05", "b07", "b10"]
    ]  # public ones plus her own
    # Exactly what evaluating each stored book says.
    for bid in LIBRARY_BOOKS:
        permitted = await decide(pdp, evaluation(("User", "amy"), "read", ("Book", bid)))
        assert permitted is ({"type": "Book", "id": bid} in result.results)
    writes = await pdp.search_resource(resource_search("amy", "write"))
    assert writes.results == [{"type": "Book", "id": b} for b in ["b05", "b07", "b10"]]


async def test_subject_search_is_sorted(library: PolicyStore) -> None:
    pdp = pdp_for(library)
    readers = await pdp.search_subject(subject_search("read", "b01"))
    # Python's order: upper case sorts first. Every stored user with a role reads b01.
    assert readers.results == [{"type": "User", "id": u} for u in sorted(LIBRARY_USERS)]
    assert [r["id"] for r in readers.results] == ["Cat", "amy", "bob", "dan", "zed"]
    writers = await pdp.search_subject(subject_search("write", "b03"))
    assert writers.results == [{"type": "User", "id": "Cat"}]
    lenders = await pdp.search_subject(subject_search("lend", "b02"))
    assert lenders.results == [{"type": "User", "id": "amy"}]


async def test_action_search_is_sorted(library: PolicyStore) -> None:
    pdp = pdp_for(library)
    own = await pdp.search_action(action_search("amy", "b05"))
    assert own.results == [{"name": "lend"}, {"name": "read"}, {"name": "write"}]
    other = await pdp.search_action(action_search("bob", "b07"))
    assert other.results == [{"name": "read"}]
    none = await pdp.search_action(action_search("bob", "b03"))
    assert none.results == []


async def test_search_with_unknown_input_finds_nothing(library: PolicyStore) -> None:
    pdp = pdp_for(library)
    searches = [
        pdp.search_resource(resource_search("nobody", "read")),
        pdp.search_resource(resource_search("amy", "burn")),
        pdp.search_resource(
            ResourceSearchRequest.model_validate(
                {
                    "subject": {"type": "User", "id": "amy"},
                    "action": {"name": "read"},
                    "resource": {"type": "Magazine"},
                }
            )
        ),
        pdp.search_subject(subject_search("read", "b99")),
        pdp.search_subject(subject_search("fly", "b01")),
        pdp.search_action(action_search("nobody", "b01")),
        pdp.search_action(action_search("amy", "b99")),
        # Properties on an unknown input do not make it known.
        pdp.search_resource(
            resource_search("nobody", "read").model_copy(
                update={
                    "subject": resource_search("x", "read").subject.model_copy(
                        update={"id": "nobody", "properties": {"role": "librarian"}}
                    )
                }
            )
        ),
    ]
    for search in searches:
        assert (await search).results == []


async def walk_pages(
    search: Any, make: Any, first_page: dict[str, Any] | None
) -> tuple[list[Any], list[int]]:
    """Follow `next_token` from the first request to the last page; results and page sizes."""
    results: list[Any] = []
    counts: list[int] = []
    page = first_page
    for _ in range(20):
        result = await search(make(page))
        assert result.page is not None
        assert result.page.count == len(result.results)
        results += result.results
        counts.append(result.page.count)
        if not result.page.next_token:
            assert result.page.total == len(results)
            return results, counts
        page = {**(first_page or {}), "token": result.page.next_token}
    raise AssertionError("pagination did not end")


def with_page(make: Any) -> Any:
    return lambda page: make(**({"page": page} if page is not None else {}))


async def test_search_pages_through_every_result(library: PolicyStore) -> None:
    """The client's first request has no `page`; follow-ups add `page.token` (API 1.0 §8.2)."""
    pdp = pdp_for(library, page_size=2)
    users, counts = await walk_pages(
        pdp.search_subject, with_page(lambda **kw: subject_search("read", "b01", **kw)), None
    )
    assert [u["id"] for u in users] == ["Cat", "amy", "bob", "dan", "zed"]
    assert counts == [2, 2, 1]
    actions, counts = await walk_pages(
        pdp.search_action, with_page(lambda **kw: action_search("amy", "b05", **kw)), None
    )
    assert actions == [{"name": "lend"}, {"name": "read"}, {"name": "write"}]
    assert counts == [2, 1]


async def test_search_pages_with_a_limit(library: PolicyStore) -> None:
    pdp = pdp_for(library, page_size=2)
    whole = await pdp_for(library).search_resource(resource_search("amy", "read"))
    books, counts = await walk_pages(
        pdp.search_resource,
        with_page(lambda **kw: resource_search("amy", "read", **kw)),
        {"limit": 1},
    )
    assert books == whole.results
    assert [b["id"] for b in books] == ["b01", "b05", "b07", "b10"]
    assert counts == [1, 1, 1, 1]
    # A limit above the largest page is capped at it.
    users, counts = await walk_pages(
        pdp.search_subject,
        with_page(lambda **kw: subject_search("read", "b01", **kw)),
        {"limit": 50},
    )
    assert [u["id"] for u in users] == ["Cat", "amy", "bob", "dan", "zed"]
    assert counts == [2, 2, 1]


# -- explanations -----------------------------------------------------------------------------


async def test_explanations_name_the_determining_policies(library: PolicyStore) -> None:
    explained = pdp_for(library, explanations=True)
    owner_reads_public = await explained.evaluate(
        evaluation(("User", "amy"), "read", ("Book", "b07"))
    )
    assert owner_reads_public.decision is True
    assert owner_reads_public.context == {
        "determining_policies": ["owner-read-write", "read-public"]
    }
    lend = await explained.evaluate(evaluation(("User", "amy"), "lend", ("Book", "b02")))
    assert lend.context == {"determining_policies": ["librarian-lends"]}
    denied = await explained.evaluate(evaluation(("User", "bob"), "write", ("Book", "b07")))
    assert denied.decision is False
    assert denied.context == {"determining_policies": []}
    batch = await explained.evaluations(
        [
            evaluation(("User", "zed"), "write", ("Book", "b01")),
            evaluation(("User", "zed"), "lend", ("Book", "b01")),
        ]
    )
    assert [d.context for d in batch] == [
        {"determining_policies": ["owner-read-write"]},
        {"determining_policies": []},
    ]
    # Off by default: a bare decision.
    plain = await pdp_for(library).evaluate(evaluation(("User", "amy"), "lend", ("Book", "b02")))
    assert plain.decision is True and plain.context is None
