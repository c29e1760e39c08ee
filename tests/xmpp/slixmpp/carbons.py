"""XEP-0280 message carbons: alice logs in twice, as `desk` and `phone`
(each with initial presence), and both enable carbons; bob logs in. bob
sends a chat message to alice's full JID at desk, so phone must get a
`received` carbon of it; then desk sends bob a chat message, so phone must
get a `sent` carbon of it.

Reports `session_start` for each session; `carbons_enabled` for desk and
phone; every `message` with a body each session receives; and each
`carbon` a session receives (`client`, `direction`: 'received' or 'sent',
the wrapper's `from` and `to`, and the forwarded message's `message`:
{from, to, type, body}). Exits 0 once phone has both carbons and bob has
desk's message.
"""

import asyncio

import harness


def carbons(xmpp, name):
    """A queue of the carbons `xmpp` receives, each reported."""
    queue = asyncio.Queue()

    def on_carbon(direction, wrapper):
        forwarded = wrapper[f"carbon_{direction}"]
        harness.emit("carbon", client=name, direction=direction,
                     message={key: str(forwarded[key]) for key in ("from", "to", "type", "body")},
                     **{"from": str(wrapper["from"]), "to": str(wrapper["to"])})
        queue.put_nowait((direction, forwarded))

    xmpp.add_event_handler("carbon_received", lambda wrapper: on_carbon("received", wrapper))
    xmpp.add_event_handler("carbon_sent", lambda wrapper: on_carbon("sent", wrapper))
    return queue


async def scenario(args):
    desk = harness.client(args, *args.desk, plugins=["xep_0280"])
    phone = harness.client(args, *args.phone, plugins=["xep_0280"])
    bob = harness.client(args, *args.bob)
    desk_inbox, bob_inbox = harness.inbox(desk, "desk"), harness.inbox(bob, "bob")
    harness.inbox(phone, "phone")
    carbons(desk, "desk")
    phone_carbons = carbons(phone, "phone")
    for xmpp, name in ((desk, "desk"), (phone, "phone")):
        await harness.login(args, xmpp, name)
        await xmpp["xep_0280"].enable()
        harness.emit("carbons_enabled", client=name)
    await harness.login(args, bob, "bob")

    bob.send_message(mto=desk.boundjid.full, mbody="to alice at her desk", mtype="chat")
    await desk_inbox.get()
    await phone_carbons.get()
    desk.send_message(mto=bob.boundjid.bare, mbody="from alice's desk", mtype="chat")
    await asyncio.gather(bob_inbox.get(), phone_carbons.get())

    await asyncio.gather(*(harness.logout(xmpp) for xmpp in (desk, phone, bob)))


if __name__ == "__main__":
    harness.run(scenario, harness.options(__doc__, ["desk", "phone", "bob"]).parse_args())
