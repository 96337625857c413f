//! Thin safe wrappers around the few syscalls PID 1 needs that nix does not cover.

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
