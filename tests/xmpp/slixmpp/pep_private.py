"""Private data in PEP (XEP-0223): alice keeps two bookmarks (XEP-0402,
slixmpp's stanzas, stored with slixmpp's XEP-0223 publish-options:
persist_items, whitelist access, and max_items 'max' for this node) and
reads them back; her own session hears of each (its caps ask for
`urn:xmpp:bookmarks:1+notify`), bob does not, though he is her contact
and his caps ask for it too, and he may not read them. Publishing to that
node with other preconditions (an open access model) is refused; the
node's configuration says what the options made it; alice's bare JID
says it is a PEP service.

Reports `session_start` for each; `stored` for each bookmark; `pubsub`
for each notification either gets (see `harness.watch_pubsub`);
`retrieved` (`client`: alice, `bookmarks`: [item id, name, nick]);
`refused` (`client`, `what`: 'retrieve' for bob's read, 'precondition'
for alice's publish; the error, see `harness.iq_error`); `config`
(alice's node configuration: field → value); `disco` (`identities` as
[category, type], `features` of alice's bare JID); and `done`.
"""

from slixmpp.exceptions import IqError
from slixmpp.plugins.xep_0402.stanza import Conference

import harness

BOOKMARKS = "urn:xmpp:bookmarks:1"
ROOMS = [("tea@conference.localhost", "Tea room"), ("coffee@conference.localhost", "Coffee room")]


def bookmark(name):
    conference = Conference()
    conference["name"] = name
    conference["autojoin"] = True
    conference["nick"] = "alice"
    return conference


async def refused(name, what, request):
    """Reports the error `request` (a coroutine) ends in."""
    try:
        await request
        harness.emit("accepted", client=name, what=what)
    except IqError as error:
        harness.emit("refused", client=name, what=what, **harness.iq_error(error))


async def scenario(args):
    plugins = ["xep_0030", "xep_0060", "xep_0115", "xep_0163", "xep_0223", "xep_0402"]
    alice = harness.client(args, *args.alice, plugins=plugins)
    bob = harness.client(args, *args.bob, plugins=plugins)
    for xmpp in (alice, bob):
        xmpp.add_event_handler("session_bind", lambda _, xmpp=xmpp: xmpp["xep_0163"].add_interest(BOOKMARKS))
    alice_heard = harness.watch_pubsub(alice, "alice")
    harness.watch_pubsub(bob, "bob")
    await harness.login_with_caps(args, alice, "alice")
    await harness.login_with_caps(args, bob, "bob")
    await harness.befriend(alice, "alice", bob, "bob", "Bob")
    alice_jid = alice.boundjid.bare

    alice["xep_0223"].node_profiles[BOOKMARKS] = {"pubsub#max_items": "max"}
    for room, name in ROOMS:
        await alice["xep_0223"].store(bookmark(name), node=BOOKMARKS, id=room)
        harness.emit("stored", client="alice", id=room, name=name)
        await alice_heard.get()
    answer = await alice["xep_0223"].retrieve(BOOKMARKS)
    harness.emit("retrieved", client="alice", bookmarks=[
        [item["id"], item["conference"]["name"], item["conference"]["nick"]]
        for item in answer["pubsub"]["items"]])

    await refused("bob", "retrieve", bob["xep_0060"].get_items(alice_jid, BOOKMARKS))
    options = alice["xep_0004"].make_form(ftype="submit")
    options.add_field(var="FORM_TYPE", ftype="hidden",
                      value="http://jabber.org/protocol/pubsub#publish-options")
    options.add_field(var="pubsub#access_model", value="open")
    await refused("alice", "precondition", alice["xep_0060"].publish(
        None, BOOKMARKS, id="tea@conference.localhost", payload=bookmark("Open tea").xml, options=options))

    answer = await alice["xep_0060"].get_node_config(None, BOOKMARKS)
    form = answer["pubsub_owner"]["configure"]["form"]
    harness.emit("config", client="alice", fields={
        var: str(field["value"]) for var, field in form.get_fields().items()})
    info = await alice["xep_0030"].get_info(jid=alice_jid)
    harness.emit("disco", client="alice",
                 identities=[[category, kind] for category, kind, _, _ in info["disco_info"]["identities"]],
                 features=sorted(info["disco_info"]["features"]))
    harness.emit("done")
    for xmpp in (alice, bob):
        await harness.logout(xmpp)


if __name__ == "__main__":
    harness.run(scenario, harness.options(__doc__, ["alice", "bob"]).parse_args())
