//! Where each piece of server state lives in the store, and the registry
//! addresses of sessions. User names in keys are local parts, already
//! normalised (nodeprep) by the JID parser; a JID in a key is a bare JID.

/// An account's credentials (`accounts::Account`).
pub fn account(user: &str) -> String {
    format!("account/{user}")
}

/// Every account, for listing.
pub const ACCOUNTS: &str = "account/";

/// An account's roster (`roster::Roster`).
pub fn roster(user: &str) -> String {
    format!("roster/{user}")
}

/// A subscription request from `from` (a bare JID) waiting for `user`.
pub fn pending(user: &str, from: &str) -> String {
    format!("pending/{user}/{from}")
}

/// All subscription requests waiting for `user`.
pub fn pendings(user: &str) -> String {
    format!("pending/{user}/")
}

/// The presence and priority of one of `user`'s sessions (`presence::Resource`).
pub fn resource(user: &str, resource: &str) -> String {
    format!("resource/{user}/{resource}")
}

/// Every session of `user` that sent presence.
pub fn resources(user: &str) -> String {
    format!("resource/{user}/")
}

/// A message kept for `user` while offline, in arrival order by `seq`.
pub fn offline(user: &str, seq: u64) -> String {
    format!("offline/{user}/{seq:020}")
}

/// Every message kept for `user`.
pub fn offlines(user: &str) -> String {
    format!("offline/{user}/")
}

/// The registry address of a session: `xmpp/BARE/RESOURCE`.
pub fn address(bare: &str, resource: &str) -> String {
    format!("xmpp/{bare}/{resource}")
}

/// The prefix of every session of `bare`.
pub fn addresses(bare: &str) -> String {
    format!("xmpp/{bare}/")
}

/// What an account keeps under namespace `ns` (XEP-0049).
pub fn private(user: &str, ns: &str) -> String {
    format!("private/{user}/{ns}")
}

/// An account's vCard (XEP-0054).
pub fn vcard(user: &str) -> String {
    format!("vcard/{user}")
}

/// An account's block list (XEP-0191, `blocking::Blocklist`).
pub fn blocklist(user: &str) -> String {
    format!("blocklist/{user}")
}

/// When an account's last session ended, and its last status (XEP-0012).
pub fn last(user: &str) -> String {
    format!("last/{user}")
}

/// The sessions of an account that enabled message carbons (XEP-0280).
pub fn carbons(user: &str, resource: &str) -> String {
    format!("carbons/{user}/{resource}")
}

/// Every session of an account that enabled carbons.
pub fn carbon_copies(user: &str) -> String {
    format!("carbons/{user}/")
}

/// The FAST tokens (XEP-0484) of one client installation of `user`, by
/// its SASL2 user-agent id (`sasl::fast`).
pub fn fast_token(user: &str, agent: &str) -> String {
    format!("fast/{user}/{agent}")
}

/// Every client installation of `user` holding FAST tokens.
pub fn fast_tokens(user: &str) -> String {
    format!("fast/{user}/")
}

/// A group chat room (`muc::room::Room`), by its normalised local part.
pub fn room(room: &str) -> String {
    format!("muc/room/{room}")
}

/// Every room.
pub const ROOMS: &str = "muc/room/";

/// An occupant of a room, by nickname (`muc::room::Occupant`).
pub fn occupant(room: &str, nick: &str) -> String {
    format!("muc/occupant/{room}/{nick}")
}

/// Every occupant of a room.
pub fn occupants(room: &str) -> String {
    format!("muc/occupant/{room}/")
}

/// The head of the archive of `owner`, a bare JID (`archive::Head`).
pub fn archive(owner: &str) -> String {
    format!("mam/{owner}")
}

/// Record `seq` of an archive's `generation`.
pub fn archive_record(owner: &str, generation: &str, seq: u64) -> String {
    format!("mam/{owner}/{generation}/record/{seq:020}")
}

/// Where an archive's records begin and end (`archive::Run`): right
/// after the newest record (`~` sorts after digits).
pub fn archive_records(owner: &str, generation: &str) -> String {
    format!("mam/{owner}/{generation}/record/~")
}

/// Where an archive's conversation with `with` began and ended, in
/// archives made before `archive_places`.
pub fn archive_span(owner: &str, generation: &str, with: &str) -> String {
    format!("mam/{owner}/{generation}/span/{with}")
}

/// Which record is at `place` in an archive's conversation with `with`.
pub fn archive_place(owner: &str, generation: &str, with: &str, place: u64) -> String {
    format!("mam/{owner}/{generation}/place/{with}/{place:020}")
}

/// Where an archive's conversation with `with` begins and ends
/// (`archive::Run`): right after its newest place.
pub fn archive_places(owner: &str, generation: &str, with: &str) -> String {
    format!("mam/{owner}/{generation}/place/{with}/~")
}

/// What an account wants archived (`archive::prefs::Prefs`).
pub fn archive_prefs(user: &str) -> String {
    format!("mam-prefs/{user}")
}

/// A PEP node of `user` (XEP-0163), by name (`pep::config::Config`).
pub fn pep_node(user: &str, node: &str) -> String {
    format!("pep/node/{user}/{node}")
}

/// Every PEP node of `user`.
pub fn pep_nodes(user: &str) -> String {
    format!("pep/node/{user}/")
}

/// Item `id` of a PEP node: its payload.
pub fn pep_item(user: &str, node: &str, id: &str) -> String {
    format!("pep/item/{user}/{}/{id}", segment(node))
}

/// Item `id`'s place in its node's order: when it was published.
pub fn pep_index(user: &str, node: &str, id: &str) -> String {
    format!("pep/index/{user}/{}/{id}", segment(node))
}

/// The places of every item of a PEP node.
pub fn pep_indexes(user: &str, node: &str) -> String {
    format!("pep/index/{user}/{}/", segment(node))
}

/// The id of the item published last to a PEP node.
pub fn pep_last(user: &str, node: &str) -> String {
    format!("pep/last/{user}/{node}")
}

/// One slot of the cache of what clients' entity capabilities (XEP-0115)
/// ask PEP for, by a hash of their verification string.
pub fn caps(slot: u16) -> String {
    format!("caps/{slot:04x}")
}

/// `text` as a key segment with more after it: `/` (node names may have
/// them) and `%` escaped, so one node's prefix is never another's.
fn segment(text: &str) -> String {
    text.replace('%', "%25").replace('/', "%2F")
}
