"""PEP (XEP-0163) notifications by entity capabilities: alice and bob
become mutual contacts; bob's client (slixmpp's XEP-0107 user mood, which
adds `http://jabber.org/protocol/mood+notify` to its caps) hears of the
moods alice publishes; carol, no contact of alice's, may not read them; a
second session of bob's gets alice's last mood as it comes online; carol
gets it once she and alice become contacts; alice retracts it and all of
them hear of that.

alice publishes `happy`, and bob gets it (as a notification, or as the
last item once the server has learned what his caps mean: whichever comes
first, it comes once); then `sad`, which reaches bob as a notification.

Reports `session_start` for each session (`alice`, `bob`, `carol`,
`bob2`); `pubsub` for each notification bob's sessions and carol get (see
`harness.watch_pubsub`); `published` (`client`, `mood`, and the `id` the
server answered with); `refused` (carol's error, see `harness.iq_error`);
`retrieved` (`client`, `ids` and `payloads` of the items bob read);
`nodes` (`client`, the nodes of alice's that disco#items shows them);
`retracted`; and `done`. Exits 0 once every step is done.
"""

from slixmpp.exceptions import IqError

import harness

MOOD = "http://jabber.org/protocol/mood"


async def published(xmpp, value, text):
    """Publishes a mood and reports it with the id the server gave it."""
    answer = await xmpp["xep_0107"].publish_mood(value, text)
    harness.emit("published", client="alice", mood=value,
                 id=answer["pubsub"]["publish"]["item"]["id"])


async def nodes(xmpp, name, of):
    """Reports the nodes disco#items lists for `of`, as `name` sees them."""
    items = await xmpp["xep_0030"].get_items(jid=of)
    harness.emit("nodes", client=name, nodes=sorted(node for _, node, _ in items["disco_items"]["items"]))


async def scenario(args):
    plugins = ["xep_0030", "xep_0060", "xep_0115", "xep_0163", "xep_0107"]
    alice = harness.client(args, *args.alice, plugins=plugins)
    bob = harness.client(args, *args.bob, plugins=plugins)
    carol = harness.client(args, *args.carol, plugins=plugins)
    bob_heard = harness.watch_pubsub(bob, "bob")
    carol_heard = harness.watch_pubsub(carol, "carol")
    await harness.login_with_caps(args, alice, "alice")
    await harness.login_with_caps(args, bob, "bob")
    await harness.login_with_caps(args, carol, "carol")
    await harness.befriend(alice, "alice", bob, "bob", "Bob")
    alice_jid = alice.boundjid.bare

    await published(alice, "happy", "sunny")
    await bob_heard.get()
    await published(alice, "sad", "rainy")
    await bob_heard.get()

    try:
        await carol["xep_0060"].get_items(alice_jid, MOOD)
        harness.emit("retrieved", client="carol")
    except IqError as error:
        harness.emit("refused", client="carol", **harness.iq_error(error))
    answer = await bob["xep_0060"].get_items(alice_jid, MOOD)
    items = answer["pubsub"]["items"]
    harness.emit("retrieved", client="bob", ids=[item["id"] for item in items],
                 payloads=[harness.slixmpp.xmlstream.tostring(item["payload"]) for item in items])
    await nodes(bob, "bob", alice_jid)
    await nodes(carol, "carol", alice_jid)

    second = harness.slixmpp.JID(args.bob[0]).bare + "/tablet"
    bob2 = harness.client(args, second, args.bob[1], plugins=plugins)
    bob2_heard = harness.watch_pubsub(bob2, "bob2")
    await harness.login_with_caps(args, bob2, "bob2")
    await bob2_heard.get()
    await harness.befriend(carol, "carol", alice, "alice", "Alice")
    await carol_heard.get()

    await alice["xep_0060"].retract(None, MOOD, "current", notify=True)
    harness.emit("retracted", client="alice", id="current")
    for heard in (bob_heard, bob2_heard, carol_heard):
        await heard.get()
    harness.emit("done")
    for xmpp in (alice, bob, bob2, carol):
        await harness.logout(xmpp)


if __name__ == "__main__":
    harness.run(scenario, harness.options(__doc__, ["alice", "bob", "carol"]).parse_args())
