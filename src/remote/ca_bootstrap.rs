//! `--bootstrap-ca-cert` on the client side (an active `ssl:` remote), as
//! lib/stream-ssl.c does it: while the CA file does not exist, the first
//! handshake accepts the peer's chain unverified, the top certificate of
//! the chain the peer sent is saved as the CA file if it is self-signed,
//! and the connection is dropped so that the next one is verified against it.

use rustls::pki_types::CertificateDer;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Why the CA certificate could not be bootstrapped (ovsdb-server's wording).
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The peer sent no certificate.
    #[error("could not bootstrap CA cert: no certificate presented by peer")]
    NoCertificate,
    /// The top of the peer's chain is not a CA certificate.
    #[error("could not bootstrap CA cert: obtained certificate is not self-signed{}",
        if *.only_one { " (only one certificate was received, so probably the peer is not configured to send its CA certificate)" } else { "" })]
    NotSelfSigned {
        /// The chain held one certificate only.
        only_one: bool,
    },
    /// Another process made the file meanwhile: it is read on the next connection.
    #[error("reading CA cert {0} created by another process")]
    MadeElsewhere(String),
    /// The file could not be written.
    #[error("could not bootstrap CA cert: writing {file} failed: {source}")]
    Write {
        /// The CA file.
        file: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Whether a DER certificate names itself as its issuer (OpenSSL's
/// X509_check_issued of a certificate with itself, by names).
pub fn self_signed(der: &[u8]) -> bool {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, c)) => c.issuer().as_raw() == c.subject().as_raw(),
        Err(_) => false,
    }
}

/// The PEM text of a DER certificate (64 base64 characters a line, as OpenSSL writes it).
pub fn pem(der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = Vec::with_capacity(der.len().div_ceil(3) * 4);
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                let six = (n >> (18 - 6 * i)) & 63;
                b64.push(ALPHABET.get(six as usize).copied().unwrap_or(b'A'));
            } else {
                b64.push(b'=');
            }
        }
    }
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Saves the top of the peer's `chain` as the CA file `path` (created
/// anew, read-only, as stream-ssl.c creates it).
pub fn save_peer_ca(chain: &[CertificateDer<'_>], path: &Path) -> Result<(), BootstrapError> {
    let top = chain.last().ok_or(BootstrapError::NoCertificate)?;
    if !self_signed(top.as_ref()) {
        return Err(BootstrapError::NotSelfSigned {
            only_one: chain.len() < 2,
        });
    }
    let file = path.display().to_string();
    let mut f = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(BootstrapError::MadeElsewhere(file))
        }
        Err(source) => return Err(BootstrapError::Write { file, source }),
    };
    if let Err(source) = f.write_all(pem(top.as_ref()).as_bytes()) {
        let _ = std::fs::remove_file(path);
        return Err(BootstrapError::Write { file, source });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;

    #[test]
    fn pem_round_trips() {
        for der in [
            vec![],
            vec![1u8],
            vec![1, 2],
            vec![1, 2, 3],
            (0..=255u8).collect(),
        ] {
            let text = pem(&der);
            if der.is_empty() {
                continue;
            }
            let back = CertificateDer::from_pem_slice(text.as_bytes()).unwrap();
            assert_eq!(back.as_ref(), der.as_slice());
            assert!(text
                .lines()
                .all(|l| l.len() <= 64 || l.starts_with("-----")));
        }
    }

    #[test]
    fn nothing_to_save_without_a_self_signed_top() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        assert!(matches!(
            save_peer_ca(&[], &path),
            Err(BootstrapError::NoCertificate)
        ));
        let junk = CertificateDer::from(vec![1u8, 2, 3]);
        assert!(matches!(
            save_peer_ca(&[junk], &path),
            Err(BootstrapError::NotSelfSigned { only_one: true })
        ));
        assert!(!path.exists());
    }
}
