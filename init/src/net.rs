//! Network interfaces: which are wired NICs, bringing them up, IPv4 addresses and routes.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};

use crate::sys;

/// Wired Ethernet NICs in /sys/class/net: a real device behind them, not wireless, not loopback.
pub fn wired_nics() -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/sys/class/net") else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if is_wired(&e.path()) {
            out.push(name);
        }
    }
    out.sort();
    out
}

/// True for an Ethernet interface backed by hardware (virtio counts) that is not Wi-Fi.
pub fn is_wired(sys: &Path) -> bool {
    let ether = std::fs::read_to_string(sys.join("type")).is_ok_and(|t| t.trim() == "1");
    ether
        && sys.join("device").exists()
        && !sys.join("wireless").exists()
        && !sys.join("phy80211").exists()
}

/// The NIC's MAC address from sysfs.
pub fn mac(ifname: &str) -> Option<[u8; 6]> {
    let s = std::fs::read_to_string(format!("/sys/class/net/{ifname}/address")).ok()?;
    let mut mac = [0u8; 6];
    let mut parts = s.trim().split(':');
    for b in mac.iter_mut() {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    Some(mac)
}

fn ctl_socket() -> io::Result<OwnedFd> {
    socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(io::Error::from)
}

fn ifreq(ifname: &str) -> io::Result<libc::ifreq> {
    let bytes = ifname.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad interface name {ifname:?}"),
        ));
    }
    let mut req = sys::zeroed_ifreq();
    for (d, s) in req.ifr_name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    Ok(req)
}

fn sockaddr(addr: Ipv4Addr) -> libc::sockaddr {
    // sockaddr_in laid out inside a generic sockaddr: family, port (0), then the address.
    let mut sa = libc::sockaddr {
        sa_family: libc::AF_INET as libc::sa_family_t,
        sa_data: [0; 14],
    };
    for (d, s) in sa.sa_data[2..6].iter_mut().zip(addr.octets()) {
        *d = s as libc::c_char;
    }
    sa
}

/// Sets IFF_UP on an interface.
pub fn up(ifname: &str) -> io::Result<()> {
    let fd = ctl_socket()?;
    let mut req = ifreq(ifname)?;
    sys::ifreq_ioctl(fd.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req)?;
    let flags = sys::ifreq_flags(&req);
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    sys::ifreq_ioctl(fd.as_raw_fd(), libc::SIOCSIFFLAGS, &mut req)
}

/// Gives an interface its IPv4 address and netmask (replacing the previous primary address).
pub fn set_address(ifname: &str, addr: Ipv4Addr, mask: Ipv4Addr) -> io::Result<()> {
    let fd = ctl_socket()?;
    let mut req = ifreq(ifname)?;
    req.ifr_ifru.ifru_addr = sockaddr(addr);
    sys::ifreq_ioctl(fd.as_raw_fd(), libc::SIOCSIFADDR, &mut req)?;
    let mut req = ifreq(ifname)?;
    req.ifr_ifru.ifru_netmask = sockaddr(mask);
    sys::ifreq_ioctl(fd.as_raw_fd(), libc::SIOCSIFNETMASK, &mut req)
}

/// Adds a default route through `gateway` on `ifname`. An existing one is fine.
pub fn default_route(ifname: &str, gateway: Ipv4Addr) -> io::Result<()> {
    let fd = ctl_socket()?;
    let dev = std::ffi::CString::new(ifname)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface name has a NUL"))?;
    let mut rt = sys::zeroed_rtentry();
    rt.rt_dst = sockaddr(Ipv4Addr::UNSPECIFIED);
    rt.rt_genmask = sockaddr(Ipv4Addr::UNSPECIFIED);
    rt.rt_gateway = sockaddr(gateway);
    rt.rt_flags = libc::RTF_UP | libc::RTF_GATEWAY;
    rt.rt_dev = dev.as_ptr() as *mut libc::c_char;
    match sys::add_route(fd.as_raw_fd(), &mut rt) {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
        other => other,
    }
}

/// Prefix length of a netmask (255.255.255.0 -> 24).
pub fn prefix_len(mask: Ipv4Addr) -> u32 {
    u32::from(mask).leading_ones()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_not_wired() {
        assert!(!is_wired(Path::new("/sys/class/net/lo")));
        assert_eq!(prefix_len(Ipv4Addr::new(255, 255, 255, 0)), 24);
    }

    #[test]
    fn loopback_comes_up() {
        // Idempotent on a running system: lo is up already, setting IFF_UP again is harmless.
        up("lo").expect("lo up");
        assert!(up("no-such-nic0").is_err());
    }
}
