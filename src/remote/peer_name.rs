//! The common name of a certificate's subject: the peer id that
//! ovsdb-server takes from a client certificate (RBAC's "client id").

/// The first subject common name of a DER certificate, if it has one.
pub fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_string)
}
