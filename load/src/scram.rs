//! The client side of SASL SCRAM (RFC 5802, RFC 7677) without channel
//! binding: SCRAM-SHA-1 and SCRAM-SHA-256. It builds the client-first and
//! client-final messages and checks the server's signature; the hashes,
//! HMAC and PBKDF2 come from the RustCrypto crates.

use anyhow::{Context as _, Result, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac as _};
use sha1::{Digest as _, Sha1};
use sha2::Sha256;

/// The most PBKDF2 iterations a server may ask for: more would let a
/// server make each login cost the load generator seconds.
const MAX_ITERATIONS: u32 = 1_000_000;

/// The hash a SCRAM mechanism is built on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    Sha1,
    Sha256,
}

impl Hash {
    /// The SASL mechanism name.
    pub fn mechanism(self) -> &'static str {
        match self {
            Hash::Sha1 => "SCRAM-SHA-1",
            Hash::Sha256 => "SCRAM-SHA-256",
        }
    }

    /// The hash for a mechanism name, if it is one of these.
    pub fn from_mechanism(name: &str) -> Option<Self> {
        [Hash::Sha1, Hash::Sha256]
            .into_iter()
            .find(|hash| hash.mechanism() == name)
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => Sha1::digest(data).to_vec(),
            Hash::Sha256 => Sha256::digest(data).to_vec(),
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        // HMAC takes keys of any length, so `new_from_slice` cannot fail.
        match self {
            Hash::Sha1 => {
                let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes any key length");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            Hash::Sha256 => {
                let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Hash::Sha1 => pbkdf2::pbkdf2_hmac_array::<Sha1, 20>(password, salt, iterations).to_vec(),
            Hash::Sha256 => pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, iterations).to_vec(),
        }
    }
}

/// One SCRAM exchange, from the client's first message to the check of
/// the server's last.
pub struct Scram {
    hash: Hash,
    password: String,
    nonce: String,
    /// `n=USER,r=NONCE`: part of the AuthMessage.
    first_bare: String,
    /// What the server's final message must carry, once the proof is sent.
    server_signature: Option<Vec<u8>>,
}

impl Scram {
    /// A new exchange for `user` with a fresh random nonce.
    pub fn new(hash: Hash, user: &str, password: &str) -> Result<Self> {
        let mut random = [0u8; 18];
        getrandom::fill(&mut random).map_err(|error| anyhow::anyhow!("no randomness for a nonce: {error}"))?;
        Ok(Self::with_nonce(hash, user, password, &BASE64.encode(random)))
    }

    /// A new exchange with a given nonce (for the RFCs' test vectors).
    pub fn with_nonce(hash: Hash, user: &str, password: &str, nonce: &str) -> Self {
        let user = user.replace('=', "=3D").replace(',', "=2C");
        Self {
            hash,
            password: password.to_owned(),
            nonce: nonce.to_owned(),
            first_bare: format!("n={user},r={nonce}"),
            server_signature: None,
        }
    }

    /// The client-first message: no channel binding, no authzid.
    pub fn client_first(&self) -> String {
        format!("n,,{}", self.first_bare)
    }

    /// Reads the server-first message and returns the client-final one,
    /// with the proof.
    pub fn client_final(&mut self, server_first: &str) -> Result<String> {
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for field in server_first.split(',') {
            match field.split_at_checked(2) {
                Some(("r=", value)) => nonce = Some(value),
                Some(("s=", value)) => salt = Some(BASE64.decode(value).context("the salt is not base64")?),
                Some(("i=", value)) => iterations = Some(value.parse::<u32>().context("the iteration count")?),
                Some(("m=", _)) => bail!("the server requires a SCRAM extension"),
                _ => {}
            }
        }
        let nonce = nonce.context("no nonce in the server-first message")?;
        let salt = salt.context("no salt in the server-first message")?;
        let iterations = iterations.context("no iteration count in the server-first message")?;
        ensure!(
            nonce.starts_with(&self.nonce) && nonce.len() > self.nonce.len(),
            "the server's nonce does not extend ours"
        );
        ensure!(
            (1..=MAX_ITERATIONS).contains(&iterations),
            "{iterations} iterations is out of bounds"
        );
        // "biws" is base64 of the GS2 header "n,,".
        let final_bare = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{final_bare}", self.first_bare);
        let salted = self.hash.salted_password(self.password.as_bytes(), &salt, iterations);
        let client_key = self.hash.hmac(&salted, b"Client Key");
        let stored_key = self.hash.digest(&client_key);
        let signature = self.hash.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
        let server_key = self.hash.hmac(&salted, b"Server Key");
        self.server_signature = Some(self.hash.hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{final_bare},p={}", BASE64.encode(proof)))
    }

    /// Checks the server-final message (`v=SIGNATURE`).
    pub fn verify_server_final(&self, server_final: &str) -> Result<()> {
        let expected = self.server_signature.as_ref().context("no proof was sent yet")?;
        if let Some(error) = server_final.strip_prefix("e=") {
            bail!("the server refused: {error}");
        }
        let given = server_final
            .split(',')
            .find_map(|field| field.strip_prefix("v="))
            .context("no verifier in the server-final message")?;
        ensure!(
            BASE64.decode(given).ok().as_ref() == Some(expected),
            "the server's signature is wrong"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5802 §5, SCRAM-SHA-1.
    #[test]
    fn rfc5802_sha1() {
        let mut scram = Scram::with_nonce(Hash::Sha1, "user", "pencil", "fyko+d2lbbFgONRv9qkxdawL");
        assert_eq!(scram.client_first(), "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
        let server_first = "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096";
        assert_eq!(
            scram.client_final(server_first).unwrap(),
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
        );
        scram.verify_server_final("v=rmF9pqV8S7suAoZWja4dJRkFsKQ=").unwrap();
        assert!(scram.verify_server_final("v=AAAApqV8S7suAoZWja4dJRkFsKQ=").is_err());
    }

    /// RFC 7677 §3, SCRAM-SHA-256.
    #[test]
    fn rfc7677_sha256() {
        let mut scram = Scram::with_nonce(Hash::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(scram.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        assert_eq!(
            scram.client_final(server_first).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        scram
            .verify_server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
    }

    #[test]
    fn refuses_bad_server_first() {
        let mut scram = Scram::with_nonce(Hash::Sha1, "user", "pencil", "abc");
        assert!(
            scram.client_final("r=xyz123,s=QSXCR+Q6sek8bf92,i=4096").is_err(),
            "foreign nonce"
        );
        assert!(
            scram.client_final("r=abc,s=QSXCR+Q6sek8bf92,i=4096").is_err(),
            "nonce not extended"
        );
        assert!(
            scram.client_final("r=abcd,s=QSXCR+Q6sek8bf92,i=0").is_err(),
            "no iterations"
        );
        assert!(
            scram.client_final("r=abcd,s=QSXCR+Q6sek8bf92,i=99999999").is_err(),
            "too many"
        );
        assert!(scram.client_final("r=abcd,s=!!,i=4096").is_err(), "salt not base64");
        assert!(scram.client_final("r=abcd,i=4096").is_err(), "no salt");
        assert!(
            scram.verify_server_final("v=rmF9pqV8S7suAoZWja4dJRkFsKQ=").is_err(),
            "no proof sent"
        );
    }

    #[test]
    fn escapes_user_names() {
        let scram = Scram::with_nonce(Hash::Sha1, "a=b,c", "p", "n");
        assert_eq!(scram.client_first(), "n,,n=a=3Db=2Cc,r=n");
    }
}
