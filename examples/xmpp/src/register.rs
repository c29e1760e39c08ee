//! XEP-0077 in-band registration, off unless the operator opens it (`ej
//! command config registration open`), as the compliance suites ask:
//! before authentication, over TLS only, a client may create an account;
//! after it, change its password or remove its account.

use ej_guest::{Context, store};

use crate::accounts::Account;
use crate::roster::result;
use crate::stanza::{self, Condition};
use crate::xml::Element;
use crate::{Session, keys, sasl, stream};

pub const NS: &str = "jabber:iq:register";
/// The stream feature announcing it.
pub const FEATURE: &str = "<register xmlns='http://jabber.org/features/iq-register'/>";
const CONFIG: &str = "config/registration";

/// Whether the operator opened registration.
pub fn open() -> bool {
    store::get(CONFIG).as_deref() == Some(b"open")
}

/// Opens or closes registration (the operator's `config registration`).
pub fn set_open(open: bool) {
    if open {
        store::put(CONFIG, b"open");
    } else {
        store::delete(CONFIG);
    }
}

/// A registration iq before authentication.
pub fn before_auth(session: &Session, cx: &mut Context, el: &Element, query: &Element) -> Result<(), String> {
    if !open() {
        stanza::refuse(cx, el, Condition::ServiceUnavailable);
        return Ok(());
    }
    if cx.conn().tls.is_none() {
        stanza::refuse(cx, el, Condition::NotAuthorized);
        return Ok(());
    }
    match el.attr("type") {
        Some("get") => {
            let form = Element::new("query", NS)
                .child(Element::new("instructions", NS).text("Choose a user name and a password."))
                .child(Element::new("username", NS))
                .child(Element::new("password", NS));
            cx.send(result(el, Some(form)));
        }
        Some("set") => {
            let (Some(name), Some(password)) = (query.child_text("username", NS), query.child_text("password", NS))
            else {
                stanza::refuse(cx, el, Condition::BadRequest);
                return Ok(());
            };
            let Some(user) = sasl::account_name(name.trim(), &session.domain).filter(|_| !password.is_empty()) else {
                stanza::refuse(cx, el, Condition::NotAcceptable);
                return Ok(());
            };
            if Account::load(&user)?.is_some() {
                stanza::refuse(cx, el, Condition::Conflict);
                return Ok(());
            }
            store::put_json(&keys::account(&user), &Account::new(&password))?;
            cx.send(result(el, None));
        }
        _ => stanza::refuse(cx, el, Condition::BadRequest),
    }
    Ok(())
}

/// A registration iq from a logged-in account: a new password, or
/// `<remove/>` to delete the account.
pub fn after_auth(session: &Session, cx: &mut Context, el: &Element, query: &Element) -> Result<(), String> {
    let user = session.user.clone().unwrap_or_default();
    match el.attr("type") {
        Some("get") => {
            let form = Element::new("query", NS)
                .child(Element::new("registered", NS))
                .child(Element::new("username", NS).text(user.as_str()));
            cx.send(result(el, Some(form)));
        }
        Some("set") if query.get("remove", NS).is_some() => {
            crate::accounts::remove(&user);
            cx.send(result(el, None));
            stream::error(cx, "not-authorized", "the account was removed");
        }
        Some("set") => match query.child_text("password", NS).filter(|password| !password.is_empty()) {
            Some(password) => {
                crate::accounts::set_password(&user, &password)?;
                cx.send(result(el, None));
            }
            None => stanza::refuse(cx, el, Condition::BadRequest),
        },
        _ => stanza::refuse(cx, el, Condition::BadRequest),
    }
    Ok(())
}
