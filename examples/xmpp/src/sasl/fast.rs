//! XEP-0484 FAST: a client that authenticated once (with its password)
//! asks for a token, and later authenticates with it in one round trip,
//! with the HT-SHA-256-NONE mechanism (draft-schmaus-kitten-sasl-ht): its
//! initial response is `authcid NUL HMAC-SHA-256(token, "Initiator")`, the
//! server's final message `HMAC-SHA-256(token, "Responder")` (no channel
//! binding data with -NONE).
//!
//! Tokens belong to one client installation (the SASL2 user-agent id) of
//! one account, under `keys::fast_token`, in the two slots XEP-0484 §7
//! describes: a token issued goes to `new`, and moves to `current` when it
//! is first used, which drops the older one; a token still in use but due
//! for rotation gets a successor in `new` until the client takes it up.
//! Tokens are stored as issued, not hashed: HT's proof is an HMAC keyed
//! with the token, so whatever the server can check a proof with lets one
//! make proofs; what limits a leaked token is its lifetime (`LIFETIME`),
//! the bound on clients per account (`MAX_CLIENTS`), and that a password
//! change or the account's removal drops every token.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ej_guest::store;
use serde::{Deserialize, Serialize};

use super::sasl2::Refusal;
use super::{Hash, Success};
use crate::accounts::Account;
use crate::xml::Element;
use crate::{Session, keys, time};

pub const NS: &str = "urn:xmpp:fast:0";
/// The one FAST mechanism offered.
pub const MECHANISM: &str = "HT-SHA-256-NONE";
/// How long a token is valid after it is issued.
const LIFETIME: u64 = 14 * 86_400;
/// A token used with less than this left gets a successor.
const ROTATE_BEFORE: u64 = LIFETIME / 2;
/// Client installations with tokens per account; a new one evicts the
/// one whose token was issued longest ago.
const MAX_CLIENTS: usize = 16;
/// How many of an account's token records one scan reads: more than it
/// can have, so a scan sees them all.
const SCAN: u32 = 4 * MAX_CLIENTS as u32;
/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;

/// What an `<authenticate/>` asks of FAST.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Request {
    /// `<request-token/>`: issue a token.
    token: bool,
    /// `<fast invalidate='true'/>`: the token used is never to work again.
    invalidate: bool,
}

impl Request {
    /// FAST's elements in `authenticate`; a token needs the client's
    /// user-agent id (`has_agent`), which it belongs to.
    pub fn parse(authenticate: &Element, has_agent: bool) -> Result<Self, Refusal> {
        let token = match authenticate.get("request-token", NS) {
            Some(request) if request.attr("mechanism") != Some(MECHANISM) => {
                return Err(("invalid-mechanism", "the FAST mechanism offered is HT-SHA-256-NONE"));
            }
            Some(_) if !has_agent => {
                return Err(("malformed-request", "a FAST token needs a user-agent id"));
            }
            request => request.is_some(),
        };
        let invalidate = authenticate
            .get("fast", NS)
            .and_then(|fast| fast.attr("invalidate"))
            .is_some_and(|value| matches!(value, "1" | "true"));
        Ok(Self { token, invalidate })
    }
}

/// A token, as stored and as issued.
#[derive(Clone, Serialize, Deserialize)]
pub struct Token {
    secret: String,
    /// The mechanism it was issued for, the only one it works with.
    mechanism: String,
    /// When it stops working, in seconds since the epoch.
    expiry: u64,
}

impl Token {
    fn issue(now: u64) -> Self {
        let bytes: [u8; TOKEN_BYTES] = crate::random::bytes();
        Self {
            secret: URL_SAFE_NO_PAD.encode(bytes),
            mechanism: MECHANISM.to_owned(),
            expiry: now + LIFETIME,
        }
    }

    /// HT's proof for `label` ("Initiator" or "Responder").
    fn proof(&self, label: &str) -> Vec<u8> {
        Hash::Sha256.hmac(self.secret.as_bytes(), label.as_bytes())
    }

    /// The `<token/>` of a SASL2 success.
    pub fn element(&self) -> Element {
        Element::new("token", NS)
            .with("expiry", time::format(self.expiry))
            .with("token", self.secret.as_str())
    }
}

/// One client's tokens (XEP-0484 §7).
#[derive(Default, Serialize, Deserialize)]
struct Slots {
    current: Option<Token>,
    new: Option<Token>,
}

impl Slots {
    /// When the newest of them expires (0 with none).
    fn latest(&self) -> u64 {
        [&self.current, &self.new]
            .into_iter()
            .flatten()
            .map(|token| token.expiry)
            .max()
            .unwrap_or(0)
    }
}

/// Which slot held the token that proved the client.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Used {
    Current,
    New,
}

/// The `<fast/>` inline feature of SASL2.
pub fn feature() -> Element {
    Element::new("fast", NS).child(Element::new("mechanism", NS).text(MECHANISM))
}

/// Checks an HT-SHA-256-NONE initial response against the tokens of the
/// client installation `agent`. A token that matches but has expired is
/// `credentials-expired`; anything else that does not match is
/// `not-authorized`.
pub fn authenticate(session: &Session, agent: Option<&str>, data: &[u8]) -> Result<(Success, Used), &'static str> {
    let nul = data.iter().position(|byte| *byte == 0).ok_or("malformed-request")?;
    let (name, proof) = (&data[..nul], &data[nul + 1..]);
    let name = std::str::from_utf8(name).map_err(|_| "malformed-request")?;
    let user = super::account_name(name, &session.domain).ok_or("not-authorized")?;
    let agent = agent.ok_or("not-authorized")?;
    if Account::load(&user).map_err(|_| "temporary-auth-failure")?.is_none() {
        return Err("not-authorized");
    }
    let slots: Slots = store::get_json(&keys::fast_token(&user, agent))
        .map_err(|_| "temporary-auth-failure")?
        .unwrap_or_default();
    for (used, token) in [(Used::New, &slots.new), (Used::Current, &slots.current)] {
        let Some(token) = token else {
            continue;
        };
        if token.mechanism != MECHANISM || !super::same(&token.proof("Initiator"), proof) {
            continue;
        }
        if token.expiry <= time::now() {
            return Err("credentials-expired");
        }
        let additional = Some(token.proof("Responder"));
        return Ok((Success { user, additional }, used));
    }
    Err("not-authorized")
}

/// After a successful authentication of `user` from the installation
/// `agent`: the token used (if one was) becomes the current one, or is
/// dropped if the client asked; a new one is issued if the client asked
/// or the one used is due for rotation. The token issued, for the success.
pub fn settle(user: &str, agent: Option<&str>, request: &Request, used: Option<Used>) -> Result<Option<Token>, String> {
    let Some(agent) = agent else {
        return Ok(None);
    };
    let key = keys::fast_token(user, agent);
    let stored: Option<Slots> = store::get_json(&key)?;
    let known = stored.is_some();
    let mut slots = stored.unwrap_or_default();
    let now = time::now();
    if used == Some(Used::New) {
        slots.current = slots.new.take();
    }
    if used.is_some() && request.invalidate {
        slots.current = None;
    }
    let due = used.is_some()
        && !request.invalidate
        && slots
            .current
            .as_ref()
            .is_some_and(|token| token.expiry < now + ROTATE_BEFORE);
    let issued = (request.token || due).then(|| Token::issue(now));
    if let Some(token) = &issued {
        // A token issued before and never used is replaced.
        slots.new = Some(token.clone());
    }
    slots.current = slots.current.filter(|token| token.expiry > now);
    slots.new = slots.new.filter(|token| token.expiry > now);
    if slots.latest() == 0 {
        if known {
            store::delete(&key);
        }
        return Ok(issued);
    }
    if !known {
        make_room(user);
    }
    store::put_json(&key, &slots)?;
    Ok(issued)
}

/// Evicts `user`'s clients whose tokens were issued longest ago until a
/// new one fits under `MAX_CLIENTS`.
fn make_room(user: &str) {
    let prefix = keys::fast_tokens(user);
    let mut clients: Vec<(u64, String)> = store::scan(&prefix, SCAN)
        .into_iter()
        .map(|(key, value)| {
            // Something unreadable goes first.
            let latest = serde_json::from_slice::<Slots>(&value).map_or(0, |slots| slots.latest());
            (latest, key)
        })
        .collect();
    clients.sort();
    let excess = (clients.len() + 1).saturating_sub(MAX_CLIENTS);
    for (_, key) in clients.into_iter().take(excess) {
        store::delete(&key);
    }
}

/// Drops every token of `user` (its password changed, or it is removed).
pub fn forget(user: &str) {
    for (key, _) in store::scan(&keys::fast_tokens(user), SCAN) {
        store::delete(&key);
    }
}
