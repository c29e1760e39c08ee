"""User avatars (XEP-0084) through PEP, and PEP's limits: alice, bob's
contact, publishes an avatar's data and then its metadata with slixmpp's
XEP-0084 plugin; bob's client (whose caps ask for
`urn:xmpp:avatar:metadata+notify`, as the plugin has them) hears of the
metadata, and fetches the data by the id it names. Then alice publishes
what PEP refuses or bounds: an avatar too big for an item, three items to
a node that keeps two (publish-options `pubsub#max_items` 2), which she
then configures to keep one, a node asking to keep more items than the
server allows, an item retracted that is not there, and more nodes than
an account may have; last, she deletes a node.

Reports `session_start` for each; `pubsub` for each notification bob gets
(see `harness.watch_pubsub`); `metadata` (bob's: `id`, `bytes`, `type` of
the avatar it names); `fetched` (`id`, `bytes`: the data's length,
`same`: whether it is what alice published); `refused` for each refusal
(`what`: 'too-big', 'too-many', 'retract-missing'; the error, see
`harness.iq_error`), also 'too-many-nodes' (with `made`, the nodes made
before it) and 'deleted' (reading a deleted node); `kept` (`ids` of the
items the node has, `when`: 'two' or 'one' it keeps); `nodes` (how many
alice's disco#items lists); and `done`.
"""

import xml.etree.ElementTree as ET

from slixmpp.exceptions import IqError

import harness

LOG = "urn:ej:test:log"
PUBLISH_OPTIONS = "http://jabber.org/protocol/pubsub#publish-options"
# 46,500 bytes: 62,000 in base64, past the 60 KiB an item may have and
# within the 64 KiB a stanza may have.
TOO_BIG = bytes(n * 7 % 256 for n in range(46_500))


def max_items(xmpp, count):
    """publish-options asking for a node that keeps `count` items."""
    options = xmpp["xep_0004"].make_form(ftype="submit")
    options.add_field(var="FORM_TYPE", ftype="hidden", value=PUBLISH_OPTIONS)
    options.add_field(var="pubsub#max_items", value=str(count))
    return options


def entry(text):
    return ET.fromstring(f"<entry xmlns='{LOG}'>{text}</entry>")


async def kept(xmpp, when):
    """Reports the ids of the items the node LOG has."""
    answer = await xmpp["xep_0060"].get_items(None, LOG)
    harness.emit("kept", client="alice", when=when, ids=[item["id"] for item in answer["pubsub"]["items"]])


async def refused(what, request):
    """Reports the error `request` (a coroutine) ends in."""
    try:
        await request
        harness.emit("accepted", client="alice", what=what)
    except IqError as error:
        harness.emit("refused", client="alice", what=what, **harness.iq_error(error))


async def scenario(args):
    plugins = ["xep_0004", "xep_0030", "xep_0060", "xep_0115", "xep_0163", "xep_0084"]
    alice = harness.client(args, *args.alice, plugins=plugins)
    bob = harness.client(args, *args.bob, plugins=plugins)
    bob_heard = harness.watch_pubsub(bob, "bob")
    await harness.login_with_caps(args, alice, "alice")
    await harness.login_with_caps(args, bob, "bob")
    await harness.befriend(alice, "alice", bob, "bob", "Bob")

    avatar = bytes(range(256)) * 24
    avatar_id = alice["xep_0084"].generate_id(avatar)
    await alice["xep_0084"].publish_avatar(avatar)
    await alice["xep_0084"].publish_avatar_metadata(
        {"id": avatar_id, "type": "image/png", "bytes": len(avatar), "width": "64", "height": "64"})
    heard = await bob_heard.get()
    metadata = ET.fromstring(heard["payload"])
    info = metadata.find("{urn:xmpp:avatar:metadata}info")
    harness.emit("metadata", client="bob", id=info.get("id"), bytes=int(info.get("bytes")), type=info.get("type"))
    answer = await bob["xep_0084"].retrieve_avatar(alice.boundjid.bare, info.get("id"))
    data = answer["pubsub"]["items"]["item"]["avatar_data"]["value"]
    harness.emit("fetched", client="bob", id=answer["pubsub"]["items"]["item"]["id"], bytes=len(data),
                 same=data == avatar)

    await refused("too-big", alice["xep_0084"].publish_avatar(TOO_BIG))
    for text in ("one", "two", "three"):
        await alice["xep_0060"].publish(None, LOG, id=text, payload=entry(text), options=max_items(alice, 2))
    await kept(alice, "two")
    config = alice["xep_0004"].make_form(ftype="submit")
    config.add_field(var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/pubsub#node_config")
    config.add_field(var="pubsub#max_items", value="1")
    await alice["xep_0060"].set_node_config(None, LOG, config)
    await kept(alice, "one")
    await refused("too-many", alice["xep_0060"].publish(
        None, LOG + ":huge", id="one", payload=entry("one"), options=max_items(alice, 1000)))
    await refused("retract-missing", alice["xep_0060"].retract(None, LOG, "one"))

    made = 0
    while True:
        try:
            await alice["xep_0060"].publish(None, f"{LOG}:{made}", id="one", payload=entry("one"))
            made += 1
        except IqError as error:
            harness.emit("refused", client="alice", what="too-many-nodes", made=made, **harness.iq_error(error))
            break
    items = await alice["xep_0030"].get_items(jid=alice.boundjid.bare)
    harness.emit("nodes", client="alice", count=len(items["disco_items"]["items"]))
    await alice["xep_0060"].delete_node(None, LOG)
    await refused("deleted", alice["xep_0060"].get_items(None, LOG))
    harness.emit("done")
    for xmpp in (alice, bob):
        await harness.logout(xmpp)


if __name__ == "__main__":
    harness.run(scenario, harness.options(__doc__, ["alice", "bob"]).parse_args())
