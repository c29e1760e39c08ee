//! SCRAM (RFC 5802; SHA-256 per RFC 7677) on the server side, with channel
//! binding for the -PLUS mechanisms. The primitives (HMAC, PBKDF2, SHA-1,
//! SHA-256, base64) come from the RustCrypto crates; the message flow is
//! written here because it must be carried between events in the
//! connection's state, which the SASL crates' in-memory mechanism objects
//! cannot be.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ej_guest::Context;
use hmac::{Hmac, Mac as _};
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

use super::{Exchange, Success};
use crate::Session;
use crate::accounts::Account;

/// The hash a SCRAM mechanism is built on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Hash {
    Sha1,
    Sha256,
}

impl Hash {
    pub fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha1 => {
                let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes any key");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            Self::Sha256 => {
                let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha1 => Sha1::digest(data).to_vec(),
            Self::Sha256 => Sha256::digest(data).to_vec(),
        }
    }

    /// Hi(password, salt, i): PBKDF2 with this hash's HMAC.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Self::Sha1 => pbkdf2::pbkdf2_hmac_array::<Sha1, 20>(password, salt, iterations).to_vec(),
            Self::Sha256 => pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, iterations).to_vec(),
        }
    }

    /// StoredKey and ServerKey for a salted password.
    pub fn keys(self, salted: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let client_key = self.hmac(salted, b"Client Key");
        (self.digest(&client_key), self.hmac(salted, b"Server Key"))
    }
}

/// The hash and whether it binds the channel, for a mechanism name.
pub fn mechanism(name: &str) -> Option<(Hash, bool)> {
    match name {
        "SCRAM-SHA-1" => Some((Hash::Sha1, false)),
        "SCRAM-SHA-256" => Some((Hash::Sha256, false)),
        "SCRAM-SHA-1-PLUS" => Some((Hash::Sha1, true)),
        "SCRAM-SHA-256-PLUS" => Some((Hash::Sha256, true)),
        _ => None,
    }
}

/// The client-first message: answers with the server-first message.
pub fn first(
    session: &mut Session,
    cx: &Context,
    hash: Hash,
    plus: bool,
    data: &[u8],
) -> Result<Vec<u8>, &'static str> {
    let message = std::str::from_utf8(data).map_err(|_| "malformed-request")?;
    let mut parts = message.splitn(3, ',');
    let (Some(flag), Some(authzid), Some(bare)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("malformed-request");
    };
    let offered_plus = cx
        .conn()
        .tls
        .as_ref()
        .is_some_and(|tls| !tls.tls_exporter.is_empty() || !tls.tls_server_end_point.is_empty());
    match flag {
        // The client binds: only with a -PLUS mechanism, to a binding we have.
        _ if flag.starts_with("p=") => {
            if !plus {
                return Err("malformed-request");
            }
            channel_binding(cx, &flag[2..])?;
        }
        // The client could bind but thinks we cannot: a downgrade, if we offered it.
        "y" if offered_plus => return Err("not-authorized"),
        "n" | "y" if !plus => {}
        _ => return Err("malformed-request"),
    }
    if !authzid.is_empty() && !authzid.starts_with("a=") {
        return Err("malformed-request");
    }
    let mut name = None;
    let mut client_nonce = None;
    for attr in bare.split(',') {
        match attr.split_once('=') {
            Some(("n", value)) => name = Some(value.replace("=2C", ",").replace("=3D", "=")),
            Some(("r", value)) => client_nonce = Some(value),
            Some(("m", _)) => return Err("malformed-request"),
            _ => {}
        }
    }
    let (Some(name), Some(client_nonce)) = (name, client_nonce) else {
        return Err("malformed-request");
    };
    let user = super::account_name(&name, &session.domain);
    if let Some(authzid) = authzid.strip_prefix("a=")
        && Some(authzid.to_owned()) != user.as_ref().map(|user| format!("{user}@{}", session.domain))
    {
        return Err("invalid-authzid");
    }
    let account = match &user {
        Some(user) => Account::load(user).map_err(|_| "temporary-auth-failure")?,
        None => None,
    };
    // An unknown name gets a challenge like any other, with a salt that
    // stays the same for that name, and fails at the end.
    let (salt, iterations) = match &account {
        Some(account) => (account.salt()?, account.iterations),
        None => (Hash::Sha256.digest(name.as_bytes())[..16].to_vec(), Account::ITERATIONS),
    };
    let nonce = format!("{client_nonce}{}", crate::stream::random_id());
    let server_first = format!("r={nonce},s={},i={iterations}", BASE64.encode(salt));
    session.sasl = Some(Exchange {
        hash,
        user: account.is_some().then_some(user).flatten(),
        gs2_header: format!("{flag},{authzid},"),
        client_first_bare: bare.to_owned(),
        server_first: server_first.clone(),
        nonce,
        sasl2: None,
    });
    Ok(server_first.into_bytes())
}

/// The client-final message: checks the proof (and the channel binding).
pub fn last(session: &Session, cx: &Context, exchange: Exchange, data: &[u8]) -> Result<Success, &'static str> {
    let message = std::str::from_utf8(data).map_err(|_| "malformed-request")?;
    let (without_proof, proof) = message.rsplit_once(",p=").ok_or("malformed-request")?;
    let mut binding = None;
    let mut nonce = None;
    for attr in without_proof.split(',') {
        match attr.split_once('=') {
            Some(("c", value)) => binding = Some(value),
            Some(("r", value)) => nonce = Some(value),
            _ => {}
        }
    }
    if nonce != Some(exchange.nonce.as_str()) {
        return Err("not-authorized");
    }
    let mut expected = exchange.gs2_header.clone().into_bytes();
    if let Some(name) = exchange
        .gs2_header
        .strip_prefix("p=")
        .and_then(|rest| rest.split(',').next())
    {
        expected.extend_from_slice(channel_binding(cx, name)?);
    }
    if binding.and_then(|binding| BASE64.decode(binding).ok()) != Some(expected) {
        return Err("not-authorized");
    }
    let proof = BASE64.decode(proof).map_err(|_| "malformed-request")?;
    let user = exchange.user.ok_or("not-authorized")?;
    let account = Account::load(&user)
        .map_err(|_| "temporary-auth-failure")?
        .ok_or("not-authorized")?;
    let (stored_key, server_key) = account.keys(exchange.hash)?;
    let auth_message = format!(
        "{},{},{without_proof}",
        exchange.client_first_bare, exchange.server_first
    );
    let signature = exchange.hash.hmac(&stored_key, auth_message.as_bytes());
    if proof.len() != signature.len() {
        return Err("not-authorized");
    }
    let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
    if !super::same(&exchange.hash.digest(&client_key), &stored_key) {
        return Err("not-authorized");
    }
    let _ = session;
    let verifier = exchange.hash.hmac(&server_key, auth_message.as_bytes());
    Ok(Success {
        user,
        additional: Some(format!("v={}", BASE64.encode(verifier)).into_bytes()),
    })
}

/// The channel-binding data of this connection for `name`.
fn channel_binding<'a>(cx: &'a Context, name: &str) -> Result<&'a [u8], &'static str> {
    let tls = cx.conn().tls.as_ref().ok_or("malformed-request")?;
    let data = match name {
        "tls-exporter" => tls.tls_exporter.as_slice(),
        "tls-server-end-point" => tls.tls_server_end_point.as_slice(),
        _ => &[],
    };
    if data.is_empty() {
        return Err("malformed-request");
    }
    Ok(data)
}
