//! Kernel uevents (hotplug): a netlink socket and the parser for its messages.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, socket,
};

/// One kernel uevent, reduced to the fields PID 1 acts on.
#[derive(Debug, Default, PartialEq)]
pub struct Event {
    pub action: String,
    pub subsystem: String,
    pub modalias: Option<String>,
    /// Network interface name, for `net` events.
    pub interface: Option<String>,
    /// Block device name, for `block` events.
    pub devname: Option<String>,
}

/// Parses `add@/devices/...\0ACTION=add\0SUBSYSTEM=...\0...`; None for other netlink traffic.
pub fn parse(msg: &[u8]) -> Option<Event> {
    let mut fields = msg.split(|&b| b == 0);
    let header = std::str::from_utf8(fields.next()?).ok()?;
    header.split_once('@')?;
    let mut ev = Event::default();
    for f in fields {
        let Ok(f) = std::str::from_utf8(f) else {
            continue;
        };
        let Some((k, v)) = f.split_once('=') else {
            continue;
        };
        match k {
            "ACTION" => ev.action = v.to_string(),
            "SUBSYSTEM" => ev.subsystem = v.to_string(),
            "MODALIAS" => ev.modalias = Some(v.to_string()),
            "INTERFACE" => ev.interface = Some(v.to_string()),
            "DEVNAME" => ev.devname = Some(v.to_string()),
            _ => {}
        }
    }
    Some(ev)
}

/// A socket subscribed to the kernel's uevent multicast group.
pub struct Listener(OwnedFd);

impl Listener {
    /// Opens the socket. Open it before the coldplug walk so no device falls between the two.
    pub fn open() -> nix::Result<Listener> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkKObjectUEvent,
        )?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 1))?;
        Ok(Listener(fd))
    }

    /// Blocks for the next kernel uevent.
    pub fn next(&self) -> nix::Result<Event> {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = recv(self.0.as_raw_fd(), &mut buf, MsgFlags::empty())?;
            if let Some(ev) = parse(&buf[..n]) {
                return Ok(ev);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kernel_message() {
        let msg =
            b"add@/devices/pci0000:00/0000:00:04.0/usb1/1-1\0ACTION=add\0DEVPATH=/devices/x\0\
SUBSYSTEM=usb\0MODALIAS=usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00\0SEQNUM=1500\0";
        let ev = parse(msg).expect("a uevent");
        assert_eq!(ev.action, "add");
        assert_eq!(ev.subsystem, "usb");
        assert_eq!(
            ev.modalias.as_deref(),
            Some("usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00")
        );
        let net =
            parse(b"add@/devices/virtual/net/eth0\0ACTION=add\0SUBSYSTEM=net\0INTERFACE=eth0\0")
                .expect("a uevent");
        assert_eq!(net.interface.as_deref(), Some("eth0"));
        // udev's own re-broadcasts start with "libudev": not for us.
        assert_eq!(parse(b"libudev\0\xfe\xed"), None);
    }
}
