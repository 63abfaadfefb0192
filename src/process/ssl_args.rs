//! ovsdb-server's SSL options (ovsdb-server(1), "Public Key Infrastructure
//! Options"): each a file name or value, or `db:DB,TABLE,COLUMN` to read it
//! from the database, as ovn-ctl passes them.

use crate::remote::tls::TlsSettings;
use crate::remote::tls_policy::PolicyError;

/// The SSL options.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SslArgs {
    /// PEM private key of the server's certificate, for pssl:/ssl: remotes
    /// (or db:DB,TABLE,COLUMN).
    #[arg(short = 'p', long = "private-key", value_name = "FILE")]
    pub private_key: Option<String>,
    /// PEM certificate presented to peers (or db:DB,TABLE,COLUMN).
    #[arg(short = 'c', long = "certificate", value_name = "FILE")]
    pub certificate: Option<String>,
    /// PEM CA certificate that peers' certificates must be signed by; none
    /// disables verification (or db:DB,TABLE,COLUMN).
    #[arg(short = 'C', long = "ca-cert", value_name = "FILE")]
    pub ca_cert: Option<String>,
    /// As --ca-cert, but the file may not exist yet.
    #[arg(
        long = "bootstrap-ca-cert",
        value_name = "FILE",
        conflicts_with = "ca_cert"
    )]
    pub bootstrap_ca_cert: Option<String>,
    /// TLS versions to allow: TLSv1.2, TLSv1.3, a list, X-Y or X+ (or db:DB,TABLE,COLUMN).
    #[arg(long = "ssl-protocols", value_name = "PROTOCOLS")]
    pub ssl_protocols: Option<String>,
    /// TLSv1.2 ciphers in OpenSSL notation (default HIGH:!aNULL:!MD5; or db:DB,TABLE,COLUMN).
    #[arg(long = "ssl-ciphers", value_name = "CIPHERS")]
    pub ssl_ciphers: Option<String>,
    /// TLSv1.3 cipher suites, colon-separated OpenSSL names such as
    /// TLS_AES_256_GCM_SHA384 (newer ovsdb-server's option; or db:DB,TABLE,COLUMN).
    #[arg(long = "ssl-ciphersuites", value_name = "SUITES")]
    pub ssl_ciphersuites: Option<String>,
}

impl SslArgs {
    /// The settings, with literal protocols and ciphers checked (a value
    /// oxsdb cannot honour stops the start with a message naming it).
    pub fn settings(&self) -> Result<TlsSettings, PolicyError> {
        let s = TlsSettings {
            private_key: self.private_key.clone(),
            certificate: self.certificate.clone(),
            ca_cert: self
                .bootstrap_ca_cert
                .clone()
                .or_else(|| self.ca_cert.clone()),
            bootstrap: self.bootstrap_ca_cert.is_some(),
            ssl_protocols: self.ssl_protocols.clone(),
            ssl_ciphers: self.ssl_ciphers.clone(),
            ssl_ciphersuites: self.ssl_ciphersuites.clone(),
        };
        s.check()?;
        Ok(s)
    }
}
