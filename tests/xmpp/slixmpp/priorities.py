"""Presence priorities (RFC 6121 §8.5.2.1.1): alice logs in twice, as
`high` with priority 5 and `low` with priority 1; bob logs in. bob sends a
chat message to alice's bare JID: it must reach high only. Then high logs
out; once low has high's unavailable presence, bob sends another: it must
reach low. (bob's messages to alice arrive in order, so had the first one
gone to low too, low would have it before the second.)

Reports `session_start` for each session, every `message` with a body
each of alice's sessions receives, the `presence`s of alice's sessions
that low receives, and `logged_out` for high. Exits 0 once low has the
second message.
"""

import harness

FIRST, SECOND = "to alice, both sessions online", "to alice, high gone"


async def scenario(args):
    high = harness.client(args, *args.high)
    low = harness.client(args, *args.low)
    bob = harness.client(args, *args.bob)
    high_inbox, low_inbox = harness.inbox(high, "high"), harness.inbox(low, "low")
    from_alice = harness.watch_presence(low, "low", low.requested_jid.bare)
    await harness.login(args, high, "high", priority=5)
    await harness.login(args, low, "low", priority=1)
    await harness.login(args, bob, "bob")
    alice_jid = high.boundjid.bare

    bob.send_message(mto=alice_jid, mbody=FIRST, mtype="chat")
    await high_inbox.get()
    await harness.logout(high)
    harness.emit("logged_out", client="high")
    while (await harness.presence_of(from_alice, ["unavailable"]))["from"] != high.boundjid:
        pass
    bob.send_message(mto=alice_jid, mbody=SECOND, mtype="chat")
    await low_inbox.get()

    await harness.logout(low)
    await harness.logout(bob)


if __name__ == "__main__":
    harness.run(scenario, harness.options(__doc__, ["high", "low", "bob"]).parse_args())
