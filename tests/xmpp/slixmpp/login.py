"""One client logs in: STARTTLS, SASL (with --mechanism, only that
mechanism; without it, the one slixmpp prefers among those offered),
resource binding.

Reports `session_start` (with the bound JID, the SASL mechanism and the TLS
version) or `failed_auth` (with the SASL condition), then logs out. Both
are outcomes: the exit status is 0 either way.
"""

import harness


async def scenario(args):
    user = harness.client(args, *args.user, mechanism=args.mechanism)
    try:
        await harness.login(args, user, "user", presence=False)
    except harness.AuthFailed:
        return
    await harness.logout(user)
    harness.emit("disconnected", client="user")


if __name__ == "__main__":
    parser = harness.options(__doc__, ["user"])
    parser.add_argument("--mechanism", help="the only SASL mechanism to use, e.g. SCRAM-SHA-1")
    harness.run(scenario, parser.parse_args())
