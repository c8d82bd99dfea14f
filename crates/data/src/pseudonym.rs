//! Keyed pseudonyms for identifier columns (`pseudonymise = true` in the schema).
//!
//! A pseudonymised cell is replaced, when it is read, by
//! `hex(HMAC-SHA256(key, value))[..16]`: the first 8 bytes of the HMAC (RFC 2104 over SHA-256)
//! of the cell's UTF-8 bytes (after trimming and the column's `case` rule), as 16 lower-case
//! hex digits. An empty (missing) cell stays empty. The key is the text of a file
//! (`--pseudonym-key FILE`) or of the environment variable [`KEY_ENV`], surrounding
//! whitespace removed, at least [`MIN_KEY_BYTES`] bytes; its UTF-8 bytes are the HMAC key.
//!
//! Python equivalent (what an ONNX Runtime user applies before scoring):
//!
//! ```python
//! import hmac, hashlib
//! def pseudonym(key: str, value: str) -> str:
//!     v = value.strip()  # then the column's case rule, e.g. v.upper()
//!     return hmac.new(key.strip().encode(), v.encode(), hashlib.sha256).hexdigest()[:16] if v else ""
//! ```
//!
//! A model trained on pseudonyms stores [`PseudonymKey::fingerprint`] (the HMAC of the fixed
//! label [`FINGERPRINT_LABEL`], 16 hex digits; it reveals nothing about the key) so scoring
//! with a wrong or missing key is an error instead of every identifier becoming unknown.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::DataError;

/// Environment variable holding the pseudonym key (the text of the key itself).
pub const KEY_ENV: &str = "CR_PSEUDONYM_KEY";
/// Shortest accepted key, in bytes.
pub const MIN_KEY_BYTES: usize = 16;
/// The message whose HMAC identifies a key.
pub const FINGERPRINT_LABEL: &str = "customs-risk pseudonym key fingerprint v1";
/// Hex digits of a pseudonym (8 bytes of the HMAC).
pub const PSEUDONYM_HEX_DIGITS: usize = 16;

const BLOCK: usize = 64;

/// A pseudonym key with the HMAC's inner and outer states precomputed.
#[derive(Clone)]
pub struct PseudonymKey {
    inner: Sha256,
    outer: Sha256,
    fingerprint: String,
}

impl std::fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PseudonymKey(fingerprint {})", self.fingerprint)
    }
}

impl PartialEq for PseudonymKey {
    fn eq(&self, other: &Self) -> bool {
        self.fingerprint == other.fingerprint
    }
}
impl Eq for PseudonymKey {}

impl PseudonymKey {
    /// A key from its text (surrounding whitespace removed); `origin` names where it came
    /// from in errors.
    pub fn from_text(text: &str, origin: &str) -> Result<PseudonymKey, DataError> {
        let key = text.trim().as_bytes();
        if key.len() < MIN_KEY_BYTES {
            return Err(DataError::schema(format!(
                "pseudonym key from {origin} has {} bytes; at least {MIN_KEY_BYTES} are needed",
                key.len()
            )));
        }
        let mut block = [0u8; BLOCK];
        if key.len() > BLOCK {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let pad = |x: u8| {
            let mut h = Sha256::new();
            h.update(block.map(|b| b ^ x));
            h
        };
        let mut k = PseudonymKey {
            inner: pad(0x36),
            outer: pad(0x5c),
            fingerprint: String::new(),
        };
        k.fingerprint = hex(&k.mac(FINGERPRINT_LABEL.as_bytes())[..8]);
        Ok(k)
    }

    /// The key from `file` when given, else from the environment variable [`KEY_ENV`];
    /// `Ok(None)` when neither is there.
    pub fn load(file: Option<&Path>) -> Result<Option<PseudonymKey>, DataError> {
        if let Some(p) = file {
            let text = std::fs::read_to_string(p).map_err(|e| {
                DataError::io(format!("cannot read pseudonym key {}: {e}", p.display()))
            })?;
            return PseudonymKey::from_text(&text, &p.display().to_string()).map(Some);
        }
        match std::env::var(KEY_ENV) {
            Ok(t) => PseudonymKey::from_text(&t, KEY_ENV).map(Some),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(e) => Err(DataError::schema(format!("{KEY_ENV}: {e}"))),
        }
    }

    /// HMAC-SHA256 of `msg`.
    fn mac(&self, msg: &[u8]) -> [u8; 32] {
        let mut i = self.inner.clone();
        i.update(msg);
        let mut o = self.outer.clone();
        o.update(i.finalize());
        o.finalize().into()
    }

    /// Replace `value` (non-empty) by its pseudonym, in place.
    pub fn apply(&self, value: &mut String) {
        if value.is_empty() {
            return;
        }
        let m = self.mac(value.as_bytes());
        value.clear();
        push_hex(value, &m[..PSEUDONYM_HEX_DIGITS / 2]);
    }

    /// The pseudonym of `value`.
    pub fn pseudonym(&self, value: &str) -> String {
        let mut s = value.to_string();
        self.apply(&mut s);
        s
    }

    /// 16 hex digits identifying the key: HMAC(key, [`FINGERPRINT_LABEL`]).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const D: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(D[usize::from(b >> 4)] as char);
        out.push(D[usize::from(b & 15)] as char);
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 * bytes.len());
    push_hex(&mut s, bytes);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2 ("Jefe" is too short for a real key, so the MAC is tested
    /// directly) and test case 6 (a 131-byte key, hashed first).
    #[test]
    fn hmac_matches_rfc4231() {
        let mut k = PseudonymKey::from_text("0123456789abcdef", "t").unwrap();
        #[allow(clippy::type_complexity)]
        let short = |key: &[u8]| {
            let mut block = [0u8; BLOCK];
            block[..key.len()].copy_from_slice(key);
            let pad = |x: u8| {
                let mut h = Sha256::new();
                h.update(block.map(|b| b ^ x));
                h
            };
            (pad(0x36), pad(0x5c))
        };
        (k.inner, k.outer) = short(b"Jefe");
        assert_eq!(
            hex(&k.mac(b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(
            PseudonymKey::from_text("", "t").is_err(),
            "empty key refused"
        );
        // expected values: Python's hmac module (hmac.new(key, msg, hashlib.sha256))
        let k131 = PseudonymKey::from_text(&"a".repeat(131), "t").unwrap();
        assert_eq!(
            k131.pseudonym("x"),
            "76f0801bdbc0ff29",
            "key longer than a block"
        );
        let k = PseudonymKey::from_text(" 0123456789abcdef\n", "t").unwrap();
        assert_eq!(k.pseudonym("CN"), "c4cbd8cae59d3975");
        assert_eq!(k.fingerprint(), "648b12d06eb62acf");
        assert_eq!(k.pseudonym(""), "", "missing stays missing");
    }

    #[test]
    fn short_keys_are_refused() {
        let e = PseudonymKey::from_text("  short \n", "KEYFILE").unwrap_err();
        assert!(e.to_string().contains("KEYFILE") && e.to_string().contains("5 bytes"));
    }
}
