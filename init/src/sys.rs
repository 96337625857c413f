//! Thin safe wrappers around the few syscalls PID 1 needs that nix does not cover: init's only
//! `unsafe` (ARCHITECTURE.md), each call wrapped once here.

use std::io;
use std::time::Duration;

/// Waits up to `timeout` for one of the signals blocked in `set`; `None` on timeout.
pub fn sigtimedwait(set: &nix::sys::signal::SigSet, timeout: Duration) -> Option<i32> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `set` is a valid sigset_t, `ts` lives across the call, and a null siginfo is allowed.
    let r = unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), &ts) };
    if r < 0 { None } else { Some(r) }
}

/// Flushes every filesystem's dirty data to its device.
pub fn sync() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() }
}

/// An `ifreq` ioctl on a socket; `req` holds the interface name and the argument.
pub fn ifreq_ioctl(fd: i32, request: libc::c_ulong, req: &mut libc::ifreq) -> io::Result<()> {
    // SAFETY: `req` is a valid, initialised ifreq that outlives the call; the kernel reads or
    // writes only within it for the SIOC*IF* requests used here.
    let r = unsafe { libc::ioctl(fd, request as _, req as *mut libc::ifreq) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `SIOCADDRT`: adds an IPv4 route.
pub fn add_route(fd: i32, route: &mut libc::rtentry) -> io::Result<()> {
    // SAFETY: `route` is a valid rtentry whose device-name pointer (if any) outlives the call.
    let r = unsafe { libc::ioctl(fd, libc::SIOCADDRT as _, route as *mut libc::rtentry) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// An all-zero `ifreq` (no name, no argument).
pub fn zeroed_ifreq() -> libc::ifreq {
    // SAFETY: ifreq is plain old data (integers, arrays and a union of them); all-zero is valid.
    unsafe { std::mem::zeroed() }
}

/// The flags member of an `ifreq` that `SIOCGIFFLAGS` filled.
pub fn ifreq_flags(req: &libc::ifreq) -> libc::c_short {
    // SAFETY: every member of the ifru union is plain integers, so reading the flags member is
    // defined whatever was written last (after SIOCGIFFLAGS it is the flags).
    unsafe { req.ifr_ifru.ifru_flags }
}

/// An all-zero `rtentry`.
pub fn zeroed_rtentry() -> libc::rtentry {
    // SAFETY: rtentry is plain old data; all-zero (null device pointer) is a valid value.
    unsafe { std::mem::zeroed() }
}

/// `RNDADDENTROPY` on an fd of /dev/random or /dev/urandom: mixes `data` into the kernel's
/// input pool and credits `bits` of entropy (needs CAP_SYS_ADMIN).
pub fn add_entropy(fd: i32, data: &[u8], bits: u32) -> io::Result<()> {
    /// _IOW('R', 0x03, int[2])
    const RNDADDENTROPY: libc::c_ulong = 0x4008_5203;
    let too_big = |_| io::Error::new(io::ErrorKind::InvalidInput, "entropy buffer too big");
    let count = i32::try_from(bits).map_err(too_big)?;
    let size = i32::try_from(data.len()).map_err(too_big)?;
    // struct rand_pool_info { int entropy_count; int buf_size; __u32 buf[]; }
    let mut info = Vec::with_capacity(8 + data.len());
    info.extend_from_slice(&count.to_ne_bytes());
    info.extend_from_slice(&size.to_ne_bytes());
    info.extend_from_slice(data);
    // SAFETY: `info` is a complete rand_pool_info (two ints, then buf_size bytes) that lives
    // across the call; the kernel only reads from it.
    let r = unsafe { libc::ioctl(fd, RNDADDENTROPY as _, info.as_ptr()) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
