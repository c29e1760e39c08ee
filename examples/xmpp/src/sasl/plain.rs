//! SASL PLAIN (RFC 4616), offered only on encrypted streams: the password
//! is checked against the stored SCRAM-SHA-256 keys, so the server never
//! keeps it.

use super::Success;
use crate::Session;
use crate::accounts::Account;

/// Checks `authzid NUL authcid NUL password`.
pub fn authenticate(session: &Session, data: &[u8]) -> Result<Success, &'static str> {
    let mut parts = data.split(|byte| *byte == 0);
    let (Some(authzid), Some(authcid), Some(password), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("malformed-request");
    };
    let text = |bytes: &[u8]| {
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| "malformed-request")
    };
    let (authzid, authcid, password) = (text(authzid)?, text(authcid)?, text(password)?);
    let user = super::account_name(&authcid, &session.domain).ok_or("not-authorized")?;
    if !authzid.is_empty() && authzid != format!("{user}@{}", session.domain) {
        return Err("invalid-authzid");
    }
    let account = Account::load(&user).map_err(|_| "temporary-auth-failure")?;
    match account {
        Some(account) if account.verify(&password) => Ok(Success { user, additional: None }),
        _ => Err("not-authorized"),
    }
}
