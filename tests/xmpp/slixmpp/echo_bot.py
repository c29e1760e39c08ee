"""bob as a bot, for a person's client to talk to: bob logs in (initial
presence, roster fetched), approves every subscription request and asks
back (slixmpp's auto_authorize and auto_subscribe), and answers every chat
message that has a body with "echo: BODY", to the full JID it came from.

Reports `session_start`; `ready` once bob is online; every `presence` from
`--peer` (a bare JID) as harness.watch_presence does; every `message` bob
receives; `roster` (bob's roster, as harness.watch_rosters does) after each
subscription change; and `echoed` (`to`, `body`) for each answer. Exits 0
when `--peer` goes unavailable after bob has answered at least once (the
person quit), logging out first; otherwise runs until the timeout.
"""

import asyncio

import harness


async def scenario(args):
    bob = harness.client(args, *args.bob)
    bob.auto_authorize = True
    bob.auto_subscribe = True
    inbox = harness.inbox(bob, "bob")
    peer = harness.watch_presence(bob, "bob", args.peer)
    echoed = asyncio.Event()

    async def report_roster():
        harness.emit("roster", client="bob", items=await harness.roster_of(bob))

    for event in ("roster_subscription_request", "roster_subscription_authorized",
                  "roster_subscription_remove", "roster_subscription_removed"):
        bob.add_event_handler(event, lambda _: asyncio.ensure_future(report_roster()))

    await harness.login(args, bob, "bob")
    harness.emit("ready", client="bob", jid=str(bob.boundjid))

    async def answer():
        while True:
            message = await inbox.get()
            if message["type"] not in ("chat", "normal") or not message["body"]:
                continue
            body = f"echo: {message['body']}"
            bob.send_message(mto=message["from"], mbody=body, mtype="chat")
            harness.emit("echoed", client="bob", to=str(message["from"]), body=body)
            echoed.set()

    answering = asyncio.ensure_future(answer())
    try:
        while True:
            await harness.presence_of(peer, ("unavailable",))
            if echoed.is_set():
                break
    finally:
        answering.cancel()
    await harness.logout(bob)


if __name__ == "__main__":
    parser = harness.options(__doc__, ["bob"])
    parser.add_argument("--peer", required=True, help="the bare JID of the person bob talks to")
    harness.run(scenario, parser.parse_args())
