"""Hostile input for the parsing layers, shared by the property tests (tests/test_parsing_*.py).

The kinds the hardening issue names, each as a Hypothesis strategy:
- deep nesting: thousands of levels (`[[[...`, `{"a":{"a":...`, mixed, or never closed);
- lone surrogates: a UTF-16 surrogate without its partner. In JSON text that is an escape of
  six characters (backslash, `u`, four hex digits, e.g. `\\ud800`); in a Python `str` it is
  the code point itself, which `json.dumps` (ASCII output) writes as that escape. I-JSON
  (RFC 7493 §2.1) forbids them, and they cannot be encoded as UTF-8;
- C0 control characters (U+0000 to U+001F) inside string values, escaped as JSON requires;
- very long strings;
- duplicate member names in one object.

Strategies that produce JSON text build it as text, since a value nested thousands of levels
deep can be neither built nor serialised by Python's recursive tools.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hypothesis import HealthCheck, Phase, note, settings
from hypothesis import strategies as st

# Every property test: bounded, no deadline (machines are noisy), no example database
# written into the working tree, and a blob printed to reproduce a failure. No shrinking:
# these inputs are small to read already, and shrinking a failure costs seconds per test.
PROPERTY_SETTINGS = settings(
    max_examples=10,
    deadline=None,
    database=None,
    print_blob=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Over HTTP each example is two requests: fewer of them.
HTTP_SETTINGS = settings(PROPERTY_SETTINGS, max_examples=3)


class Described(str):
    """A hostile string that shows as a short description: Hypothesis prints a falsifying
    example with `repr`, and a token or body thousands of characters long would bury it."""

    label: str

    def __new__(cls, text: str, label: str) -> Described:
        made = super().__new__(cls, text)
        made.label = label
        return made

    def __repr__(self) -> str:
        return f"<{self.label}>"


def label(value: str, limit: int = 60) -> str:
    """The description of a `Described`, else the start of the string's `repr`."""
    if isinstance(value, Described):
        return value.label
    shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def shown(**inputs: object) -> None:
    """Note the inputs for the failure report (this Hypothesis prints arguments blank)."""
    for name, value in inputs.items():
        note(f"{name} = {label(value) if isinstance(value, str) else repr(value)}")


# "Thousands of levels": past every recursion limit Python's parsers have.
THOUSANDS = st.integers(min_value=1_000, max_value=20_000)
LONG = st.integers(min_value=50_000, max_value=150_000)

HIGH_SURROGATES = st.integers(min_value=0xD800, max_value=0xDBFF)
LOW_SURROGATES = st.integers(min_value=0xDC00, max_value=0xDFFF)
C0_CONTROLS = st.integers(min_value=0x00, max_value=0x1F).map(chr)


# -- deep nesting -------------------------------------------------------------------------


def nested(depth: int, kind: str = "array", core: str = "0") -> Described:
    """JSON text of `core` inside `depth` arrays, objects or both; `unclosed` never closes."""
    if kind == "array":
        text = "[" * depth + core + "]" * depth
    elif kind == "object":
        text = '{"a":' * depth + core + "}" * depth
    elif kind == "mixed":
        pairs = depth // 2
        text = '[{"a":' * pairs + "[" * (depth % 2) + core + "]" * (depth % 2) + "}]" * pairs
    elif kind == "unclosed":
        text = "[" * depth
    else:
        raise ValueError(kind)
    return Described(text, f"{kind} nesting {depth} deep")


NESTING_KINDS = st.sampled_from(["array", "object", "mixed", "unclosed"])


def deep_json(depths: st.SearchStrategy[int] = THOUSANDS) -> st.SearchStrategy[str]:
    """JSON text (or, `unclosed`, almost JSON) of one value nested `depths` levels deep."""
    return st.builds(nested, depths, NESTING_KINDS)


# -- strings ------------------------------------------------------------------------------

_PLAIN = st.text(alphabet="abcXYZ019-_./:", max_size=12)


def _insert(text: str, position: int, inserted: str) -> Described:
    at = position % (len(text) + 1)
    codes = " ".join(f"U+{ord(c):04X}" for c in inserted)
    return Described(text[:at] + inserted + text[at:], f"{text!r} with {codes} at {at}")


def _lone_surrogate_chars() -> st.SearchStrategy[str]:
    return st.one_of(
        HIGH_SURROGATES.map(chr),  # a high surrogate with no low one after it
        LOW_SURROGATES.map(chr),  # a low surrogate alone
        st.tuples(LOW_SURROGATES, HIGH_SURROGATES).map(lambda p: chr(p[0]) + chr(p[1])),
    )


def with_lone_surrogate(base: st.SearchStrategy[str] = _PLAIN) -> st.SearchStrategy[str]:
    """A Python string holding a lone surrogate code point somewhere."""
    return st.builds(_insert, base, st.integers(0, 64), _lone_surrogate_chars())


def with_control_character(base: st.SearchStrategy[str] = _PLAIN) -> st.SearchStrategy[str]:
    """A Python string holding a C0 control character (NUL most often) somewhere."""
    control = st.one_of(st.just("\x00"), C0_CONTROLS)
    return st.builds(_insert, base, st.integers(0, 64), control)


def long_string(lengths: st.SearchStrategy[int] = LONG) -> st.SearchStrategy[str]:
    return st.builds(
        lambda c, n: Described(c * n, f"{c!r} * {n}"), st.sampled_from("aZ9%é"), lengths
    )


def hostile_string() -> st.SearchStrategy[str]:
    """A Python string of one hostile kind (as a JSON value: `json.dumps` of it)."""
    return st.one_of(with_lone_surrogate(), with_control_character(), long_string())


def json_text(value: Any) -> str:
    """JSON text with ASCII output: a lone surrogate becomes its six-character escape."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return Described(text, f"JSON of {label(value)}") if isinstance(value, Described) else text


def escape_text(code: int) -> str:
    """The six characters of a JSON `\\uXXXX` escape."""
    return f"\\u{code:04x}"


def _escapes(text: str) -> Described:
    return Described(text, f"escape {text}")


LONE_SURROGATE_ESCAPES = st.one_of(
    HIGH_SURROGATES.map(escape_text),
    LOW_SURROGATES.map(escape_text),
    st.tuples(LOW_SURROGATES, HIGH_SURROGATES).map(lambda p: escape_text(p[0]) + escape_text(p[1])),
    # A high surrogate followed by something other than a low one.
    st.tuples(HIGH_SURROGATES, st.sampled_from(["a", "\\u0041", "\\ud800"])).map(
        lambda p: escape_text(p[0]) + p[1]
    ),
).map(_escapes)


# -- JSON texts ---------------------------------------------------------------------------


def object_text(members: Sequence[tuple[str, str]]) -> Described:
    """A JSON object from (name, JSON text of the value) pairs; names may repeat."""
    text = "{" + ",".join(f"{json_text(name)}:{value}" for name, value in members) + "}"
    shown = ", ".join(f"{label(name)}: {label(value, 30)}" for name, value in members)
    return Described(text, "{" + shown + "}")


def hostile_value_text() -> st.SearchStrategy[str]:
    """JSON text of one hostile value: deep, or a string of a hostile kind."""
    return st.one_of(
        deep_json(),
        hostile_string().map(json_text),
        st.builds(
            lambda p, e: Described(f'"{p}{e}"', f"string {p!r} + {label(e)}"),
            _PLAIN,
            LONE_SURROGATE_ESCAPES,
        ),
    )


@st.composite
def hostile_object_text(draw: st.DrawFn, base: Mapping[str, Any]) -> str:
    """`base` as JSON object text with one member replaced by, or joined by, a hostile value,
    or one member given twice (the second time with another value)."""
    members = [(name, json_text(value)) for name, value in base.items()]
    action = draw(st.sampled_from(["replace", "add", "duplicate"] if members else ["add"]))
    if action == "add":
        name = draw(st.one_of(st.just("x"), with_lone_surrogate(), with_control_character()))
        position = draw(st.integers(0, len(members)))
        members.insert(position, (name, draw(hostile_value_text())))
        return object_text(members)
    index = draw(st.integers(0, len(members) - 1))
    name, value = members[index]
    if action == "replace":
        members[index] = (name, draw(hostile_value_text()))
    else:
        members.insert(draw(st.integers(0, len(members))), (name, json_text(f"{value}-other")))
    return object_text(members)


@st.composite
def duplicate_member_text(draw: st.DrawFn) -> str:
    """An object naming one member twice, possibly inside other objects or arrays."""
    name = draw(st.one_of(_PLAIN, st.just("subject"), st.just("type")))
    first, second = draw(st.tuples(st.integers(), st.text(max_size=5)))
    text: str = object_text([(name, json_text(first)), (name, json_text(second))])
    depth = draw(st.integers(0, 3))
    for _ in range(depth):
        text = draw(st.sampled_from([f"[{text}]", object_text([("outer", text)])]))
    return Described(text, f"member {name!r} twice, {depth} levels down")


def hostile_json_text() -> st.SearchStrategy[str]:
    """JSON text (or almost) of any hostile kind, at the top of a document."""
    return st.one_of(
        deep_json(),
        duplicate_member_text(),
        hostile_value_text(),
        st.builds(
            lambda e: Described('{"a":"' + e + '"}', f"member with {label(e)}"),
            LONE_SURROGATE_ESCAPES,
        ),
        # A raw control character in a string is not JSON at all.
        st.builds(
            lambda c: Described('{"a":"x' + c + 'y"}', f"raw U+{ord(c):04X} in a string"),
            C0_CONTROLS,
        ),
    )


# -- the parser's own limit --------------------------------------------------------------


def deepest_accepted(accepts: Callable[[str], bool], kind: str = "array") -> int:
    """The deepest nesting `accepts` takes (binary search over 1 to 20,000 levels).

    Values just inside a parser's limit are the dangerous ones: the parser returned them, and
    any recursive code after it (a `repr`, a `json.dumps`, a schema validator) may not cope.
    """
    low, high = 0, 20_000
    while low < high:
        middle = (low + high + 1) // 2
        if accepts(nested(middle, kind)):
            low = middle
        else:
            high = middle - 1
    return low


def near(limit: int, below: int = 60, above: int = 5) -> st.SearchStrategy[int]:
    return st.integers(min_value=max(1, limit - below), max_value=limit + above)


# -- JOSE ---------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def compact_jws(header_text: str, payload_text: str, signature: bytes = b"\x01" * 64) -> Described:
    """A compact JWS from raw JSON texts (which need not be JSON); never a valid signature.

    A text holding a lone surrogate is encoded with `surrogatepass`, the bytes a sender
    that does not care about UTF-8 would produce.
    """
    text = ".".join(
        [
            b64url(header_text.encode("utf-8", "surrogatepass")),
            b64url(payload_text.encode("utf-8", "surrogatepass")),
            b64url(signature),
        ]
    )
    return Described(text, f"JWS header={label(header_text)} payload={label(payload_text)}")


@st.composite
def hostile_jws(
    draw: st.DrawFn, header: Mapping[str, Any], payload: Mapping[str, Any], part: str
) -> str:
    """A compact JWS whose `part` ("header" or "payload") is hostile JSON: `header`/`payload`
    with one hostile member, or a hostile document of its own."""
    base = header if part == "header" else payload
    hostile = draw(st.one_of(hostile_object_text(base), hostile_json_text()))
    if part == "header":
        return compact_jws(hostile, json_text(dict(payload)))
    return compact_jws(json_text(dict(header)), hostile)


@st.composite
def deep_jws(
    draw: st.DrawFn, header: Mapping[str, Any], payload: Mapping[str, Any], part: str
) -> str:
    """A compact JWS whose `part` holds a member nested thousands of levels deep."""
    base = dict(header if part == "header" else payload)
    name = draw(st.sampled_from([*base, "x"]))
    # Thousands of levels, yet inside the bridge's length limits on a JWT (8 KB for a DPoP
    # proof), so that the nesting reaches the JSON parser.
    depth = draw(st.integers(min_value=2_000, max_value=2_800))
    members = [(k, json_text(v)) for k, v in base.items() if k != name]
    members.append((name, nested(depth, draw(st.sampled_from(["array", "mixed"])))))
    text = object_text(members)
    if part == "header":
        return compact_jws(text, json_text(dict(payload)))
    return compact_jws(json_text(dict(header)), text)
