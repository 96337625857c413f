//! A DHCPv4 client for one NIC: DISCOVER/OFFER/REQUEST/ACK, then renewal at half the lease.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Encodable};
use nix::sys::socket::{
    AddressFamily, SockFlag, SockType, SockaddrIn, bind, setsockopt, socket, sockopt,
};

/// Print every DHCP step on the console (`copyunit.debug` on the kernel command line).
pub static DEBUG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn debug_line(s: &str) {
    debug(|| s.to_string());
}

fn debug(what: impl FnOnce() -> String) {
    if DEBUG.load(std::sync::atomic::Ordering::Relaxed) {
        crate::say!("dhcp: {}", what());
    }
}

/// What the server granted.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    pub address: Ipv4Addr,
    pub netmask: Ipv4Addr,
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub lease: Duration,
}

/// A UDP socket on port 68 bound to one interface, allowed to broadcast before it has an address.
fn client_socket(ifname: &str) -> io::Result<UdpSocket> {
    let fd = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    setsockopt(&fd, sockopt::Broadcast, &true)?;
    setsockopt(
        &fd,
        sockopt::BindToDevice,
        &std::ffi::OsString::from(ifname),
    )?;
    bind(
        fd.as_raw_fd(),
        &SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68)),
    )?;
    let sock = UdpSocket::from(fd);
    sock.set_read_timeout(Some(Duration::from_millis(500)))?;
    Ok(sock)
}

/// An empty BOOTREQUEST decoded from its wire form: dhcproto's constructors draw a random
/// xid from the OS RNG, which blocks until the kernel's entropy pool is ready (seconds to
/// minutes on a VM without an RNG device), and DHCP must not wait for that.
fn blank(xid: u32, mac: &[u8; 6]) -> Message {
    let mut b = [0u8; 241];
    b[0] = 1; // BOOTREQUEST
    b[1] = 1; // Ethernet
    b[2] = 6; // MAC length
    b[4..8].copy_from_slice(&xid.to_be_bytes());
    b[28..34].copy_from_slice(mac);
    b[236..240].copy_from_slice(&[99, 130, 83, 99]); // DHCP magic cookie
    b[240] = 255; // end of options
    // Decoding this fixed, valid header cannot fail; the fallback only keeps PID 1 panic-free.
    Message::from_bytes(&b).unwrap_or_default()
}

/// A client message (DISCOVER or REQUEST) asking for broadcast replies.
pub fn request(
    kind: MessageType,
    xid: u32,
    mac: &[u8; 6],
    want: Option<(Ipv4Addr, Ipv4Addr)>,
    hostname: &str,
) -> Message {
    let mut m = blank(xid, mac);
    m.set_flags(Flags::default().set_broadcast());
    let opts = m.opts_mut();
    opts.insert(DhcpOption::MessageType(kind));
    let mut client_id = vec![1u8];
    client_id.extend_from_slice(mac);
    opts.insert(DhcpOption::ClientIdentifier(client_id));
    opts.insert(DhcpOption::ParameterRequestList(vec![
        OptionCode::SubnetMask,
        OptionCode::Router,
        OptionCode::DomainNameServer,
    ]));
    if !hostname.is_empty() {
        opts.insert(DhcpOption::Hostname(hostname.to_string()));
    }
    if let Some((addr, server)) = want {
        opts.insert(DhcpOption::RequestedIpAddress(addr));
        opts.insert(DhcpOption::ServerIdentifier(server));
    }
    m
}

/// Reads an OFFER or ACK for our transaction; (type, lease, server id).
pub fn reply(
    buf: &[u8],
    xid: u32,
    mac: &[u8; 6],
) -> Option<(MessageType, Lease, Option<Ipv4Addr>)> {
    let m = Message::from_bytes(buf).ok()?;
    if m.opcode() != Opcode::BootReply || m.xid() != xid || m.chaddr().get(..6) != Some(&mac[..]) {
        return None;
    }
    let opts = m.opts();
    let kind = opts.msg_type()?;
    let netmask = match opts.get(OptionCode::SubnetMask) {
        Some(DhcpOption::SubnetMask(m)) => *m,
        _ => Ipv4Addr::new(255, 255, 255, 0),
    };
    let router = match opts.get(OptionCode::Router) {
        Some(DhcpOption::Router(r)) => r.first().copied(),
        _ => None,
    };
    let dns = match opts.get(OptionCode::DomainNameServer) {
        Some(DhcpOption::DomainNameServer(d)) => d.clone(),
        _ => Vec::new(),
    };
    let secs = match opts.get(OptionCode::AddressLeaseTime) {
        Some(DhcpOption::AddressLeaseTime(s)) => *s,
        _ => 3600,
    };
    let server = match opts.get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(s)) => Some(*s),
        _ => None,
    };
    let lease = Lease {
        address: m.yiaddr(),
        netmask,
        router,
        dns,
        lease: Duration::from_secs(secs.into()),
    };
    Some((kind, lease, server))
}

fn xid(mac: &[u8; 6]) -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    t ^ u32::from_be_bytes([mac[2], mac[3], mac[4], mac[5]])
}

/// Sends `msg` and waits for a reply of the wanted kinds, retrying with back-off (1, 2, 4 s).
fn exchange(
    sock: &UdpSocket,
    msg: &Message,
    mac: &[u8; 6],
    want: &[MessageType],
) -> io::Result<(MessageType, Lease, Option<Ipv4Addr>)> {
    let bytes = msg.to_vec().map_err(|e| io::Error::other(e.to_string()))?;
    let dest = SocketAddrV4::new(Ipv4Addr::BROADCAST, 67);
    let mut buf = vec![0u8; 1500];
    for wait in [1u64, 2, 4] {
        debug(|| format!("sending {:?} xid {:x}", msg.opts().msg_type(), msg.xid()));
        sock.send_to(&bytes, dest)?;
        let deadline = Instant::now() + Duration::from_secs(wait);
        while Instant::now() < deadline {
            match sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    debug(|| format!("{n} bytes from {from}"));
                    if let Some(r) = reply(&buf[..n], msg.xid(), mac)
                        && want.contains(&r.0)
                    {
                        return Ok(r);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        "no answer from a DHCP server",
    ))
}

/// One full DISCOVER..ACK exchange on `ifname`.
pub fn acquire(ifname: &str, mac: &[u8; 6], hostname: &str) -> io::Result<Lease> {
    debug(|| format!("{ifname}: opening the client socket"));
    let sock = client_socket(ifname)?;
    let x = xid(mac);
    debug(|| format!("{ifname}: socket open, xid {x:x}"));
    let discover = request(MessageType::Discover, x, mac, None, hostname);
    let (_, offer, server) = exchange(&sock, &discover, mac, &[MessageType::Offer])?;
    let server =
        server.ok_or_else(|| io::Error::other("DHCP offer without a server identifier"))?;
    let req = request(
        MessageType::Request,
        x,
        mac,
        Some((offer.address, server)),
        hostname,
    );
    match exchange(&sock, &req, mac, &[MessageType::Ack, MessageType::Nak])? {
        (MessageType::Ack, lease, _) => Ok(lease),
        _ => Err(io::Error::other(format!(
            "the DHCP server refused {}",
            offer.address
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offer_round_trip() {
        let mac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
        let disc = request(MessageType::Discover, 7, &mac, None, "unit");
        let bytes = disc.to_vec().expect("encodes");
        // A server's answer built from the request, as slirp would send it.
        let mut offer = Message::from_bytes(&bytes).expect("decodes");
        offer.set_opcode(Opcode::BootReply);
        offer.set_yiaddr(Ipv4Addr::new(10, 0, 2, 15));
        let o = offer.opts_mut();
        o.insert(DhcpOption::MessageType(MessageType::Offer));
        o.insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)));
        o.insert(DhcpOption::Router(vec![Ipv4Addr::new(10, 0, 2, 2)]));
        o.insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 0, 2, 2)));
        o.insert(DhcpOption::AddressLeaseTime(86400));
        let wire = offer.to_vec().expect("encodes");
        let (kind, lease, server) = reply(&wire, 7, &mac).expect("our offer");
        assert_eq!(kind, MessageType::Offer);
        assert_eq!(lease.address, Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!(lease.router, Some(Ipv4Addr::new(10, 0, 2, 2)));
        assert_eq!(lease.lease, Duration::from_secs(86400));
        assert_eq!(server, Some(Ipv4Addr::new(10, 0, 2, 2)));
        // Another transaction's reply is not ours.
        assert!(reply(&wire, 8, &mac).is_none());
    }
}
