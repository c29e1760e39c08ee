//! Echo: an example ej handler that sends each stanza back to its sender.
//!
//! Each stanza is echoed with its `from` and `to` attributes swapped (a
//! stanza with neither is echoed unchanged), except two questions:
//! `<count/>` gets `<count n='N'/>` back, N being the number of stanzas so
//! far, this one included; `<module/>` gets `<module n='N' digest='D'/>`, D
//! being the digest of the module build that answered; `<tls/>` gets what
//! the TLS handshake settled (`<tls/>` alone on a plain connection). XMPP's
//! `<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>` gets `<proceed/>`,
//! and the connection is encrypted. The stream header is answered with one
//! of our own, and the peer's end of stream with ours.

use ej_guest::{CloseReason, Context, Handler, xml};
use serde::{Deserialize, Serialize};

/// The handler, and the state each connection carries between events.
#[derive(Default, Serialize, Deserialize)]
struct Echo {
    /// Stanzas received on this connection.
    stanzas: u64,
    /// The `to` of the peer's stream header: the domain we speak for.
    domain: String,
}

impl Handler for Echo {
    fn stream_open(&mut self, cx: &mut Context, header: &str) -> Result<(), String> {
        let header = xml::Element::parse(header)?;
        self.domain = header.attr("to").unwrap_or_default().to_owned();
        cx.send(xml::stream_header(&self.domain));
        Ok(())
    }

    fn stanza(&mut self, cx: &mut Context, stanza: &str) -> Result<(), String> {
        self.stanzas += 1;
        let el = xml::Element::parse(stanza)?;
        match el.name() {
            "count" => cx.send(format!("<count n='{}'/>", self.stanzas)),
            "module" => {
                let digest = &cx.conn().module.digest;
                cx.send(format!("<module n='{}' digest='{digest}'/>", self.stanzas));
            }
            "starttls" if el.attr("xmlns") == Some(TLS_NS) => {
                cx.send(format!("<proceed xmlns='{TLS_NS}'/>"));
                cx.start_tls();
            }
            "tls" => cx.send(describe_tls(cx.conn().tls.as_ref())),
            _ => cx.send(el.swap_from_to()),
        }
        Ok(())
    }

    fn closed(&mut self, cx: &mut Context, reason: CloseReason) -> Result<(), String> {
        if reason == CloseReason::StreamEnd {
            cx.send("</stream:stream>");
        }
        Ok(())
    }
}

/// XMPP's STARTTLS namespace (RFC 6120 §5).
const TLS_NS: &str = "urn:ietf:params:xml:ns:xmpp-tls";

/// `<tls/>` for a plain connection; else its version, server name and
/// channel bindings (hex).
fn describe_tls(tls: Option<&ej_guest::TlsInfo>) -> String {
    let Some(tls) = tls else {
        return "<tls/>".to_owned();
    };
    let hex = |bytes: &[u8]| bytes.iter().map(|byte| format!("{byte:02x}")).collect::<String>();
    format!(
        "<tls version='{}' server-name='{}' exporter='{}' end-point='{}'/>",
        tls.version,
        xml::escape(tls.server_name.as_deref().unwrap_or_default()),
        hex(&tls.tls_exporter),
        hex(&tls.tls_server_end_point),
    )
}

ej_guest::export!(Echo);
