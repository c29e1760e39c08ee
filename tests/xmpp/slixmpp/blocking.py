"""XEP-0191 blocking between mutual contacts: alice and bob log in and
become mutual contacts (as in roster.py); alice blocks bob and asks for
her block list. While bob is blocked, bob sends alice a chat message and
alice sends bob one: each must come back as an error, neither delivered.
Then alice unblocks bob, asks for her block list again, and each sends the
other a message, which must now arrive.

Reports `session_start` and `roster` changes as roster.py does; `blocklist`
(`client`, `jids`: sorted) after blocking and after unblocking;
`message_error` for each error a client receives (`client`, `from`, `to`,
`type`: the error's type, `condition`, `blocked`: whether it carries
XEP-0191's `<blocked xmlns='urn:xmpp:blocking:errors'/>`); and every
`message` with a body either receives. Exits 0 once both errors and both
later messages have arrived.
"""

import asyncio

import harness

BLOCKED_ERRORS = "urn:xmpp:blocking:errors"


def errors(xmpp, name):
    """A queue of the message errors `xmpp` receives, each reported."""
    queue = asyncio.Queue()

    def on_error(message):
        error = message["error"]
        harness.emit("message_error", client=name, type=error["type"], condition=error["condition"],
                     blocked=error.xml.find(f"{{{BLOCKED_ERRORS}}}blocked") is not None,
                     **{"from": str(message["from"]), "to": str(message["to"])})
        queue.put_nowait(message)

    xmpp.add_event_handler("message_error", on_error)
    return queue


async def blocklist(xmpp, name):
    """Asks the server for `xmpp`'s block list, and reports it."""
    jids = await xmpp["xep_0191"].get_blocked_jids()
    harness.emit("blocklist", client=name, jids=sorted(str(jid) for jid in jids))


async def scenario(args):
    alice = harness.client(args, *args.alice, plugins=["xep_0191"])
    bob = harness.client(args, *args.bob)
    alice_inbox, bob_inbox = harness.inbox(alice, "alice"), harness.inbox(bob, "bob")
    alice_errors, bob_errors = errors(alice, "alice"), errors(bob, "bob")
    await harness.login(args, alice, "alice")
    await harness.login(args, bob, "bob")
    await harness.befriend(alice, "alice", bob, "bob", "Bob")
    alice_jid, bob_jid = alice.boundjid.bare, bob.boundjid.bare

    await alice["xep_0191"].block([bob_jid])
    await blocklist(alice, "alice")
    bob.send_message(mto=alice_jid, mbody="bob, while blocked", mtype="chat")
    await bob_errors.get()
    alice.send_message(mto=bob_jid, mbody="alice, while bob is blocked", mtype="chat")
    await alice_errors.get()

    await alice["xep_0191"].unblock([bob_jid])
    await blocklist(alice, "alice")
    # Delivered in order: had the earlier messages got through, they would
    # arrive before these.
    bob.send_message(mto=alice_jid, mbody="bob, after the unblock", mtype="chat")
    alice.send_message(mto=bob_jid, mbody="alice, after the unblock", mtype="chat")
    await asyncio.gather(alice_inbox.get(), bob_inbox.get())

    await asyncio.gather(harness.logout(alice), harness.logout(bob))


if __name__ == "__main__":
    harness.run(scenario, harness.options(__doc__, ["alice", "bob"]).parse_args())
