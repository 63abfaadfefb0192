//! SHA-1 digests of log records (the `<sha1>` of `OVSDB JSON <length> <sha1>`),
//! computed by the RustCrypto `sha1` crate; only the hex helpers are ours.

use ::sha1::Digest;

/// An incremental SHA-1 hasher.
#[derive(Default, Clone)]
pub struct Sha1(::sha1::Sha1);

impl Sha1 {
    /// A fresh hasher.
    pub fn new() -> Sha1 {
        Sha1::default()
    }

    /// Hashes more bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The digest of everything hashed.
    pub fn finish(self) -> [u8; 20] {
        self.0.finalize().into()
    }
}

/// The SHA-1 digest of `data`.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    ::sha1::Sha1::digest(data).into()
}

/// Lower-case hex, as ovsdb-server writes digests.
pub fn to_hex(digest: &[u8; 20]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses 40 hex digits (either case).
pub fn from_hex(s: &[u8]) -> Option<[u8; 20]> {
    if s.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    for (i, pair) in s.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(
            to_hex(&sha1(b"")),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
        assert_eq!(
            to_hex(&sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        let mut h = Sha1::new();
        h.update(b"a");
        h.update(b"bc");
        assert_eq!(h.finish(), sha1(b"abc"));
        assert_eq!(
            from_hex(to_hex(&sha1(b"abc")).as_bytes()),
            Some(sha1(b"abc"))
        );
        assert_eq!(from_hex(b"zz"), None);
    }
}
