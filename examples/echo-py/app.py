"""Echo, in Python: the same handler as examples/echo (Rust), built into a
component by componentize-py (`cargo xtask guests`, see docs/handlers.md).

Each stanza is echoed with its `from` and `to` attributes swapped (a stanza
with neither is echoed unchanged), except two questions: `<count/>` gets
`<count n='N'/>` back, N being the number of stanzas so far, this one
included; `<module/>` gets `<module n='N' digest='D'/>`, D being the digest of
the module build that answered. The stream header is answered with one of our
own, and the peer's end of stream with ours.

The state carried between events is the Rust echo's, as the same JSON:
`{"stanzas":N,"domain":"…"}`.

Everything at module level runs once, when componentize-py builds the
component (its memory is snapshotted then); each event only calls `handle`.
"""

import json
import re

import wit_world
from componentize_py_types import Err
from wit_world.imports.types import (
    Action_Send,
    CloseReason,
    Connection,
    Event,
    Event_Closed,
    Event_Stanza,
    Event_StreamOpen,
    Outcome,
)


class WitWorld(wit_world.WitWorld):
    """The one export of the `handler` world."""

    def handle(self, conn: Connection, state: bytes, event: Event) -> Outcome:
        echo = decode(state)
        actions = []

        def send(text: str) -> None:
            actions.append(Action_Send(text))

        if isinstance(event, Event_StreamOpen):
            echo["domain"] = StartTag(event.value).attr("to") or ""
            send(
                "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                "xmlns:stream='http://etherx.jabber.org/streams' "
                f"from='{escape(echo['domain'])}' version='1.0'>"
            )
        elif isinstance(event, Event_Stanza):
            echo["stanzas"] += 1
            el = StartTag(event.value)
            if el.name == "count":
                send(f"<count n='{echo['stanzas']}'/>")
            elif el.name == "module":
                send(f"<module n='{echo['stanzas']}' digest='{conn.module.digest}'/>")
            else:
                send(el.swap_from_to())
        elif isinstance(event, Event_Closed):
            if event.value == CloseReason.STREAM_END:
                send("</stream:stream>")
        # routed, undeliverable, busy, bind-refused, timer, timer-refused, detached,
        # took-over: nothing to do.

        encoded = json.dumps(echo, ensure_ascii=False, separators=(",", ":"))
        return Outcome(state=encoded.encode(), actions=actions)


def decode(state: bytes) -> dict:
    """The state of the previous event: empty for a new connection."""
    if not state:
        return {"stanzas": 0, "domain": ""}
    try:
        parsed = json.loads(state)
        stanzas, domain = parsed["stanzas"], parsed["domain"]
    except (ValueError, TypeError, KeyError) as e:
        raise Err(f"decoding state: {e}")
    if type(stanzas) is not int or stanzas < 0 or type(domain) is not str:
        raise Err('decoding state: expected {"stanzas": N, "domain": "…"}')
    # Key order as in the Rust echo's JSON.
    return {"stanzas": stanzas, "domain": domain}


ESCAPES = {"<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&apos;", '"': "&quot;", "\r": "&#13;"}
ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "apos": "'", "quot": '"'}
SPACE = " \t\r\n"
NOT_NAME = SPACE + "/>='\"<"


SPECIALS = re.compile(r"[<>&'\"\r]")


def escape(text: str) -> str:
    """Escapes text for XML text or an attribute value in either quotes."""
    return SPECIALS.sub(lambda m: ESCAPES[m.group()], text)


class StartTag:
    """The root start tag of a stanza or stream header (skipping an XML
    declaration, comments and whitespace before it): its name, attributes,
    and where their names sit in the text, so that they can be renamed
    keeping every other byte. Raises `Err` (a handler error) if there is no
    well-formed start tag."""

    def __init__(self, text: str):
        self.text = text
        self.attrs = []  # (key, where the key starts, value)
        at = 0
        n = len(text)

        def fail(why: str):
            raise Err(f"malformed start tag: {why}")

        def skip_space(at: int) -> int:
            while at < n and text[at] in SPACE:
                at += 1
            return at

        while True:
            at = skip_space(at)
            end = {"<?": "?>", "<!--": "-->"}
            opener = next((o for o in end if text.startswith(o, at)), None)
            if opener is None:
                break
            found = text.find(end[opener], at)
            if found < 0:
                fail(f"unterminated {opener}")
            at = found + len(end[opener])
        if not text.startswith("<", at):
            fail("not an element")
        at += 1
        start = at
        while at < n and text[at] not in NOT_NAME:
            at += 1
        if at == start:
            fail("no element name")
        self.name = text[start:at]
        while True:
            at = skip_space(at)
            if text.startswith("/>", at) or text.startswith(">", at):
                break
            key_start = at
            while at < n and text[at] not in NOT_NAME:
                at += 1
            key = text[key_start:at]
            if not key:
                fail(f"bad attribute in <{self.name}>")
            at = skip_space(at)
            if not text.startswith("=", at):
                fail(f"attribute {key} in <{self.name}> has no value")
            at = skip_space(at + 1)
            quote = text[at : at + 1]
            if quote not in ("'", '"'):
                fail(f"attribute {key} in <{self.name}> is not quoted")
            end_quote = text.find(quote, at + 1)
            if end_quote < 0:
                fail(f"unterminated attribute {key} in <{self.name}>")
            if any(k == key for k, _, _ in self.attrs):
                fail(f"duplicate attribute {key} in <{self.name}>")
            self.attrs.append((key, key_start, unescape(text[at + 1 : end_quote], fail)))
            at = end_quote + 1

    def attr(self, key: str):
        return next((v for k, _, v in self.attrs if k == key), None)

    def swap_from_to(self) -> str:
        out, done = [], 0
        for key, start, _ in self.attrs:
            renamed = {"from": "to", "to": "from"}.get(key)
            if renamed is not None:
                out += [self.text[done:start], renamed]
                done = start + len(key)
        out.append(self.text[done:])
        return "".join(out)


REFERENCE = re.compile(r"&([^;&]*);|&")
NEWLINES = re.compile(r"\r\n|[\t\n\r]")
HEX_REFERENCE = re.compile(r"#x[0-9a-fA-F]+")
DECIMAL_REFERENCE = re.compile(r"#[0-9]+")


def unescape(raw: str, fail) -> str:
    """An attribute value with references resolved, whitespace normalised."""
    if "<" in raw:
        fail("< in an attribute value")
    if not any(c in raw for c in "&\t\n\r"):
        return raw
    raw = NEWLINES.sub(" ", raw)

    def resolve(m: re.Match) -> str:
        ref = m.group(1)
        if ref is None:
            fail("& without a reference")
        if ref in ENTITIES:
            return ENTITIES[ref]
        code = -1
        if HEX_REFERENCE.fullmatch(ref):
            code = int(ref[2:], 16)
        elif DECIMAL_REFERENCE.fullmatch(ref):
            code = int(ref[1:])
        if not 0 < code <= 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            fail(f"unknown reference &{ref};")
        return chr(code)

    return REFERENCE.sub(resolve, raw)


def _warm_up() -> None:
    """Runs each kind of event once while the component is built:
    componentize-py snapshots the interpreter after this module is imported,
    so what a first call would otherwise do in every fresh instance (loading
    code paths, filling caches) is done once, in the snapshot."""
    from wit_world.imports.types import ModuleInfo

    conn = Connection(id=0, peer="", listener="", module=ModuleInfo(digest="", loaded_at_ms=0), tls=None)
    world = WitWorld()
    header = "<stream:stream xmlns='jabber:client' to='a&amp;b\n' version='1.0'>"
    state = world.handle(conn, b"", Event_StreamOpen(header)).state
    for stanza in ("<message xmlns='jabber:client' from='a' to='b'><body>x</body></message>", "<count/>"):
        state = world.handle(conn, state, Event_Stanza(stanza)).state
    world.handle(conn, state, Event_Closed(CloseReason.STREAM_END))


_warm_up()
