//! A room as the store keeps it (XEP-0045 §10): its configuration, subject
//! and affiliations under one key; occupants each under their own key (so
//! joins and changes of presence in a room conflict only on the same
//! nickname). Its discussion history is its message archive.

use ej_guest::store;
use serde::{Deserialize, Serialize};

use crate::keys;

/// Affiliations one room keeps (owners, admins, members, outcasts).
pub const MAX_AFFILIATIONS: usize = 1000;
/// Occupants one room may have, whatever its configuration says.
pub const MAX_OCCUPANTS: u32 = 1000;
/// Messages of discussion history a newcomer may get.
pub const MAX_HISTORY: u32 = 50;

/// A long-lived relationship with a room (§5.2), by bare JID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Affiliation {
    Outcast,
    None,
    Member,
    Admin,
    Owner,
}

/// A presence-bound privilege within a room (§5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    None,
    Visitor,
    Participant,
    Moderator,
}

impl Affiliation {
    pub fn name(self) -> &'static str {
        match self {
            Self::Outcast => "outcast",
            Self::None => "none",
            Self::Member => "member",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "outcast" => Self::Outcast,
            "none" => Self::None,
            "member" => Self::Member,
            "admin" => Self::Admin,
            "owner" => Self::Owner,
            _ => return None,
        })
    }
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Visitor => "visitor",
            Self::Participant => "participant",
            Self::Moderator => "moderator",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "none" => Self::None,
            "visitor" => Self::Visitor,
            "participant" => Self::Participant,
            "moderator" => Self::Moderator,
            _ => return None,
        })
    }
}

/// Who may see occupants' real JIDs (`muc#roomconfig_whois`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Whois {
    Moderators,
    Anyone,
}

/// What the owner configures (§10.2), with the defaults of a new room.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub name: String,
    pub description: String,
    /// Kept when the last occupant leaves.
    pub persistent: bool,
    /// Listed in the service's disco#items.
    pub public: bool,
    pub members_only: bool,
    /// Only occupants with voice may speak; newcomers are visitors.
    pub moderated: bool,
    /// Empty: no password.
    pub password: String,
    pub max_users: u32,
    pub whois: Whois,
    /// Participants may change the subject, not only moderators.
    pub change_subject: bool,
    /// Occupants may invite others (else only admins and owners).
    pub allow_invites: bool,
    /// Participants may message each other privately.
    pub allow_private_messages: bool,
    /// History messages sent to a newcomer, at most.
    pub history: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            name: String::new(),
            description: String::new(),
            persistent: false,
            public: true,
            members_only: false,
            moderated: false,
            password: String::new(),
            max_users: 200,
            whois: Whois::Moderators,
            change_subject: false,
            allow_invites: true,
            allow_private_messages: true,
            history: 20,
        }
    }
}

/// The room itself.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Room {
    pub config: Config,
    /// The subject and the nickname that set it.
    pub subject: Option<(String, String)>,
    /// Bare JID → affiliation, `None` not kept.
    pub affiliations: Vec<(String, Affiliation)>,
}

impl Room {
    pub fn load(room: &str) -> Result<Option<Self>, String> {
        store::get_json(&keys::room(room))
    }

    pub fn save(&self, room: &str) -> Result<(), String> {
        store::put_json(&keys::room(room), self)
    }

    pub fn affiliation(&self, bare: &str) -> Affiliation {
        self.affiliations
            .iter()
            .find(|(jid, _)| jid == bare)
            .map_or(Affiliation::None, |(_, affiliation)| *affiliation)
    }

    /// Sets `bare`'s affiliation; false if the room keeps too many.
    pub fn set_affiliation(&mut self, bare: &str, affiliation: Affiliation) -> bool {
        self.affiliations.retain(|(jid, _)| jid != bare);
        if affiliation == Affiliation::None {
            return true;
        }
        if self.affiliations.len() >= MAX_AFFILIATIONS {
            return false;
        }
        self.affiliations.push((bare.to_owned(), affiliation));
        true
    }

    /// The role a newcomer with `affiliation` gets (§5.1.2).
    pub fn default_role(&self, affiliation: Affiliation) -> Role {
        match affiliation {
            Affiliation::Owner | Affiliation::Admin => Role::Moderator,
            Affiliation::Member => Role::Participant,
            _ if self.config.moderated => Role::Visitor,
            _ => Role::Participant,
        }
    }

    /// Removes the room, its occupants and its archive (`jid`).
    pub fn destroy(room: &str, jid: &str) {
        store::delete(&keys::room(room));
        for (key, _) in store::scan(&keys::occupants(room), MAX_OCCUPANTS) {
            store::delete(&key);
        }
        crate::archive::Archive::remove(jid);
    }
}

/// One occupant: who it really is, and what it may do.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Occupant {
    /// The occupant's real full JID.
    pub jid: String,
    pub role: Role,
    pub affiliation: Affiliation,
    /// The children of its last presence to the room (show, status, caps…),
    /// as XML, without the MUC `<x/>`.
    pub presence: String,
}

impl Occupant {
    pub fn load(room: &str, nick: &str) -> Result<Option<Self>, String> {
        store::get_json(&keys::occupant(room, nick))
    }

    pub fn save(&self, room: &str, nick: &str) -> Result<(), String> {
        store::put_json(&keys::occupant(room, nick), self)
    }

    pub fn bare(&self) -> &str {
        self.jid.split_once('/').map_or(self.jid.as_str(), |(bare, _)| bare)
    }
}

/// Every occupant of `room`: `(nick, occupant)`, in nickname order.
pub fn occupants(room: &str) -> Result<Vec<(String, Occupant)>, String> {
    let prefix = keys::occupants(room);
    store::scan(&prefix, MAX_OCCUPANTS)
        .into_iter()
        .map(|(key, value)| {
            let nick = key.strip_prefix(&prefix).unwrap_or_default().to_owned();
            let occupant = serde_json::from_slice(&value).map_err(|e| format!("occupant {key}: {e}"))?;
            Ok((nick, occupant))
        })
        .collect()
}
