//! Kernel uevents for block devices, without udev.
//!
//! A `NETLINK_KOBJECT_UEVENT` socket (multicast group 1) receives the
//! kernel's add/remove/change messages. Card readers and optical drives only
//! report a media change when the kernel polls them, which
//! [`set_media_poll_interval`] turns on.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, socket,
};

/// What happened to a block device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Add,
    Remove,
    Change,
    Other,
}

/// One block-subsystem uevent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uevent {
    pub action: Action,
    /// Kernel name, e.g. `sdb`, `sdb1`, `loop3`.
    pub name: String,
    /// `disk` or `partition`.
    pub devtype: String,
    pub diskseq: Option<u64>,
    /// `DISK_MEDIA_CHANGE=1` from a polled card reader or optical drive.
    pub media_change: bool,
}

/// Parses one kernel uevent datagram (`action@devpath\0KEY=VALUE\0...`).
pub fn parse(msg: &[u8]) -> Option<Uevent> {
    let mut fields = msg.split(|b| *b == 0).filter(|f| !f.is_empty());
    let head = std::str::from_utf8(fields.next()?).ok()?;
    // udev re-broadcasts start with "libudev"; only the kernel's own are read.
    head.split_once('@')?;
    let mut ev = Uevent {
        action: Action::Other,
        name: String::new(),
        devtype: String::new(),
        diskseq: None,
        media_change: false,
    };
    let mut block = false;
    for f in fields {
        let Ok(f) = std::str::from_utf8(f) else {
            continue;
        };
        let Some((k, v)) = f.split_once('=') else {
            continue;
        };
        match k {
            "ACTION" => {
                ev.action = match v {
                    "add" => Action::Add,
                    "remove" => Action::Remove,
                    "change" => Action::Change,
                    _ => Action::Other,
                }
            }
            "SUBSYSTEM" => block = v == "block",
            "DEVNAME" => ev.name = v.rsplit('/').next().unwrap_or(v).to_owned(),
            "DEVTYPE" => ev.devtype = v.to_owned(),
            "DISKSEQ" => ev.diskseq = v.parse().ok(),
            "DISK_MEDIA_CHANGE" => ev.media_change = v == "1",
            _ => {}
        }
    }
    (block && !ev.name.is_empty()).then_some(ev)
}

/// A bound uevent socket.
pub struct HotplugListener {
    fd: OwnedFd,
}

impl HotplugListener {
    /// Opens and binds the socket (needs root or CAP_NET_ADMIN in a netns).
    pub fn open() -> io::Result<HotplugListener> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkKObjectUEvent,
        )?;
        bind(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            &NetlinkAddr::new(0, 1),
        )?;
        Ok(HotplugListener { fd })
    }

    /// The next block-device event, or `None` after `timeout` without one.
    pub fn next(&self, timeout: Duration) -> io::Result<Option<Uevent>> {
        let deadline = std::time::Instant::now() + timeout;
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) => return Ok(None),
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
            let n = recv(
                std::os::fd::AsRawFd::as_raw_fd(&self.fd),
                &mut buf,
                MsgFlags::MSG_DONTWAIT,
            )?;
            if let Some(ev) = parse(&buf[..n]) {
                return Ok(Some(ev));
            }
            if left.is_zero() {
                return Ok(None);
            }
        }
    }
}

/// Makes the kernel poll removable drives for media changes every `ms`
/// milliseconds (0 turns polling off).
pub fn set_media_poll_interval(ms: u32) -> io::Result<()> {
    std::fs::write(
        "/sys/module/block/parameters/events_dfl_poll_msecs",
        ms.to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kernel_change_event() {
        let msg = b"change@/devices/virtual/block/loop3\0ACTION=change\0DEVPATH=/devices/virtual/block/loop3\0SUBSYSTEM=block\0MAJOR=7\0MINOR=3\0DEVNAME=loop3\0DEVTYPE=disk\0DISKSEQ=42\0";
        let ev = parse(msg).expect("block event");
        assert_eq!(ev.action, Action::Change);
        assert_eq!(ev.name, "loop3");
        assert_eq!(ev.diskseq, Some(42));
        assert!(parse(b"add@/module/x\0ACTION=add\0SUBSYSTEM=module\0").is_none());
    }
}
