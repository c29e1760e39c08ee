"""XEP-0054 vcard-temp: alice logs in, publishes her vCard (FN and
NICKNAME) and logs out; then bob logs in and asks for the vCard of alice's
bare JID (from the server, not slixmpp's cache).

Reports `session_start` for each, `published` (alice's `fn` and
`nickname`), and `vcard` (what bob got: `from`, `fn`, and `nicknames`: a
list, as slixmpp reads NICKNAME). Exits 0
once bob has an answer.
"""

import slixmpp

import harness

FN, NICKNAME = "Alice Liddell", "alice"


async def scenario(args):
    alice = harness.client(args, *args.alice, plugins=["xep_0054"])
    await harness.login(args, alice, "alice")
    card = alice["xep_0054"].make_vcard()
    card["FN"] = FN
    card["NICKNAME"] = NICKNAME
    await alice["xep_0054"].publish_vcard(card)
    harness.emit("published", client="alice", fn=FN, nickname=NICKNAME)
    await harness.logout(alice)

    bob = harness.client(args, *args.bob, plugins=["xep_0054"])
    await harness.login(args, bob, "bob")
    alice_jid = slixmpp.JID(args.alice[0]).bare
    iq = await bob["xep_0054"].get_vcard(slixmpp.JID(alice_jid), cached=False, timeout=10)
    vcard = iq["vcard_temp"]
    harness.emit("vcard", client="bob", fn=vcard["FN"], nicknames=list(vcard["NICKNAME"]),
                 **{"from": str(iq["from"])})
    await harness.logout(bob)


if __name__ == "__main__":
    harness.run(scenario, harness.options(__doc__, ["alice", "bob"]).parse_args())
