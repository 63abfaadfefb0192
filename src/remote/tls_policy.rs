//! `--ssl-protocols` and `--ssl-ciphers` (OpenSSL notation, as
//! lib/stream-ssl.c takes them) mapped onto what rustls offers: TLSv1.2
//! and TLSv1.3, and rustls's TLSv1.2 cipher suites. A value naming a
//! protocol or cipher rustls cannot honour is an error naming it, never
//! silently a weaker or different setting.

use rustls::crypto::CryptoProvider;
use rustls::{CipherSuite, SupportedCipherSuite, SupportedProtocolVersion};

/// ovsdb-server's default `--ssl-ciphers`.
pub const DEFAULT_CIPHERS: &str = "HIGH:!aNULL:!MD5";

/// A protocol or cipher setting oxsdb cannot honour.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    /// A protocol name outside TLSv1.2 and TLSv1.3.
    #[error("--ssl-protocols={value}: {word}: SSL/TLS protocol not recognized (oxsdb serves TLSv1.2 and TLSv1.3: give e.g. \"TLSv1.2,TLSv1.3\" or \"TLSv1.2+\")")]
    Protocol {
        /// The whole setting.
        value: String,
        /// The word not recognized.
        word: String,
    },
    /// An empty protocol list.
    #[error(
        "--ssl-protocols={0}: SSL/TLS protocol settings invalid: give e.g. \"TLSv1.2,TLSv1.3\""
    )]
    NoProtocol(String),
    /// A cipher or cipher class rustls has no counterpart of.
    #[error("--ssl-ciphers={value}: {word}: cipher not supported by oxsdb's TLS (rustls); use OpenSSL classes such as HIGH or ECDHE, or the names of {supported}")]
    Cipher {
        /// The whole setting.
        value: String,
        /// The word not supported.
        word: String,
        /// The cipher names oxsdb knows.
        supported: String,
    },
    /// A TLSv1.3 cipher suite rustls does not have.
    #[error("--ssl-ciphersuites={value}: {word}: TLSv1.3 cipher suite not supported by oxsdb's TLS (rustls); use {supported}")]
    Suite {
        /// The whole setting.
        value: String,
        /// The word not supported.
        word: String,
        /// The suite names oxsdb knows.
        supported: String,
    },
    /// Every TLSv1.2 cipher excluded while only TLSv1.2 is enabled.
    #[error("--ssl-ciphers={0}: no TLSv1.2 cipher is left and TLSv1.3 is not enabled: allow at least one cipher (e.g. HIGH)")]
    NoCipher(String),
}

const PROTOCOLS: [(&str, &SupportedProtocolVersion); 2] = [
    ("TLSv1.2", &rustls::version::TLS12),
    ("TLSv1.3", &rustls::version::TLS13),
];

/// The protocol versions an `--ssl-protocols` value enables (stream-ssl.c's
/// forms: a list, `X-Y`, or `X+`); `None` enables both.
pub fn protocols(
    value: Option<&str>,
) -> Result<Vec<&'static SupportedProtocolVersion>, PolicyError> {
    let Some(value) = value else {
        return Ok(PROTOCOLS.iter().map(|(_, v)| *v).collect());
    };
    let index = |w: &str| {
        PROTOCOLS
            .iter()
            .position(|(n, _)| *n == w)
            .ok_or_else(|| PolicyError::Protocol {
                value: value.to_string(),
                word: w.to_string(),
            })
    };
    let (lo, hi) = if let Some(v) = value.strip_suffix('+') {
        (index(v)?, PROTOCOLS.len() - 1)
    } else if let Some((a, b)) = value.split_once('-') {
        let (a, b) = (index(a)?, index(b)?);
        (a.min(b), a.max(b))
    } else {
        let words: Vec<&str> = value
            .split([' ', ',', '\t'])
            .filter(|w| !w.is_empty())
            .collect();
        if words.is_empty() {
            return Err(PolicyError::NoProtocol(value.to_string()));
        }
        let ix = words
            .iter()
            .map(|w| index(w))
            .collect::<Result<Vec<_>, _>>()?;
        // OpenSSL sets a range: the versions between are enabled too.
        (
            ix.iter().copied().min().unwrap_or(0),
            ix.iter().copied().max().unwrap_or(0),
        )
    };
    Ok(PROTOCOLS[lo..=hi].iter().map(|(_, v)| *v).collect())
}

/// OpenSSL's name of a rustls TLSv1.2 suite and the classes it belongs to.
fn openssl_name(s: CipherSuite) -> Option<(&'static str, &'static [&'static str])> {
    use CipherSuite::*;
    const ECDSA: &[&str] = &[
        "HIGH", "ALL", "DEFAULT", "ECDHE", "EECDH", "kECDHE", "kEECDH", "aECDSA", "ECDSA", "AEAD",
        "TLSv1.2",
    ];
    const RSA: &[&str] = &[
        "HIGH", "ALL", "DEFAULT", "ECDHE", "EECDH", "kECDHE", "kEECDH", "aRSA", "AEAD", "TLSv1.2",
    ];
    Some(match s {
        TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => ("ECDHE-ECDSA-AES256-GCM-SHA384", ECDSA),
        TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => ("ECDHE-ECDSA-AES128-GCM-SHA256", ECDSA),
        TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => ("ECDHE-ECDSA-CHACHA20-POLY1305", ECDSA),
        TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => ("ECDHE-RSA-AES256-GCM-SHA384", RSA),
        TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => ("ECDHE-RSA-AES128-GCM-SHA256", RSA),
        TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => ("ECDHE-RSA-CHACHA20-POLY1305", RSA),
        _ => return None,
    })
}

/// Whether a suite is in an OpenSSL class or has that name.
fn matches(s: CipherSuite, word: &str) -> bool {
    let Some((name, classes)) = openssl_name(s) else {
        return false;
    };
    let extra: &[&str] = if name.contains("AES256") {
        &["AES", "AESGCM", "AES256", "AESGCM256", "SHA384"]
    } else if name.contains("AES128") {
        &["AES", "AESGCM", "AES128", "AESGCM128", "SHA256"]
    } else {
        &["CHACHA20", "CHACHA20POLY1305"]
    };
    name == word || format!("{s:?}") == word || classes.contains(&word) || extra.contains(&word)
}

/// OpenSSL classes that hold no suite rustls has: excluding or adding
/// them changes nothing.
const EMPTY_CLASSES: &[&str] = &[
    "aNULL", "eNULL", "NULL", "MD5", "RC4", "DES", "3DES", "EXP", "EXPORT", "LOW", "MEDIUM", "PSK",
    "aPSK", "kPSK", "RSAPSK", "DHEPSK", "ECDHEPSK", "SRP", "kSRP", "DSS", "aDSS", "kRSA",
    "CAMELLIA", "SEED", "IDEA", "ARIA", "CCM", "CCM8", "ADH", "AECDH", "kDHE", "DHE", "EDH",
    "kEDH", "SHA1", "SHA", "RC2", "GOST", "aGOST", "SSLv3", "TLSv1", "CBC",
];

/// The TLSv1.2 suites of `provider` that an `--ssl-ciphers` value
/// selects, in the provider's order (TLSv1.3 suites are not governed by
/// it, as with OpenSSL's cipher list).
pub fn tls12_suites(
    value: Option<&str>,
    provider: &CryptoProvider,
) -> Result<Vec<SupportedCipherSuite>, PolicyError> {
    let value = value.unwrap_or(DEFAULT_CIPHERS);
    let all: Vec<SupportedCipherSuite> = provider
        .cipher_suites
        .iter()
        .copied()
        .filter(|s| s.version() == &rustls::version::TLS12)
        .collect();
    let unsupported = |word: &str| PolicyError::Cipher {
        value: value.to_string(),
        word: word.to_string(),
        supported: all
            .iter()
            .filter_map(|s| openssl_name(s.suite()).map(|(n, _)| n))
            .collect::<Vec<_>>()
            .join(", "),
    };
    let mut chosen: Vec<bool> = vec![false; all.len()];
    let mut banned: Vec<bool> = vec![false; all.len()];
    for token in value.split([':', ',', ' ']).filter(|t| !t.is_empty()) {
        if token.starts_with('@') {
            // @STRENGTH, @SECLEVEL=n: orderings and levels rustls's suites all meet.
            continue;
        }
        let (op, body) = match token.as_bytes()[0] {
            b'!' | b'-' | b'+' => (token.as_bytes()[0], &token[1..]),
            _ => (b' ', token),
        };
        let mut selected: Vec<bool> = vec![true; all.len()];
        for word in body.split('+') {
            let hits: Vec<bool> = all.iter().map(|s| matches(s.suite(), word)).collect();
            if !hits.iter().any(|h| *h) && !EMPTY_CLASSES.contains(&word) {
                return Err(unsupported(word));
            }
            for (sel, hit) in selected.iter_mut().zip(hits) {
                *sel &= hit;
            }
        }
        for i in 0..all.len() {
            if !selected[i] {
                continue;
            }
            match op {
                b'!' => banned[i] = true,
                b'-' => chosen[i] = false,
                b'+' => {}
                _ => chosen[i] = true,
            }
        }
    }
    Ok(all
        .into_iter()
        .enumerate()
        .filter(|(i, _)| chosen[*i] && !banned[*i])
        .map(|(_, s)| s)
        .collect())
}

/// The TLSv1.3 suites of `provider` an `--ssl-ciphersuites` value names
/// (OpenSSL's colon-separated list of IANA names; `None`: all).
pub fn tls13_suites(
    value: Option<&str>,
    provider: &CryptoProvider,
) -> Result<Vec<SupportedCipherSuite>, PolicyError> {
    let all: Vec<SupportedCipherSuite> = provider
        .cipher_suites
        .iter()
        .copied()
        .filter(|s| s.version() == &rustls::version::TLS13)
        .collect();
    let Some(value) = value else { return Ok(all) };
    // OpenSSL's names: rustls's without its "13".
    let name = |s: &SupportedCipherSuite| format!("{:?}", s.suite()).replacen("TLS13_", "TLS_", 1);
    let mut chosen = Vec::new();
    for word in value.split(':').filter(|w| !w.is_empty()) {
        match all.iter().find(|s| name(s) == word) {
            Some(s) => chosen.push(*s),
            None => {
                return Err(PolicyError::Suite {
                    value: value.to_string(),
                    word: word.to_string(),
                    supported: all.iter().map(name).collect::<Vec<_>>().join(", "),
                })
            }
        }
    }
    Ok(chosen)
}

/// The provider with the cipher suites the settings allow.
pub fn provider(
    protocols_value: Option<&str>,
    ciphers_value: Option<&str>,
) -> Result<(CryptoProvider, Vec<&'static SupportedProtocolVersion>), PolicyError> {
    provider_with_suites(protocols_value, ciphers_value, None)
}

/// [`provider`] with `--ssl-ciphersuites` (TLSv1.3) too.
pub fn provider_with_suites(
    protocols_value: Option<&str>,
    ciphers_value: Option<&str>,
    suites_value: Option<&str>,
) -> Result<(CryptoProvider, Vec<&'static SupportedProtocolVersion>), PolicyError> {
    let mut versions = protocols(protocols_value)?;
    let mut p = rustls::crypto::ring::default_provider();
    let tls12 = tls12_suites(ciphers_value, &p)?;
    let tls13 = tls13_suites(suites_value, &p)?;
    // An empty TLSv1.3 list disables TLSv1.3, as with OpenSSL.
    if tls13.is_empty() {
        versions.retain(|v| *v != &rustls::version::TLS13);
    }
    let with13 = versions.contains(&&rustls::version::TLS13);
    let with12 = versions.contains(&&rustls::version::TLS12);
    if with12 && !with13 && tls12.is_empty() {
        return Err(PolicyError::NoCipher(
            ciphers_value.unwrap_or(DEFAULT_CIPHERS).to_string(),
        ));
    }
    if versions.is_empty() {
        return Err(PolicyError::NoCipher(
            ciphers_value.unwrap_or(DEFAULT_CIPHERS).to_string(),
        ));
    }
    p.cipher_suites.retain(|s| {
        (with13 && tls13.iter().any(|t| t.suite() == s.suite()))
            || (with12 && tls12.iter().any(|t| t.suite() == s.suite()))
    });
    Ok((p, versions))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_forms() {
        assert_eq!(protocols(None).unwrap().len(), 2);
        assert_eq!(protocols(Some("TLSv1.2,TLSv1.3")).unwrap().len(), 2);
        assert_eq!(
            protocols(Some("TLSv1.3")).unwrap(),
            vec![&rustls::version::TLS13]
        );
        assert_eq!(protocols(Some("TLSv1.2+")).unwrap().len(), 2);
        assert_eq!(protocols(Some("TLSv1.2-TLSv1.3")).unwrap().len(), 2);
        let e = protocols(Some("TLSv1,TLSv1.2")).unwrap_err().to_string();
        assert!(e.contains("TLSv1: SSL/TLS protocol not recognized"), "{e}");
        assert!(protocols(Some(" ")).is_err());
    }

    #[test]
    fn cipher_lists() {
        let p = rustls::crypto::ring::default_provider();
        assert_eq!(tls12_suites(None, &p).unwrap().len(), 6);
        let rsa = tls12_suites(Some("ECDHE-RSA-AES128-GCM-SHA256"), &p).unwrap();
        assert_eq!(rsa.len(), 1);
        assert_eq!(tls12_suites(Some("HIGH:!aRSA"), &p).unwrap().len(), 3);
        assert_eq!(
            tls12_suites(Some("ECDHE+AESGCM:!aNULL"), &p).unwrap().len(),
            4
        );
        let e = tls12_suites(Some("HIGH:AES128-SHA"), &p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("AES128-SHA: cipher not supported"), "{e}");
        assert!(provider(Some("TLSv1.2"), Some("!HIGH")).is_err());
        let (pr, v) = provider(Some("TLSv1.3"), Some("!HIGH")).unwrap();
        assert_eq!(v.len(), 1);
        assert!(pr
            .cipher_suites
            .iter()
            .all(|s| s.version() == &rustls::version::TLS13));
    }
}
