"""Moderation and entry rules (XEP-0045 §8.2, §8.3, §8.4, §9.1, §10.2,
§7.2.5, §7.2.6, §7.2.8, §7.4): alice creates `lounge@conference.DOMAIN`
(so she is its owner and a moderator); bob and carol enter. bob, a mere
participant, tries to kick carol and must be refused with `forbidden`
(reported as `kick_by_participant`, `outcome`: the error condition, or
'result'). alice kicks
carol (role none, with a reason): carol must get her unavailable presence
with status codes 307 and 110, alice and bob carol's with 307. alice bans
bob (affiliation outcast, by bare JID): bob must get 301 and 110, alice
301; then bob tries to enter again and must be refused with `forbidden`,
and his message to the room, no longer his, refused with `not-acceptable`.
alice lists the room's outcasts (bob), lifts the ban (affiliation none),
lists them again (nobody), and bob enters again.

alice creates `club@…` and makes it members-only: carol must be refused
with `registration-required`; alice makes carol a member, lists the
members (carol), and carol enters. alice creates `vault@…` with a
password: carol must be refused with `not-authorized`, then enters with
the password.

alice creates `stage@…` and makes it moderated: carol enters as a visitor,
her groupchat message must come back as an error `forbidden` (and reach
nobody); alice gives her voice (role participant), carol sees her new
role, and her next message reaches alice.

Reports what groupchat.py's Observer, `join` and `configure` report for
each client, `changed` (`client`, `room`, `what`) for each role or
affiliation change the room accepted, and `affiliations` for each list.
Exits 0 once alice has carol's message in the moderated room, reporting
`done` before logging out.
"""

import slixmpp

import groupchat
import harness


async def affiliations(xmpp, name, room, affiliation):
    """Asks `room` for the JIDs with `affiliation` (§9.5, §9.8), and
    reports them as `affiliations` (`client`, `room`, `affiliation`,
    `jids`: sorted)."""
    jids = await xmpp["xep_0045"].get_affiliation_list(room, affiliation)
    harness.emit("affiliations", client=name, room=room, affiliation=affiliation,
                 jids=sorted(str(jid) for jid in jids))


async def scenario(args):
    alice, bob, carol = (groupchat.client(args, *account) for account in (args.alice, args.bob, args.carol))
    seen = groupchat.observe(alice=alice, bob=bob, carol=carol)
    for xmpp, name in ((alice, "alice"), (bob, "bob"), (carol, "carol")):
        await harness.login(args, xmpp, name)
    muc = alice["xep_0045"]
    domain = groupchat.service(alice)

    lounge = f"lounge@{domain}"
    await groupchat.join(alice, seen["alice"], lounge, "alice")
    await groupchat.join(bob, seen["bob"], lounge, "bob")
    await groupchat.join(carol, seen["carol"], lounge, "carol")
    await seen["alice"].expect("presence", from_=f"{lounge}/carol", type="available")
    await seen["bob"].expect("presence", from_=f"{lounge}/carol", type="available")

    try:
        await bob["xep_0045"].set_role(lounge, "carol", "none")
        harness.emit("kick_by_participant", client="bob", outcome="result")
    except slixmpp.exceptions.IqError as error:
        harness.emit("kick_by_participant", client="bob", outcome=error.iq["error"]["condition"])
    await muc.set_role(lounge, "carol", "none", reason="too loud")
    harness.emit("changed", client="alice", room=lounge, what="carol's role to none")
    for name in ("alice", "bob", "carol"):
        await seen[name].expect("presence", from_=f"{lounge}/carol", type="unavailable")

    await muc.set_affiliation(lounge, "outcast", jid=bob.boundjid.bare, reason="spam")
    harness.emit("changed", client="alice", room=lounge, what="bob's affiliation to outcast")
    for name in ("alice", "bob"):
        await seen[name].expect("presence", from_=f"{lounge}/bob", type="unavailable")
    await groupchat.refused(bob, seen["bob"], lounge, "bob")
    bob.send_message(mto=lounge, mbody="let me back in", mtype="groupchat")
    await seen["bob"].expect("message_error", from_=lounge)
    await affiliations(alice, "alice", lounge, "outcast")
    await muc.set_affiliation(lounge, "none", jid=bob.boundjid.bare)
    harness.emit("changed", client="alice", room=lounge, what="bob's affiliation to none")
    await affiliations(alice, "alice", lounge, "outcast")
    await groupchat.join(bob, seen["bob"], lounge, "bob")

    club = f"club@{domain}"
    await groupchat.join(alice, seen["alice"], club, "alice")
    await groupchat.configure(alice, "alice", club, {"muc#roomconfig_membersonly": True})
    await groupchat.refused(carol, seen["carol"], club, "carol")
    await muc.set_affiliation(club, "member", jid=carol.boundjid.bare)
    harness.emit("changed", client="alice", room=club, what="carol's affiliation to member")
    await affiliations(alice, "alice", club, "member")
    await groupchat.join(carol, seen["carol"], club, "carol")

    vault = f"vault@{domain}"
    await groupchat.join(alice, seen["alice"], vault, "alice")
    await groupchat.configure(alice, "alice", vault, {
        "muc#roomconfig_passwordprotectedroom": True,
        "muc#roomconfig_roomsecret": "sesame",
    })
    await groupchat.refused(carol, seen["carol"], vault, "carol")
    await groupchat.join(carol, seen["carol"], vault, "carol", password="sesame")

    stage = f"stage@{domain}"
    await groupchat.join(alice, seen["alice"], stage, "alice")
    await groupchat.configure(alice, "alice", stage, {"muc#roomconfig_moderatedroom": True})
    await groupchat.join(carol, seen["carol"], stage, "carol")
    carol.send_message(mto=stage, mbody="may I speak?", mtype="groupchat")
    await seen["carol"].expect("message_error", from_=stage)
    await muc.set_role(stage, "carol", "participant")
    harness.emit("changed", client="alice", room=stage, what="carol's role to participant")
    await seen["carol"].expect("presence", from_=f"{stage}/carol", role="participant")
    carol.send_message(mto=stage, mbody="thank you", mtype="groupchat")
    await seen["alice"].expect("groupchat", from_=f"{stage}/carol", body="thank you")

    await groupchat.finish(alice, bob, carol)


if __name__ == "__main__":
    harness.run(scenario, harness.options(__doc__, ["alice", "bob", "carol"]).parse_args())
