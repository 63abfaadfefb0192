//! Remote strings in ovsdb-server's notation (ovsdb-server(1), "Remotes"),
//! parsed once into typed values: passive `ptcp:`/`pssl:`/`punix:`, active
//! `tcp:`/`ssl:`/`unix:`, and `db:DB,TABLE,COLUMN` remotes read from a
//! database.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

/// OVSDB's IANA port: the port of a remote that names none.
pub const OVSDB_PORT: u16 = 6640;

/// Where a database column holds remotes or a setting: `db:DB,TABLE,COLUMN`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DbColumn {
    /// The database.
    pub db: String,
    /// The table.
    pub table: String,
    /// The column.
    pub column: String,
}

impl fmt::Display for DbColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "db:{},{},{}", self.db, self.table, self.column)
    }
}

impl DbColumn {
    /// Parses `db:DB,TABLE,COLUMN` (`None` without the `db:` prefix).
    pub fn parse(s: &str) -> Option<Result<DbColumn, RemoteError>> {
        let rest = s.strip_prefix("db:")?;
        // Empty parts are skipped as strtok skips them in ovsdb-server.
        let parts: Vec<&str> = rest.split(',').filter(|p| !p.is_empty()).collect();
        Some(match parts.as_slice() {
            [db, table, column, ..] => Ok(DbColumn {
                db: db.to_string(),
                table: table.to_string(),
                column: column.to_string(),
            }),
            _ => Err(RemoteError::new(
                s,
                "invalid syntax: use db:DB,TABLE,COLUMN",
            )),
        })
    }
}

/// A host an active remote connects to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
    /// A name, resolved at each connection attempt.
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
            Host::Ip(a) => write!(f, "{a}"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

/// A remote: where oxsdb listens for clients or connects to one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Remote {
    /// `ptcp:[PORT][:IP]`: listen on TCP.
    Tcp(SocketAddr),
    /// `pssl:[PORT][:IP]`: listen on TCP with TLS.
    Ssl(SocketAddr),
    /// `punix:PATH`: listen on a Unix socket.
    Unix(PathBuf),
    /// `tcp:HOST[:PORT]`: connect out over TCP.
    ActiveTcp(Host, u16),
    /// `ssl:HOST[:PORT]`: connect out over TCP with TLS.
    ActiveSsl(Host, u16),
    /// `unix:PATH`: connect out to a Unix socket.
    ActiveUnix(PathBuf),
    /// `db:DB,TABLE,COLUMN`: the remotes a database column holds.
    Db(DbColumn),
}

/// A remote string oxsdb cannot use.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{remote}: {problem}")]
pub struct RemoteError {
    /// The remote as given.
    pub remote: String,
    /// What is wrong with it and what to write instead.
    pub problem: String,
}

impl RemoteError {
    fn new(remote: &str, problem: impl Into<String>) -> RemoteError {
        RemoteError {
            remote: remote.to_string(),
            problem: problem.into(),
        }
    }
}

const FORMS: &str = "use ptcp:[PORT][:IP], pssl:[PORT][:IP], punix:PATH, tcp:IP[:PORT], \
                     ssl:IP[:PORT], unix:PATH or db:DB,TABLE,COLUMN";

impl Remote {
    /// Whether oxsdb listens (passive) rather than connects out.
    pub fn is_passive(&self) -> bool {
        matches!(self, Remote::Tcp(_) | Remote::Ssl(_) | Remote::Unix(_))
    }

    /// Whether the connection is TLS.
    pub fn is_ssl(&self) -> bool {
        matches!(self, Remote::Ssl(_) | Remote::ActiveSsl(..))
    }

    /// Whether connections of this remote have an inactivity probe by
    /// default (ovsdb-server: none on Unix sockets).
    pub fn probes_by_default(&self) -> bool {
        !matches!(self, Remote::Unix(_) | Remote::ActiveUnix(_))
    }
}

impl fmt::Display for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let passive = |f: &mut fmt::Formatter<'_>, kind: &str, a: &SocketAddr| match a.ip() {
            IpAddr::V6(ip) => write!(f, "{kind}:{}:[{ip}]", a.port()),
            ip => write!(f, "{kind}:{}:{ip}", a.port()),
        };
        match self {
            Remote::Tcp(a) => passive(f, "ptcp", a),
            Remote::Ssl(a) => passive(f, "pssl", a),
            Remote::Unix(p) => write!(f, "punix:{}", p.display()),
            Remote::ActiveTcp(h, p) => write!(f, "tcp:{h}:{p}"),
            Remote::ActiveSsl(h, p) => write!(f, "ssl:{h}:{p}"),
            Remote::ActiveUnix(p) => write!(f, "unix:{}", p.display()),
            Remote::Db(c) => c.fmt(f),
        }
    }
}

/// Splits `[IPv6]` or `IP` off the front of `s`: (address text, rest after it).
fn split_host(s: &str) -> Result<(&str, &str), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let end = rest
            .find(']')
            .ok_or_else(|| "missing ']' after an IPv6 address".to_string())?;
        return Ok((&rest[..end], &rest[end + 1..]));
    }
    // A bare IPv6 address (several colons) has no port after it.
    if s.matches(':').count() > 1 {
        return Ok((s, ""));
    }
    Ok(match s.split_once(':') {
        Some((h, rest)) => (h, &s[h.len()..][..rest.len() + 1]),
        None => (s, ""),
    })
}

fn port(s: &str, remote: &str) -> Result<u16, RemoteError> {
    if s.is_empty() {
        return Ok(OVSDB_PORT);
    }
    s.parse()
        .map_err(|_| RemoteError::new(remote, format!("bad port {s:?}: give 0 to 65535")))
}

fn passive(rest: &str, remote: &str) -> Result<SocketAddr, RemoteError> {
    let (p, ip) = match rest.split_once(':') {
        Some((p, ip)) => (p, ip),
        None => (rest, ""),
    };
    let port = port(p, remote)?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = if ip.is_empty() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        ip.parse().map_err(|_| {
            RemoteError::new(
                remote,
                format!("bad IP address {ip:?}: give an IPv4 address or an IPv6 one in brackets, e.g. [::1]"),
            )
        })?
    };
    Ok(SocketAddr::new(ip, port))
}

fn active(rest: &str, remote: &str) -> Result<(Host, u16), RemoteError> {
    let (h, after) = split_host(rest).map_err(|e| RemoteError::new(remote, e))?;
    if h.is_empty() {
        return Err(RemoteError::new(remote, "no host: give IP:PORT"));
    }
    let port = match after.strip_prefix(':') {
        Some(p) => port(p, remote)?,
        None if after.is_empty() => OVSDB_PORT,
        None => {
            return Err(RemoteError::new(
                remote,
                format!("unexpected {after:?} after the host"),
            ))
        }
    };
    let host = match h.parse::<IpAddr>() {
        Ok(ip) => Host::Ip(ip),
        Err(_) if h.contains(':') => {
            return Err(RemoteError::new(remote, format!("bad IPv6 address {h:?}")))
        }
        Err(_) => Host::Name(h.to_string()),
    };
    Ok((host, port))
}

fn path(rest: &str, remote: &str) -> Result<PathBuf, RemoteError> {
    if rest.is_empty() {
        return Err(RemoteError::new(
            remote,
            "empty path: give the socket's file name",
        ));
    }
    Ok(PathBuf::from(rest))
}

impl std::str::FromStr for Remote {
    type Err = RemoteError;
    fn from_str(s: &str) -> Result<Remote, RemoteError> {
        let Some((kind, rest)) = s.split_once(':') else {
            return Err(RemoteError::new(s, format!("unknown remote: {FORMS}")));
        };
        match kind {
            "ptcp" => passive(rest, s).map(Remote::Tcp),
            "pssl" => passive(rest, s).map(Remote::Ssl),
            "punix" => path(rest, s).map(Remote::Unix),
            "tcp" => active(rest, s).map(|(h, p)| Remote::ActiveTcp(h, p)),
            "ssl" => active(rest, s).map(|(h, p)| Remote::ActiveSsl(h, p)),
            "unix" => path(rest, s).map(Remote::ActiveUnix),
            "db" => DbColumn::parse(s).unwrap_or_else(|| unreachable_db(s)).map(Remote::Db),
            "pfd" => Err(RemoteError::new(
                s,
                "pfd: remotes (a descriptor inherited from the starter) are not supported by oxsdb: use punix:PATH",
            )),
            _ => Err(RemoteError::new(s, format!("unknown remote type {kind:?}: {FORMS}"))),
        }
    }
}

fn unreachable_db(s: &str) -> Result<DbColumn, RemoteError> {
    Err(RemoteError::new(
        s,
        "invalid syntax: use db:DB,TABLE,COLUMN",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Remote {
        s.parse().unwrap()
    }

    #[test]
    fn passive_forms() {
        assert_eq!(p("ptcp:6641"), Remote::Tcp("0.0.0.0:6641".parse().unwrap()));
        assert_eq!(
            p("ptcp:0:127.0.0.1"),
            Remote::Tcp("127.0.0.1:0".parse().unwrap())
        );
        assert_eq!(
            p("pssl:6642:[::1]"),
            Remote::Ssl("[::1]:6642".parse().unwrap())
        );
        assert_eq!(
            p("pssl:6642:::1"),
            Remote::Ssl("[::1]:6642".parse().unwrap())
        );
        assert_eq!(p("ptcp:"), Remote::Tcp("0.0.0.0:6640".parse().unwrap()));
        assert_eq!(p("punix:/x/s.sock"), Remote::Unix("/x/s.sock".into()));
        assert_eq!(p("pssl:6642:[::1]").to_string(), "pssl:6642:[::1]");
    }

    #[test]
    fn active_forms() {
        let lo = Host::Ip("127.0.0.1".parse().unwrap());
        assert_eq!(p("tcp:127.0.0.1:6641"), Remote::ActiveTcp(lo.clone(), 6641));
        assert_eq!(p("ssl:127.0.0.1"), Remote::ActiveSsl(lo, 6640));
        let v6 = Host::Ip("::1".parse().unwrap());
        assert_eq!(p("ssl:[::1]:6642"), Remote::ActiveSsl(v6.clone(), 6642));
        assert_eq!(p("tcp:[::1]"), Remote::ActiveTcp(v6, 6640));
        assert_eq!(p("tcp:[::1]:7").to_string(), "tcp:[::1]:7");
        assert_eq!(
            p("tcp:db.example:6641"),
            Remote::ActiveTcp(Host::Name("db.example".into()), 6641)
        );
        assert_eq!(p("unix:/run/s"), Remote::ActiveUnix("/run/s".into()));
    }

    #[test]
    fn db_form() {
        assert_eq!(
            p("db:OVN_Northbound,NB_Global,connections"),
            Remote::Db(DbColumn {
                db: "OVN_Northbound".into(),
                table: "NB_Global".into(),
                column: "connections".into()
            })
        );
        let e = "db:OVN_Northbound,NB_Global".parse::<Remote>().unwrap_err();
        assert!(e.to_string().contains("invalid syntax"), "{e}");
    }

    #[test]
    fn errors_name_the_remote() {
        for bad in [
            "ptcp:x",
            "pssl:1:1.2.3",
            "tcp::5",
            "tcp:[::1",
            "punix:",
            "udp:1",
            "6640",
            "tcp:1.2.3.4:99999",
        ] {
            let e = bad.parse::<Remote>().unwrap_err();
            assert!(e.to_string().starts_with(bad), "{e}");
        }
    }
}
