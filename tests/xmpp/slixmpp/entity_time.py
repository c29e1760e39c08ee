"""XEP-0202 entity time of the server: one client logs in and asks the
server (its domain) for its time.

Reports `session_start`, then `time` (`utc`: the text of the answer's
`<utc/>`, `tzo`: its `<tzo/>`, `skew`: seconds from the client's clock to
the server's, or null if `utc` does not parse). Exits 0 once answered.
"""

import datetime

import slixmpp
from slixmpp.plugins import xep_0082

import harness


async def scenario(args):
    user = harness.client(args, *args.user, plugins=["xep_0202"])
    await harness.login(args, user, "user")
    server = slixmpp.JID(user.boundjid.domain)

    iq = await user["xep_0202"].get_entity_time(server, timeout=10)
    now = datetime.datetime.now(datetime.timezone.utc)
    time = iq["entity_time"]
    utc = time.xml.findtext(f"{{{time.namespace}}}utc")
    tzo = time.xml.findtext(f"{{{time.namespace}}}tzo")
    try:
        skew = (xep_0082.parse(utc) - now).total_seconds()
    except Exception:  # anything unparsable
        skew = None
    harness.emit("time", utc=utc, tzo=tzo, skew=skew)

    await harness.logout(user)


if __name__ == "__main__":
    harness.run(scenario, harness.options(__doc__, ["user"]).parse_args())
