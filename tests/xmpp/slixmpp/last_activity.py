"""XEP-0012 last activity of a contact: alice and bob log in and become
mutual contacts (as in roster.py). alice asks the server how long bob has
been away (`jabber:iq:last` to bob's bare JID) while bob is online; then
bob logs out, and once alice has his unavailable presence she asks again.

Reports `session_start` and `roster` changes as roster.py does, bob's
`presence`s to alice, and `last_activity` for each answer (`bob_online`,
`from`, `seconds`). Exits 0 once both are answered.
"""

import harness


async def last_activity(alice, bob_jid, bob_online):
    iq = await alice["xep_0012"].get_last_activity(bob_jid, timeout=10)
    harness.emit("last_activity", client="alice", bob_online=bob_online,
                 seconds=iq["last_activity"]["seconds"], **{"from": str(iq["from"])})


async def scenario(args):
    alice = harness.client(args, *args.alice, plugins=["xep_0012"])
    bob = harness.client(args, *args.bob)
    from_bob = harness.watch_presence(alice, "alice", bob.requested_jid.bare)
    await harness.login(args, alice, "alice")
    await harness.login(args, bob, "bob")
    await harness.befriend(alice, "alice", bob, "bob", "Bob")
    bob_jid = bob.boundjid.bare

    await last_activity(alice, bob_jid, bob_online=True)
    await harness.logout(bob)
    await harness.presence_of(from_bob, ["unavailable"])
    await last_activity(alice, bob_jid, bob_online=False)

    await harness.logout(alice)


if __name__ == "__main__":
    harness.run(scenario, harness.options(__doc__, ["alice", "bob"]).parse_args())
