"""The submission's `client` (ARAP §6) and the ARAP Actor profile: who acts, and where the
request came from.

`client` is `{"id"?, "name"?, "actor"?, "source"?}`. `client.actor` names the immediate
actor (`id`, `issuer`, `type`) and, in `act`, the chain outward toward the subject (`sub`,
`iss`, `sub_profile` at each link, as RFC 8693's `act` claim nests them). `client.source`
(`session_id`, `external_url`, `integration_id`) is where the request originated, kept for
the audit trail and shown to approvers, never authorization input.

A claimed actor chain must be proven by the caller's credential, or the submission is
refused (Actor profile, "Actor Chain Verification"):

- a PEP's bearer JWT proves the chain of its `act` claim (RFC 8693 §4.1, as a token
  exchange issues it), for the subject its `sub` names: the claim's links are the token's,
  link for link (each `id` the link's `sub`; an `issuer` given, the link's `iss`; a `type`
  given, one of the link's `sub_profile` values when it has any), no more and no fewer;
- an API key, or no credential at all, proves no chain: such a caller files without
  `client.actor` (the actor may stay in `subject.properties.act`, unbound and unverified);
- the token endpoint's own filings are proven by the token request's `act` chain (the
  actor token or the client acting, which the token endpoint verified): it files with
  `client.actor` made from that chain (`actor_from_act`).

A verified chain counts as "made through" for the rule that nobody approves a request made
for or through them (`chain_ids`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..grammar import is_uri
from .problems import BadRequest, Forbidden

MAX_DEPTH = 16
_TEXT = 500


@dataclass(frozen=True, slots=True)
class ActorProof:
    """What the caller's credential says of who acts: its `sub` and its `act` chain (None
    for a credential that names none)."""

    sub: str | None
    act: dict[str, Any] | None

    @classmethod
    def of_claims(cls, claims: dict[str, Any] | None) -> ActorProof | None:
        """A verified bearer JWT's proof; None for a credential that is no JWT."""
        if claims is None:
            return None
        sub, act = claims.get("sub"), claims.get("act")
        return cls(sub if isinstance(sub, str) else None, act if isinstance(act, dict) else None)


def read_client(raw: object) -> dict[str, Any] | None:
    """The submission's `client`, checked for shape; `BadRequest` saying what is wrong."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise BadRequest("client must be an object")
    for name in ("id", "name"):
        _text(raw, name, "client")
    if raw.get("actor") is not None:
        _actor(raw["actor"])
    source = raw.get("source")
    if source is not None:
        if not isinstance(source, dict):
            raise BadRequest("client.source must be an object")
        for name in ("session_id", "integration_id"):
            _text(source, name, "client.source")
        url = source.get("external_url")
        if url is not None and not (
            isinstance(url, str) and is_uri(url) and url.lower().startswith("https://")
        ):
            raise BadRequest("client.source.external_url must be an https URL")
    return raw


def verify_actor(
    client: dict[str, Any] | None, subject: dict[str, Any], proof: ActorProof | None
) -> None:
    """Refuse (403) a `client.actor` the caller's credential does not prove."""
    actor = (client or {}).get("actor")
    if actor is None:
        return
    if proof is None or proof.act is None:
        raise Forbidden(
            "client.actor needs a credential that proves it (a bearer token whose act "
            "claim names that chain): this caller's names none"
        )
    if proof.sub != subject.get("id"):
        raise Forbidden("the caller's credential acts for another subject than this request's")
    claimed, proven = _claimed_links(actor), _proven_links(proof.act)
    if len(claimed) != len(proven) or not all(
        _matches(c, p) for c, p in zip(claimed, proven, strict=True)
    ):
        raise Forbidden("client.actor is not the actor chain the caller's credential proves")


def actor_from_act(act: dict[str, Any]) -> dict[str, Any]:
    """`client.actor` for an RFC 8693 `act` chain (the token endpoint's own filings)."""
    actor: dict[str, Any] = {"id": act.get("sub")}
    if isinstance(act.get("iss"), str):
        actor["issuer"] = act["iss"]
    if isinstance(act.get("sub_profile"), str):
        actor["type"] = act["sub_profile"].split()[0]
    if isinstance(act.get("act"), dict):
        actor["act"] = act["act"]
    return actor


def chain_ids(client: object) -> list[str]:
    """Every actor id of a (verified) `client.actor` chain, immediate actor first."""
    actor = client.get("actor") if isinstance(client, dict) else None
    if not isinstance(actor, dict):
        return []
    return [link[0] for link in _claimed_links(actor)]


# -- the links of a chain: (id, issuer, type or sub_profile) -----------------------------

Link = tuple[str, str | None, str | None]


def _claimed_links(actor: dict[str, Any]) -> list[Link]:
    links: list[Link] = [(str(actor.get("id")), actor.get("issuer"), actor.get("type"))]
    return links + _proven_links(actor.get("act"))


def _proven_links(act: object) -> list[Link]:
    links: list[Link] = []
    while isinstance(act, dict) and len(links) < MAX_DEPTH:
        links.append((str(act.get("sub")), act.get("iss"), act.get("sub_profile")))
        act = act.get("act")
    return links


def _matches(claimed: Link, proven: Link) -> bool:
    (cid, ciss, ctype), (pid, piss, pprofile) = claimed, proven
    if cid != pid or (ciss is not None and ciss != piss):
        return False
    profiles = pprofile.split() if isinstance(pprofile, str) else []
    return ctype is None or not profiles or ctype in profiles


def _actor(actor: object, where: str = "client.actor", depth: int = 0) -> None:
    if depth >= MAX_DEPTH:
        raise BadRequest(f"client.actor nests more than {MAX_DEPTH} actors")
    if not isinstance(actor, dict):
        raise BadRequest(f"{where} must be an object")
    names = ("id", "issuer", "type") if depth == 0 else ("sub", "iss", "sub_profile")
    if not isinstance(actor.get(names[0]), str) or not actor[names[0]]:
        raise BadRequest(f"{where}.{names[0]} must be a non-empty string")
    for name in names[1:]:
        _text(actor, name, where)
    if actor.get("act") is not None:
        _actor(actor["act"], f"{where}.act", depth + 1)


def _text(holder: dict[str, Any], name: str, where: str) -> None:
    value = holder.get(name)
    if value is not None and not (isinstance(value, str) and 0 < len(value) <= _TEXT):
        raise BadRequest(f"{where}.{name} must be a string of 1 to {_TEXT} characters")
