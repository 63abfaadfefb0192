//! TLS for `pssl:` and `ssl:` remotes with rustls: the settings as given
//! (`--private-key`, `--certificate`, `--ca-cert`, `--bootstrap-ca-cert`,
//! `--ssl-protocols`, `--ssl-ciphers`, each a file name/value or a `db:`
//! column), and the configurations built from them, rebuilt when a file
//! changes or a `db:` setting resolves to something new, as ovsdb-server
//! re-reads them (lib/stream-ssl.c).
//!
//! As in ovsdb-server, a server requires a client certificate signed by the
//! CA (`--ca-cert=none` turns verification off), and a client (an active
//! `ssl:` remote) verifies the server's chain but not its name.

use crate::remote::peer_name::common_name;
use crate::remote::tls_policy::{self, PolicyError};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// The TLS settings as given on the command line: each a literal value or
/// `db:DB,TABLE,COLUMN` (resolved by the remotes actor).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// `--private-key`.
    pub private_key: Option<String>,
    /// `--certificate`.
    pub certificate: Option<String>,
    /// `--ca-cert` or `--bootstrap-ca-cert`.
    pub ca_cert: Option<String>,
    /// Whether the CA came from `--bootstrap-ca-cert`: a missing file is not an error.
    pub bootstrap: bool,
    /// `--ssl-protocols`.
    pub ssl_protocols: Option<String>,
    /// `--ssl-ciphers`.
    pub ssl_ciphers: Option<String>,
    /// `--ssl-ciphersuites` (TLSv1.3).
    pub ssl_ciphersuites: Option<String>,
}

impl TlsSettings {
    /// The settings that are `db:` columns: (option name, value).
    pub fn db_settings(&self) -> Vec<(&'static str, &str)> {
        self.named()
            .into_iter()
            .filter_map(|(n, v)| v.filter(|v| v.starts_with("db:")).map(|v| (n, v)))
            .collect()
    }

    fn named(&self) -> [(&'static str, Option<&str>); 6] {
        [
            ("ssl-ciphersuites", self.ssl_ciphersuites.as_deref()),
            ("private-key", self.private_key.as_deref()),
            ("certificate", self.certificate.as_deref()),
            ("ca-cert", self.ca_cert.as_deref()),
            ("ssl-protocols", self.ssl_protocols.as_deref()),
            ("ssl-ciphers", self.ssl_ciphers.as_deref()),
        ]
    }

    /// Checks the literal protocol and cipher settings, so that a value
    /// oxsdb cannot honour stops the start with a message naming it.
    pub fn check(&self) -> Result<(), PolicyError> {
        let literal = |v: &Option<String>| v.clone().filter(|v| !v.starts_with("db:"));
        tls_policy::provider_with_suites(
            literal(&self.ssl_protocols).as_deref(),
            literal(&self.ssl_ciphers).as_deref(),
            literal(&self.ssl_ciphersuites).as_deref(),
        )
        .map(|_| ())
    }
}

/// The settings with every `db:` column resolved to its current value
/// (`None`: not set, or the column holds no non-empty string).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// Private key file.
    pub private_key: Option<String>,
    /// Certificate file.
    pub certificate: Option<String>,
    /// CA certificate file, or `none`.
    pub ca_cert: Option<String>,
    /// Protocols.
    pub ssl_protocols: Option<String>,
    /// Ciphers.
    pub ssl_ciphers: Option<String>,
    /// TLSv1.3 cipher suites.
    pub ssl_ciphersuites: Option<String>,
}

/// Why TLS connections cannot be made now.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TlsError {
    /// A file setting is missing.
    #[error("{0} must be configured to use SSL (give --{1})")]
    Missing(&'static str, &'static str),
    /// A file could not be read or holds nothing usable.
    #[error("--{option}={file}: {problem}")]
    File {
        /// The option.
        option: &'static str,
        /// The file.
        file: String,
        /// What is wrong.
        problem: String,
    },
    /// A protocol or cipher setting.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// rustls refused the combination (e.g. a key that is not the certificate's).
    #[error("cannot use the TLS key and certificate: {0} (check that --private-key matches --certificate)")]
    Rustls(String),
    /// The CA certificate to bootstrap does not exist yet.
    #[error("--bootstrap-ca-cert={0}: the CA certificate does not exist yet; a server cannot bootstrap it from its clients: put the CA certificate there")]
    Bootstrap(String),
}

/// The file's identity for change detection: modification time and size.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &str) -> Stamp {
    std::fs::metadata(path)
        .ok()
        .and_then(|m| Some((m.modified().ok()?, m.len())))
}

/// Built configurations for the current settings.
#[derive(Clone)]
struct Built {
    /// None while a CA to bootstrap is missing: a server cannot bootstrap it.
    server: Result<Arc<ServerConfig>, TlsError>,
    client: ClientTls,
}

/// What an `ssl:` remote connects with.
#[derive(Clone)]
pub struct ClientTls {
    /// The configuration.
    pub config: Arc<ClientConfig>,
    /// The CA file to bootstrap from the server's chain (`--bootstrap-ca-cert`
    /// naming a file that does not exist yet): the configuration then
    /// accepts any chain, and the connection must be dropped once the
    /// chain's top is saved (see [`crate::remote::ca_bootstrap`]).
    pub bootstrap_ca: Option<String>,
}

struct State {
    files: TlsFiles,
    bootstrap: bool,
    stamps: Vec<Stamp>,
    built: Option<Result<Built, TlsError>>,
}

/// The current TLS configurations, shared by every TLS listener and
/// connector, rebuilt when the files or resolved settings change.
pub struct TlsKeys {
    state: Mutex<State>,
}

impl TlsKeys {
    /// Keys for `files` (the literal settings; `db:` ones are set later
    /// with [`TlsKeys::set_files`]).
    pub fn new(files: TlsFiles, bootstrap: bool) -> Arc<TlsKeys> {
        Arc::new(TlsKeys {
            state: Mutex::new(State {
                files,
                bootstrap,
                stamps: Vec::new(),
                built: None,
            }),
        })
    }

    /// The literal settings of `s`, with `db:` ones unresolved (`None`).
    pub fn literal_files(s: &TlsSettings) -> TlsFiles {
        let lit = |v: &Option<String>| v.clone().filter(|v| !v.starts_with("db:"));
        TlsFiles {
            private_key: lit(&s.private_key),
            certificate: lit(&s.certificate),
            ca_cert: lit(&s.ca_cert),
            ssl_protocols: lit(&s.ssl_protocols),
            ssl_ciphers: lit(&s.ssl_ciphers),
            ssl_ciphersuites: lit(&s.ssl_ciphersuites),
        }
    }

    /// Replaces the resolved settings; the next connection uses them.
    pub fn set_files(&self, files: TlsFiles) {
        let mut st = self.lock();
        if st.files != files {
            st.files = files;
            st.built = None;
        }
    }

    /// The settings in force.
    pub fn files(&self) -> TlsFiles {
        self.lock().files.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves plain data behind: keep using it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn current(&self) -> Result<Built, TlsError> {
        let mut st = self.lock();
        let stamps: Vec<Stamp> = [
            &st.files.private_key,
            &st.files.certificate,
            &st.files.ca_cert,
        ]
        .into_iter()
        .map(|f| f.as_deref().and_then(stamp))
        .collect();
        let stale = st.stamps != stamps || st.built.is_none();
        if stale {
            let previous = st.built.take();
            let result = build(&st.files, st.bootstrap);
            match (&result, previous) {
                (Ok(_), Some(_)) => tracing::info!("TLS keys and certificates re-read"),
                (Err(e), Some(Ok(old))) => {
                    // As ovsdb-server, a bad new file leaves the old one in use.
                    tracing::error!("{e}; TLS keeps the previous keys");
                    st.stamps = stamps;
                    st.built = Some(Ok(old.clone()));
                    return Ok(old);
                }
                (Err(e), _) => tracing::error!("{e}"),
                _ => {}
            }
            st.stamps = stamps;
            st.built = Some(result);
        }
        st.built
            .clone()
            .unwrap_or(Err(TlsError::Missing("Private key", "private-key")))
    }

    /// The configuration a `pssl:` listener accepts with.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        self.current().and_then(|b| b.server)
    }

    /// The configuration an `ssl:` remote connects with.
    pub fn client_config(&self) -> Result<ClientTls, TlsError> {
        self.current().map(|b| b.client)
    }
}

fn read_chain(option: &'static str, file: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |problem: String| TlsError::File {
        option,
        file: file.to_string(),
        problem,
    };
    let certs = CertificateDer::pem_file_iter(file)
        .map_err(|e| err(format!("cannot read: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(err("holds no PEM certificate".into()));
    }
    Ok(certs)
}

fn read_key(file: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(file).map_err(|e| TlsError::File {
        option: "private-key",
        file: file.to_string(),
        problem: format!("cannot read a PEM private key: {e}"),
    })
}

/// How peers are verified.
enum Roots {
    /// Against the CA file's certificates.
    Store(Arc<RootCertStore>),
    /// Not at all (`--ca-cert=none`).
    None,
    /// Not yet: the CA file to bootstrap does not exist.
    Bootstrap(String),
}

/// How peers are verified with these settings.
fn roots(files: &TlsFiles, bootstrap: bool) -> Result<Roots, TlsError> {
    let Some(ca) = files.ca_cert.as_deref() else {
        return Err(TlsError::Missing("CA certificate", "ca-cert"));
    };
    if ca == "none" {
        return Ok(Roots::None);
    }
    if bootstrap && !Path::new(ca).exists() {
        return Ok(Roots::Bootstrap(ca.to_string()));
    }
    let mut store = RootCertStore::empty();
    for c in read_chain("ca-cert", ca)? {
        store.add(c).map_err(|e| TlsError::File {
            option: "ca-cert",
            file: ca.to_string(),
            problem: format!("not a usable CA certificate: {e}"),
        })?;
    }
    Ok(Roots::Store(Arc::new(store)))
}

fn build(files: &TlsFiles, bootstrap: bool) -> Result<Built, TlsError> {
    let key_file = files
        .private_key
        .as_deref()
        .ok_or(TlsError::Missing("Private key", "private-key"))?;
    let cert_file = files
        .certificate
        .as_deref()
        .ok_or(TlsError::Missing("Certificate", "certificate"))?;
    let (provider, versions) = tls_policy::provider_with_suites(
        files.ssl_protocols.as_deref(),
        files.ssl_ciphers.as_deref(),
        files.ssl_ciphersuites.as_deref(),
    )?;
    let provider = Arc::new(provider);
    let chain = read_chain("certificate", cert_file)?;
    let key = read_key(key_file)?;
    let roots = roots(files, bootstrap)?;
    let rustls_err = |e: rustls::Error| TlsError::Rustls(e.to_string());

    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(rustls_err)?;
    let server = match &roots {
        Roots::Store(r) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(r.clone(), provider.clone())
                .build()
                .map_err(|e| TlsError::Rustls(e.to_string()))?;
            Ok(server.with_client_cert_verifier(verifier))
        }
        Roots::None => Ok(server.with_no_client_auth()),
        Roots::Bootstrap(ca) => Err(TlsError::Bootstrap(ca.clone())),
    };
    let server = match server {
        Ok(s) => Ok(Arc::new(
            s.with_single_cert(chain.clone(), key.clone_key())
                .map_err(rustls_err)?,
        )),
        Err(e) => Err(e),
    };

    let verifier: Arc<dyn ServerCertVerifier> = match &roots {
        Roots::Store(r) => Arc::new(ChainOnly {
            inner: rustls::client::WebPkiServerVerifier::builder_with_provider(
                r.clone(),
                provider.clone(),
            )
            .build()
            .map_err(|e| TlsError::Rustls(e.to_string()))?,
        }),
        // Bootstrapping: the chain is taken on trust once, to be saved.
        Roots::None | Roots::Bootstrap(_) => Arc::new(AnyServer {
            provider: provider.clone(),
        }),
    };
    let client = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(rustls_err)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(chain, key)
        .map_err(rustls_err)?;
    Ok(Built {
        server,
        client: ClientTls {
            config: Arc::new(client),
            bootstrap_ca: match roots {
                Roots::Bootstrap(ca) => Some(ca),
                _ => None,
            },
        },
    })
}

/// The peer id of a TLS connection: its certificate's subject common name.
pub fn peer_id(certs: Option<&[CertificateDer<'_>]>) -> Option<Arc<str>> {
    certs
        .and_then(|c| c.first())
        .and_then(|c| common_name(c.as_ref()))
        .map(Arc::from)
}

/// Verifies the server's chain against the CA but not its name: Open
/// vSwitch's clients connect by address and check only the chain.
#[derive(Debug)]
struct ChainOnly {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        use rustls::{CertificateError, Error};
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `--ca-cert=none`: any server certificate, signatures still checked.
#[derive(Debug)]
struct AnyServer {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
