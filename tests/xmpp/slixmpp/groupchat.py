"""What the group chat (XEP-0045) scenarios share, on top of harness.py.

The clients load slixmpp's MUC plugin (and disco, ping, delayed delivery,
direct invitations, self-ping). An `Observer` reports every stanza a
client receives from the group chat service (`conference.DOMAIN`), its
rooms and their occupants, as it saw it on the wire (not as slixmpp's MUC
bookkeeping understood it), and lets the scenario await any of them
without losing the others; `join` enters a room with slixmpp's
`join_muc_wait` and reports the outcome, refusals included; `finish`
reports `done` and logs the clients out (the test reads what came before:
the rooms then tell of everyone leaving, in no set order).

Events reported by an Observer (`client`: its name; `from`: the stanza's):

- `presence`: `type` ('available' or 'unavailable'), `show`, `status`,
  the MUC `<item/>`'s `role`, `affiliation`, `jid` and `nick` (the new
  nickname of a 303), `actor` (nickname), `reason`, `codes` (the status
  codes, sorted), and `destroy` ({jid, reason} of a destroyed room's
  `<destroy/>`, or null);
- `presence_error`: `condition`, `error_type`, and `muc_x`: whether the
  error carries `<x xmlns='http://jabber.org/protocol/muc'/>` (XEP-0045
  §7.2 examples; slixmpp's `join_muc_wait` only notices errors with it);
- `groupchat`: `body`, `delay_from` and `stamp` (XEP-0203, or null);
- `subject`: `subject` (a groupchat message with a subject, no body);
- `room_status`: `codes` (a groupchat message with only status codes);
- `invite`: a mediated invitation (XEP-0045 §7.8.2): `inviter`, `reason`,
  `password`, `body`;
- `decline`: the decline of one, passed on by the room: `decliner`,
  `reason`;
- `private`: any other message with a body: `type`, `body`, `muc_user`
  (whether it carries the muc#user `<x/>`);
- `message_error`: `condition`, `error_type`.
"""

import asyncio

import slixmpp
from slixmpp.exceptions import IqError, PresenceError
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import StanzaPath

import harness

CLIENT = "jabber:client"
MUC = "http://jabber.org/protocol/muc"
USER = "http://jabber.org/protocol/muc#user"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
DELAY = "urn:xmpp:delay"
DATA = "jabber:x:data"

PLUGINS = ["xep_0030", "xep_0045", "xep_0199", "xep_0203", "xep_0249", "xep_0410"]


def service(xmpp):
    """The group chat service of `xmpp`'s server: `conference.DOMAIN`."""
    return f"conference.{xmpp.boundjid.domain}"


def client(args, jid, password):
    """A harness client with the group chat plugins."""
    return harness.client(args, jid, password, plugins=PLUGINS)


def _error(stanza):
    """The (condition, type) of a stanza's `<error/>`."""
    error = stanza.xml.find(f"{{{CLIENT}}}error")
    if error is None:
        return None, None
    conditions = [child.tag.split("}", 1)[1] for child in error
                  if child.tag.startswith(f"{{{STANZAS}}}") and child.tag != f"{{{STANZAS}}}text"]
    return (conditions[0] if conditions else None), error.get("type")


def _codes(x):
    return sorted(int(status.get("code")) for status in x.findall(f"{{{USER}}}status")) if x is not None else []


def _destroy(x):
    """The `<destroy/>` of a muc#user `<x/>`: {jid, reason}, or None."""
    destroy = x.find(f"{{{USER}}}destroy") if x is not None else None
    if destroy is None:
        return None
    return {"jid": destroy.get("jid"), "reason": _text(destroy, f"{{{USER}}}reason")}


def _text(parent, tag):
    child = parent.find(tag) if parent is not None else None
    return None if child is None else (child.text or "")


class Observer:
    """Reports (see the module's docstring) and keeps what `xmpp` receives
    from the group chat service, for `expect` to find."""

    def __init__(self, xmpp, name):
        self.xmpp = xmpp
        self.name = name
        self.seen = []
        self.claimed = set()
        self.changed = asyncio.Event()
        xmpp.register_handler(Callback(f"groupchat presence ({name})", StanzaPath("presence"), self._presence))
        xmpp.register_handler(Callback(f"groupchat message ({name})", StanzaPath("message"), self._message))

    def _from_service(self, stanza):
        return stanza["from"].domain == service(self.xmpp)

    def _keep(self, event, stanza, **fields):
        fields = {"client": self.name, "from": str(stanza["from"]), **fields}
        harness.emit(event, **fields)
        self.seen.append(({"event": event, **fields}, stanza))
        self.changed.set()

    def _presence(self, presence):
        if not self._from_service(presence):
            return
        if presence["type"] == "error":
            condition, kind = _error(presence)
            self._keep("presence_error", presence, condition=condition, error_type=kind,
                       muc_x=presence.xml.find(f"{{{MUC}}}x") is not None)
            return
        x = presence.xml.find(f"{{{USER}}}x")
        item = x.find(f"{{{USER}}}item") if x is not None else None
        actor = item.find(f"{{{USER}}}actor") if item is not None else None
        attribute = (lambda name: item.get(name)) if item is not None else (lambda name: None)
        self._keep("presence", presence,
                   type="unavailable" if presence["type"] == "unavailable" else "available",
                   show=_text(presence.xml, f"{{{CLIENT}}}show"),
                   status=_text(presence.xml, f"{{{CLIENT}}}status"),
                   role=attribute("role"), affiliation=attribute("affiliation"),
                   jid=attribute("jid"), nick=attribute("nick"),
                   actor=actor.get("nick") if actor is not None else None,
                   reason=_text(item, f"{{{USER}}}reason"),
                   codes=_codes(x), destroy=_destroy(x))

    def _message(self, message):
        if not self._from_service(message):
            return
        xml = message.xml
        body = _text(xml, f"{{{CLIENT}}}body")
        subject = _text(xml, f"{{{CLIENT}}}subject")
        x = xml.find(f"{{{USER}}}x")
        invite = x.find(f"{{{USER}}}invite") if x is not None else None
        decline = x.find(f"{{{USER}}}decline") if x is not None else None
        kind = message["type"]
        if kind == "error":
            condition, error_type = _error(message)
            self._keep("message_error", message, condition=condition, error_type=error_type)
        elif invite is not None:
            self._keep("invite", message, inviter=invite.get("from"),
                       reason=_text(invite, f"{{{USER}}}reason"),
                       password=_text(x, f"{{{USER}}}password"), body=body)
        elif decline is not None:
            self._keep("decline", message, decliner=decline.get("from"),
                       reason=_text(decline, f"{{{USER}}}reason"))
        elif kind == "groupchat" and body is not None:
            delay = xml.find(f"{{{DELAY}}}delay")
            self._keep("groupchat", message, body=body,
                       delay_from=delay.get("from") if delay is not None else None,
                       stamp=delay.get("stamp") if delay is not None else None)
        elif kind == "groupchat" and subject is not None:
            self._keep("subject", message, subject=subject)
        elif kind == "groupchat":
            self._keep("room_status", message, codes=_codes(x))
        elif body is not None:
            self._keep("private", message, type=kind, body=body, muc_user=x is not None)

    def _find(self, event, wanted):
        for index, (fields, stanza) in enumerate(self.seen):
            if index in self.claimed or fields["event"] != event:
                continue
            if all(fields.get(key) == value for key, value in wanted.items()):
                self.claimed.add(index)
                return stanza
        return None

    async def expect(self, event, **wanted):
        """The first stanza reported as `event` whose fields have the
        `wanted` values (`from_` for `from`) that no earlier `expect`
        returned: one already received, or the next to arrive."""
        if "from_" in wanted:
            wanted["from"] = wanted.pop("from_")
        while True:
            found = self._find(event, wanted)
            if found is not None:
                return found
            self.changed.clear()
            await self.changed.wait()


def observe(**clients):
    """An Observer for each client (name → client); name → Observer."""
    return {name: Observer(xmpp, name) for name, xmpp in clients.items()}


class Refused(harness.ScenarioFailed):
    """A room refused entry; `condition` says why."""

    def __init__(self, condition):
        super().__init__(f"entry refused: {condition}")
        self.condition = condition


async def join(xmpp, observer, room, nick, **history):
    """Enters `room` as `nick` with slixmpp's `join_muc_wait` (with the
    `history` options it takes, e.g. maxstanzas=0), and reports it:
    `joined` (`client`, `room`, `nick`, the self-presence's `codes`, `role`
    and `affiliation`, `occupants`: the other nicknames present, sorted,
    `history`: [{from, body, delay_from}], `subject` and `subject_from`),
    or, if the room answers with a presence error, `join_refused`
    (`client`, `room`, `nick`, `condition`, `muc_x`) and raises Refused.
    Returns join_muc_wait's (presence, subject, occupants, history)."""
    muc = xmpp["xep_0045"]
    joining = asyncio.ensure_future(muc.join_muc_wait(slixmpp.JID(room), nick, **history))
    # Caught here whether or not slixmpp recognises it (see `muc_x`).
    refusal = asyncio.ensure_future(observer.expect("presence_error", from_=f"{room}/{nick}"))
    await asyncio.wait([joining, refusal], return_when=asyncio.FIRST_COMPLETED)
    # (Reading the exception also keeps asyncio from warning it was not.)
    failed = joining.done() and isinstance(joining.exception(), PresenceError)
    if refusal.done() or failed:
        error = await refusal
        joining.cancel()
        muc.rooms[None].pop(slixmpp.JID(room), None)
        condition, _ = _error(error)
        harness.emit("join_refused", client=observer.name, room=room, nick=nick, condition=condition,
                     muc_x=error.xml.find(f"{{{MUC}}}x") is not None)
        raise Refused(condition)
    refusal.cancel()
    presence, subject, occupants, messages = joining.result()
    x = presence.xml.find(f"{{{USER}}}x")
    item = x.find(f"{{{USER}}}item") if x is not None else None
    nick = presence["from"].resource
    harness.emit("joined", client=observer.name, room=room, nick=nick,
                 codes=_codes(x),
                 role=item.get("role") if item is not None else None,
                 affiliation=item.get("affiliation") if item is not None else None,
                 # slixmpp counts the newcomer among the occupants it saw.
                 occupants=sorted({occupant["from"].resource for occupant in occupants} - {nick}),
                 history=[{"from": str(message["from"]), "body": message["body"],
                           "delay_from": str(message["delay"]["from"])} for message in messages],
                 subject=subject["subject"] or "", subject_from=str(subject["from"]))
    return presence, subject, occupants, messages


async def refused(xmpp, observer, room, nick):
    """Tries to enter `room` as `nick`; the condition of the refusal (fails
    the scenario if it lets the user in)."""
    try:
        await join(xmpp, observer, room, nick)
    except Refused as refusal:
        return refusal.condition
    raise harness.ScenarioFailed(f"{observer.name} entered {room} as {nick}")


async def leave(xmpp, observer, room, nick, status=""):
    """Leaves `room` (slixmpp's leave_muc, with a `status` text if any),
    and waits for the room's unavailable presence with status 110."""
    xmpp["xep_0045"].leave_muc(slixmpp.JID(room), nick, msg=status)
    await observer.expect("presence", from_=f"{room}/{nick}", type="unavailable")


async def configure(xmpp, name, room, values):
    """The owner gets the room's configuration form, reports it as
    `config_form` (`client`, `room`, `fields`: var → value), fills in
    `values` (var → value) and submits it; reports `configured`."""
    form = await xmpp["xep_0045"].get_room_config(room)
    harness.emit("config_form", client=name, room=room,
                 fields={var: field["value"] for var, field in form.get_fields().items()})
    form.set_values(values)
    await xmpp["xep_0045"].set_room_config(room, form)
    harness.emit("configured", client=name, room=room)


def form_values(parent):
    """var → value (the first; '' if none) of the XEP-0004 form that is a
    child of the XML element `parent`, or None if it has none."""
    form = parent.find(f"{{{DATA}}}x")
    if form is None:
        return None
    return {field.get("var"): _text(field, f"{{{DATA}}}value") or "" for field in form.findall(f"{{{DATA}}}field")}


async def room_info(xmpp, name, room):
    """Asks `room` for its disco#info and reports the answer as `room_info`
    (`client`, `room`, `type`: 'result' or 'error', `condition`,
    `identities`: [category, type, name], `features`, sorted, and
    `roominfo`: var → value of its muc#roominfo form)."""
    try:
        info = await xmpp["xep_0030"].get_info(jid=slixmpp.JID(room), cached=False, timeout=10)
    except IqError as error:
        harness.emit("room_info", client=name, room=room, type=error.iq["type"],
                     condition=error.iq["error"]["condition"], identities=None, features=None, roominfo=None)
        return
    query = info["disco_info"]
    harness.emit("room_info", client=name, room=room, type=info["type"], condition=None,
                 identities=[[category, kind, title] for category, kind, _, title in query["identities"]],
                 features=sorted(query["features"]), roominfo=form_values(query.xml))


async def rooms(xmpp, name):
    """Asks the service for its rooms (disco#items) and reports them as
    `rooms` (`client`, `items`: [{jid, name}], sorted)."""
    items = await xmpp["xep_0030"].get_items(jid=slixmpp.JID(service(xmpp)), timeout=10)
    harness.emit("rooms", client=name, items=sorted(
        ({"jid": str(jid), "name": title} for jid, _, title in items["disco_items"]["items"]),
        key=lambda item: item["jid"]))


async def finish(*clients):
    """Reports `done`, then logs every client out: the rooms they are in
    then tell the others they left, in the order the server happens to
    handle the ends, so a test reads only what came before `done`."""
    harness.emit("done")
    await asyncio.gather(*(harness.logout(xmpp) for xmpp in clients))
