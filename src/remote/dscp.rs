//! DSCP marking of a remote's TCP traffic: a Connection row's
//! `other_config:dscp` (ovsdb-server's add_remote) set as the sockets'
//! IP TOS / IPv6 traffic class (lib/socket-util.c's set_dscp).

use std::os::fd::{AsRawFd, BorrowedFd};

/// The DSCP of a row without a valid `other_config:dscp`
/// (IPTOS_PREC_INTERNETCONTROL >> 2).
pub const DSCP_DEFAULT: u8 = 48;

/// The DSCP a row's `other_config:dscp` value asks for: read as C's
/// `atoi` reads it, used when in 0..=63, [`DSCP_DEFAULT`] otherwise.
pub fn parse(value: Option<&str>) -> u8 {
    let Some(v) = value else {
        return DSCP_DEFAULT;
    };
    let v = v.trim_start();
    let (neg, digits) = match v.as_bytes().first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, v),
    };
    let n = digits
        .bytes()
        .take_while(u8::is_ascii_digit)
        .try_fold(0i64, |n, d| {
            n.checked_mul(10)?.checked_add(i64::from(d - b'0'))
        });
    match n.map(|n| if neg { -n } else { n }) {
        Some(n @ 0..=63) => u8::try_from(n).unwrap_or(DSCP_DEFAULT),
        _ => DSCP_DEFAULT,
    }
}

/// Marks the socket's outgoing packets with `dscp`.
pub fn set_dscp(fd: BorrowedFd<'_>, v6: bool, dscp: u8) -> std::io::Result<()> {
    let tos: libc::c_int = libc::c_int::from(dscp) << 2;
    let (level, name) = if v6 {
        (libc::IPPROTO_IPV6, libc::IPV6_TCLASS)
    } else {
        (libc::IPPROTO_IP, libc::IP_TOS)
    };
    // SAFETY: a valid descriptor borrowed for the call, and a pointer to
    // an int that lives through it with its size.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&tos as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn values_read_as_atoi_reads_them() {
        assert_eq!(parse(None), DSCP_DEFAULT);
        assert_eq!(parse(Some("10")), 10);
        assert_eq!(parse(Some(" 63x")), 63);
        assert_eq!(parse(Some("abc")), 0);
        assert_eq!(parse(Some("64")), DSCP_DEFAULT);
        assert_eq!(parse(Some("-1")), DSCP_DEFAULT);
    }

    #[test]
    fn marks_a_socket() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        set_dscp(l.as_fd(), false, 10).unwrap();
        let mut tos: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        let r = unsafe {
            libc::getsockopt(
                l.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_TOS,
                (&mut tos as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!((r, tos), (0, 40));
    }
}
