"""One client logs in and asks the server (its domain, e.g. `localhost`)
three things: a XEP-0199 ping, its XEP-0030 disco#info, and its XEP-0092
software version.

Reports `session_start`, then `pong` (the result's `type`), `disco_info`
(`identities`: [category, type, name] each; `features`), and `version`
(`name`, `version`, `os`). Exits 0 once all three are answered; an error
answer ends it with `error` (the stanza error's condition and text).
"""

import slixmpp

import harness


async def scenario(args):
    user = harness.client(args, *args.user, plugins=["xep_0030", "xep_0092", "xep_0199"])
    await harness.login(args, user, "user")
    server = slixmpp.JID(user.boundjid.domain)

    pong = await user["xep_0199"].send_ping(server, timeout=10)
    harness.emit("pong", type=pong["type"])

    info = await user["xep_0030"].get_info(jid=server, cached=False, timeout=10)
    harness.emit("disco_info",
                 identities=[[category, kind, name] for category, kind, _, name in info["disco_info"]["identities"]],
                 features=sorted(info["disco_info"]["features"]))

    version = await user["xep_0092"].get_version(server, timeout=10)
    software = version["software_version"]
    harness.emit("version", name=software["name"], version=software["version"], os=software["os"])

    await harness.logout(user)


if __name__ == "__main__":
    harness.run(scenario, harness.options(__doc__, ["user"]).parse_args())
