//! Accounts: credentials kept as SCRAM keys (RFC 5802 StoredKey and
//! ServerKey, for SHA-1 and SHA-256, salted and iterated — never the
//! password), and the operator's commands that manage them (`ej command
//! user …`), answered by this handler so the host never learns XMPP.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ej_guest::{Context, store};
use serde::{Deserialize, Serialize};

use crate::keys;
use crate::sasl::Hash;

/// Entries the host lists at most unless its operator raised `--max-listed`.
const LISTED_BY_DEFAULT: usize = 1000;

/// Stored credentials.
#[derive(Serialize, Deserialize)]
pub struct Account {
    /// Base64.
    salt: String,
    pub iterations: u32,
    sha1: Keys,
    sha256: Keys,
}

/// StoredKey and ServerKey, base64.
#[derive(Serialize, Deserialize)]
struct Keys {
    stored_key: String,
    server_key: String,
}

impl Account {
    /// PBKDF2 iterations for new credentials (RFC 7677's minimum).
    pub const ITERATIONS: u32 = 4096;

    /// Credentials for `password`, with a new random salt.
    pub fn new(password: &str) -> Self {
        let salt: [u8; 16] = crate::random::bytes();
        let keys = |hash: Hash| {
            let (stored, server) = hash.keys(&hash.salted_password(password.as_bytes(), &salt, Self::ITERATIONS));
            Keys {
                stored_key: BASE64.encode(stored),
                server_key: BASE64.encode(server),
            }
        };
        Self {
            salt: BASE64.encode(salt),
            iterations: Self::ITERATIONS,
            sha1: keys(Hash::Sha1),
            sha256: keys(Hash::Sha256),
        }
    }

    pub fn load(user: &str) -> Result<Option<Self>, String> {
        store::get_json(&keys::account(user))
    }

    pub fn salt(&self) -> Result<Vec<u8>, &'static str> {
        BASE64.decode(&self.salt).map_err(|_| "temporary-auth-failure")
    }

    /// StoredKey and ServerKey for `hash`.
    pub fn keys(&self, hash: Hash) -> Result<(Vec<u8>, Vec<u8>), &'static str> {
        let keys = match hash {
            Hash::Sha1 => &self.sha1,
            Hash::Sha256 => &self.sha256,
        };
        let decode = |text: &str| BASE64.decode(text).map_err(|_| "temporary-auth-failure");
        Ok((decode(&keys.stored_key)?, decode(&keys.server_key)?))
    }

    /// Whether `password` is this account's (for PLAIN).
    pub fn verify(&self, password: &str) -> bool {
        let (Ok(salt), Ok((stored, _))) = (self.salt(), self.keys(Hash::Sha256)) else {
            return false;
        };
        let salted = Hash::Sha256.salted_password(password.as_bytes(), &salt, self.iterations);
        let (candidate, _) = Hash::Sha256.keys(&salted);
        crate::sasl::same(&candidate, &stored)
    }
}

/// Gives `user` new credentials for `password`; the FAST tokens its
/// clients hold stop working.
pub fn set_password(user: &str, password: &str) -> Result<(), String> {
    crate::sasl::forget_tokens(user);
    store::put_json(&keys::account(user), &Account::new(password))
}

/// Removes an account and everything kept for it.
pub fn remove(user: &str) {
    let prefixes = [
        keys::pendings(user),
        keys::resources(user),
        keys::offlines(user),
        keys::private(user, ""),
        keys::carbon_copies(user),
        keys::fast_tokens(user),
    ];
    for prefix in prefixes {
        for (key, _) in store::scan(&prefix, 10_000) {
            store::delete(&key);
        }
    }
    crate::pep::remove(user);
    crate::archive::Archive::remove(&format!("{user}@{}", crate::stream::served_domain()));
    store::delete(&keys::archive_prefs(user));
    for key in [
        keys::roster(user),
        keys::vcard(user),
        keys::blocklist(user),
        keys::last(user),
        keys::account(user),
    ] {
        store::delete(&key);
    }
}

/// Answers an operator's command:
/// `user add NAME PASSWORD`, `user password NAME PASSWORD`,
/// `user remove NAME`, `user list`, `config registration open|closed`,
/// `config archive-limit N`.
pub fn operator(cx: &mut Context, command: &str) -> Result<(), String> {
    let words: Vec<&str> = command.split_whitespace().collect();
    let domain = crate::stream::served_domain();
    let name = |word: &str| {
        crate::sasl::account_name(word, &domain).ok_or_else(|| format!("`{word}` is not a valid user name"))
    };
    let answer = match words.as_slice() {
        ["user", verb @ ("add" | "password"), user, password] => {
            let user = name(user)?;
            let exists = Account::load(&user)?.is_some();
            match (*verb, exists) {
                ("add", true) => return Err(format!("{user}@{domain} exists (use `user password`)")),
                ("password", false) => return Err(format!("no user {user}@{domain}")),
                _ => set_password(&user, password)?,
            }
            if *verb == "add" {
                format!("added {user}@{domain}")
            } else {
                format!("changed the password of {user}@{domain}")
            }
        }
        ["user", "remove", user] => {
            let user = name(user)?;
            if Account::load(&user)?.is_none() {
                return Err(format!("no user {user}@{domain}"));
            }
            remove(&user);
            // Its sessions end now.
            let bare = format!("{user}@{domain}");
            for resource in crate::routing::resources(&bare) {
                cx.route(keys::address(&bare, &resource), crate::routing::REMOVED);
            }
            format!("removed {user}@{domain}")
        }
        ["config", "registration", state @ ("open" | "closed")] => {
            crate::register::set_open(*state == "open");
            format!("in-band registration {state}")
        }
        ["config", "archive-limit", limit] => {
            let limit = limit
                .parse::<u64>()
                .ok()
                .filter(|limit| (1..=crate::archive::MAX_LIMIT).contains(limit))
                .ok_or_else(|| {
                    format!(
                        "the archive limit is a number of messages, 1 to {}",
                        crate::archive::MAX_LIMIT
                    )
                })?;
            crate::archive::set_limit(limit)?;
            format!("archives keep the last {limit} messages")
        }
        ["user", "list", narrower @ ..] if narrower.len() <= 1 => {
            let prefix = format!("{}{}", keys::ACCOUNTS, narrower.first().copied().unwrap_or_default());
            let mut users: Vec<String> = store::scan(&prefix, 10_000)
                .into_iter()
                .filter_map(|(key, _)| key.strip_prefix(keys::ACCOUNTS).map(|user| format!("{user}@{domain}")))
                .collect();
            // The host lists at most `--max-listed` entries (1000 unless
            // raised), and does not say when it stopped.
            if users.len() >= LISTED_BY_DEFAULT {
                users.push(format!(
                    "(the first {}: a list stops at ej serve --max-listed; narrow it with user list PREFIX)",
                    users.len()
                ));
            }
            users.join("\n")
        }
        _ => {
            return Err(
                "commands: user add NAME PASSWORD | user password NAME PASSWORD | user remove NAME | user list [PREFIX] \
                 | config registration open|closed | config archive-limit N"
                    .to_owned(),
            );
        }
    };
    for line in answer.lines() {
        cx.send(line);
    }
    Ok(())
}
