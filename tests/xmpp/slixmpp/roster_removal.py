"""Removing a contact (RFC 6121 §2.5.2): alice and bob log in and become
mutual contacts (as in roster.py); then alice removes bob from her roster
(`subscription='remove'`). Her server must cancel both subscriptions: bob
gets `unsubscribe` and `unsubscribed` from alice and her unavailable
presence, his item for alice loses both `to` and `from`, and alice's item
for bob is gone.

Reports `session_start` and `roster` changes as roster.py does (the
polling goes on until alice's roster lacks bob and bob's item for alice,
if any, has subscription 'none'), `removed` once alice's removal was
accepted, and every `presence` each receives from the other (`from`,
`type`, `status`). Exits 0 once the rosters show it and bob has alice's
unavailable presence.
"""

import asyncio

import harness


async def scenario(args):
    alice = harness.client(args, *args.alice)
    bob = harness.client(args, *args.bob)
    alice_jid, bob_jid = alice.requested_jid.bare, bob.requested_jid.bare
    harness.watch_presence(alice, "alice", bob_jid)
    from_alice = harness.watch_presence(bob, "bob", alice_jid)
    await harness.login(args, alice, "alice")
    await harness.login(args, bob, "bob")
    await harness.befriend(alice, "alice", bob, "bob", "Bob")
    await harness.presence_of(from_alice, harness.AVAILABLE)

    await alice.del_roster_item(bob_jid)
    harness.emit("removed", client="alice", jid=bob_jid)

    def cancelled(rosters):
        return (bob_jid not in rosters["alice"]
                and rosters["bob"].get(alice_jid, {}).get("subscription", "none") == "none")

    await asyncio.gather(
        harness.watch_rosters({"alice": alice, "bob": bob}, cancelled),
        harness.presence_of(from_alice, ["unavailable"]),
    )

    await asyncio.gather(harness.logout(alice), harness.logout(bob))


if __name__ == "__main__":
    harness.run(scenario, harness.options(__doc__, ["alice", "bob"]).parse_args())
