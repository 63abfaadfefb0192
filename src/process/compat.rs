//! ovsdb-server options that ovn-ctl always passes but oxsdb does not
//! follow yet (SSL settings read from the database, issue 17): accepted
//! only in their `db:` form, which ovn-ctl passes when no SSL file is
//! configured, with a warning saying they are not followed. A file given
//! for SSL is refused, since the server would then silently serve plain
//! TCP where SSL was asked for.

/// The SSL options of ovsdb-server.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PendingSslArgs {
    /// ovsdb-server's SSL private key: only `db:DB,TABLE,COLUMN` (not followed yet).
    #[arg(long = "private-key", value_name = "db:DB,TABLE,COLUMN")]
    pub private_key: Option<String>,
    /// ovsdb-server's SSL certificate: only `db:...` (not followed yet).
    #[arg(long = "certificate", value_name = "db:DB,TABLE,COLUMN")]
    pub certificate: Option<String>,
    /// ovsdb-server's SSL CA certificate: only `db:...` (not followed yet).
    #[arg(long = "ca-cert", value_name = "db:DB,TABLE,COLUMN")]
    pub ca_cert: Option<String>,
    /// ovsdb-server's SSL protocols: only `db:...` (not followed yet).
    #[arg(long = "ssl-protocols", value_name = "db:DB,TABLE,COLUMN")]
    pub ssl_protocols: Option<String>,
    /// ovsdb-server's SSL ciphers: only `db:...` (not followed yet).
    #[arg(long = "ssl-ciphers", value_name = "db:DB,TABLE,COLUMN")]
    pub ssl_ciphers: Option<String>,
}

/// An SSL option with a value oxsdb cannot honour.
#[derive(Debug, thiserror::Error)]
#[error("--{option}={value}: oxsdb does not serve SSL yet; only the db: form (ovn-ctl's default, with no SSL configured) is accepted")]
pub struct SslUnsupported {
    /// The option.
    pub option: &'static str,
    /// Its value.
    pub value: String,
}

impl PendingSslArgs {
    /// The options given, each checked: `db:` values are returned (to be
    /// logged as not followed), anything else is an error.
    pub fn check(&self) -> Result<Vec<String>, SslUnsupported> {
        let mut given = Vec::new();
        for (option, v) in [
            ("private-key", &self.private_key),
            ("certificate", &self.certificate),
            ("ca-cert", &self.ca_cert),
            ("ssl-protocols", &self.ssl_protocols),
            ("ssl-ciphers", &self.ssl_ciphers),
        ] {
            if let Some(v) = v {
                if !v.starts_with("db:") {
                    return Err(SslUnsupported {
                        option,
                        value: v.clone(),
                    });
                }
                given.push(format!("--{option}={v}"));
            }
        }
        Ok(given)
    }
}

/// Logs that the `db:` remotes and SSL options given are not followed.
pub fn warn_not_followed(remotes: &[String], ssl: &[String]) {
    for r in remotes.iter().filter(|r| is_db_remote(r)) {
        tracing::warn!("--remote={r}: remotes read from the database are not followed yet; serving only the other remotes");
    }
    for o in ssl {
        tracing::warn!("{o}: SSL settings read from the database are not followed yet (oxsdb serves no SSL remote)");
    }
}

/// Whether a remote is a `db:DB,TABLE,COLUMN` remote (read from the
/// database; not followed yet).
pub fn is_db_remote(remote: &str) -> bool {
    remote.starts_with("db:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_db_forms_pass() {
        let a = PendingSslArgs {
            private_key: Some("db:OVN_Northbound,SSL,private_key".into()),
            ..PendingSslArgs::default()
        };
        assert_eq!(
            a.check().unwrap(),
            ["--private-key=db:OVN_Northbound,SSL,private_key"]
        );
        let a = PendingSslArgs {
            certificate: Some("/etc/cert.pem".into()),
            ..PendingSslArgs::default()
        };
        assert!(a
            .check()
            .unwrap_err()
            .to_string()
            .contains("--certificate=/etc/cert.pem"));
        assert!(is_db_remote("db:OVN_Northbound,NB_Global,connections"));
        assert!(!is_db_remote("ptcp:6641"));
    }
}
