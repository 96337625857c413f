//! How a command reaches a drive: the [`Transport`] trait, and its real
//! implementation [`SgTransport`] over the Linux SG_IO ioctl.
//!
//! Architecture invariant: this is the only module of the crate that opens
//! devices or issues ioctls, and `sg_io` is its only `unsafe`.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::sense::Sense;

/// Data phase of a command.
#[derive(Debug)]
pub enum DataDir<'a> {
    None,
    /// Drive to host (READ, INQUIRY, ...).
    FromDevice(&'a mut [u8]),
    /// Host to drive (WRITE, MODE SELECT, ...).
    ToDevice(&'a [u8]),
}

impl DataDir<'_> {
    pub fn len(&self) -> usize {
        match self {
            DataDir::None => 0,
            DataDir::FromDevice(b) => b.len(),
            DataDir::ToDevice(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// SCSI status of a completed command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Good,
    /// CHECK CONDITION with decoded sense (None if the drive sent none).
    CheckCondition(Option<Sense>),
    Busy,
    Other(u8),
}

/// What came back from a command that reached the drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub status: Status,
    /// Bytes actually transferred in the data phase.
    pub transferred: usize,
}

/// Sends CDBs to one drive.
///
/// `Err` means the command did not complete at the transport level (device
/// gone, ioctl failed, timeout); a drive that answers, even with an error,
/// gives `Ok(Reply)`.
pub trait Transport: Send {
    /// Kernel name for messages, e.g. `sr1`.
    fn device(&self) -> &str;

    /// Execute one command. `name` is used in messages ("WRITE(10)").
    fn execute(
        &mut self,
        name: &'static str,
        cdb: &[u8],
        data: DataDir<'_>,
        timeout: Duration,
    ) -> Result<Reply>;
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn device(&self) -> &str {
        (**self).device()
    }

    fn execute(
        &mut self,
        name: &'static str,
        cdb: &[u8],
        data: DataDir<'_>,
        timeout: Duration,
    ) -> Result<Reply> {
        (**self).execute(name, cdb, data, timeout)
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn device(&self) -> &str {
        (**self).device()
    }

    fn execute(
        &mut self,
        name: &'static str,
        cdb: &[u8],
        data: DataDir<'_>,
        timeout: Duration,
    ) -> Result<Reply> {
        (**self).execute(name, cdb, data, timeout)
    }
}

/// A real drive through `/dev/sr*` or `/dev/sg*`.
#[derive(Debug)]
pub struct SgTransport {
    file: File,
    path: PathBuf,
    device: String,
}

impl SgTransport {
    /// Open a drive and check that it speaks SG_IO (one TEST UNIT READY,
    /// whose answer is ignored: an empty drive is still a drive).
    pub fn open(path: impl AsRef<Path>) -> Result<SgTransport> {
        let path = path.as_ref().to_path_buf();
        // O_NONBLOCK: sr refuses a blocking open while the tray is empty.
        // Read-write where allowed (burners), else read-only (a source drive
        // or a read-only node still answers SG_IO queries and READs).
        let open = |write: bool| {
            OpenOptions::new()
                .read(true)
                .write(write)
                .custom_flags(libc::O_NONBLOCK)
                .open(&path)
        };
        let file = match open(true) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EROFS) | Some(libc::EACCES)) => {
                open(false)
            }
            other => other,
        }
        .map_err(|source| Error::Open {
            path: path.clone(),
            source,
        })?;
        let device = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        let mut t = SgTransport { file, path, device };
        match t.execute(
            "TEST UNIT READY",
            &[0u8; 6],
            DataDir::None,
            Duration::from_secs(10),
        ) {
            Err(Error::Io { source, .. })
                if matches!(
                    source.raw_os_error(),
                    Some(libc::ENOTTY) | Some(libc::EINVAL)
                ) =>
            {
                Err(Error::NotScsi { path: t.path })
            }
            Err(e) => Err(e),
            Ok(_) => Ok(t),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

const SG_IO: libc::c_ulong = 0x2285;
const SG_DXFER_NONE: libc::c_int = -1;
const SG_DXFER_TO_DEV: libc::c_int = -2;
const SG_DXFER_FROM_DEV: libc::c_int = -3;
const DID_TIME_OUT: u16 = 0x03;
const DRIVER_TIMEOUT: u16 = 0x06;
const DRIVER_SENSE: u16 = 0x08;

/// `struct sg_io_hdr` from <scsi/sg.h> (not in the libc crate).
#[repr(C)]
struct SgIoHdr {
    interface_id: libc::c_int,
    dxfer_direction: libc::c_int,
    cmd_len: libc::c_uchar,
    mx_sb_len: libc::c_uchar,
    iovec_count: libc::c_ushort,
    dxfer_len: libc::c_uint,
    dxferp: *mut libc::c_void,
    cmdp: *const libc::c_uchar,
    sbp: *mut libc::c_uchar,
    timeout: libc::c_uint,
    flags: libc::c_uint,
    pack_id: libc::c_int,
    usr_ptr: *mut libc::c_void,
    status: libc::c_uchar,
    masked_status: libc::c_uchar,
    msg_status: libc::c_uchar,
    sb_len_wr: libc::c_uchar,
    host_status: libc::c_ushort,
    driver_status: libc::c_ushort,
    resid: libc::c_int,
    duration: libc::c_uint,
    info: libc::c_uint,
}

/// Outcome of one SG_IO call.
struct SgOutcome {
    status: u8,
    host_status: u16,
    driver_status: u16,
    resid: i32,
    sense_len: usize,
}

/// The one SG_IO ioctl.
fn sg_io(
    fd: libc::c_int,
    cdb: &[u8],
    data: &mut DataDir<'_>,
    sense: &mut [u8; 64],
    timeout: Duration,
) -> std::io::Result<SgOutcome> {
    let (direction, ptr, len) = match data {
        DataDir::None => (SG_DXFER_NONE, std::ptr::null_mut(), 0),
        DataDir::FromDevice(b) => (SG_DXFER_FROM_DEV, b.as_mut_ptr().cast(), b.len()),
        // The kernel only reads from a TO_DEV buffer.
        DataDir::ToDevice(b) => (SG_DXFER_TO_DEV, b.as_ptr().cast_mut().cast(), b.len()),
    };
    let mut hdr = SgIoHdr {
        interface_id: libc::c_int::from(b'S'),
        dxfer_direction: direction,
        cmd_len: u8::try_from(cdb.len()).unwrap_or(u8::MAX),
        mx_sb_len: sense.len() as u8,
        iovec_count: 0,
        dxfer_len: u32::try_from(len)
            .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?,
        dxferp: ptr,
        cmdp: cdb.as_ptr(),
        sbp: sense.as_mut_ptr(),
        timeout: u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX),
        flags: 0,
        pack_id: 0,
        usr_ptr: std::ptr::null_mut(),
        status: 0,
        masked_status: 0,
        msg_status: 0,
        sb_len_wr: 0,
        host_status: 0,
        driver_status: 0,
        resid: 0,
        duration: 0,
        info: 0,
    };
    // SAFETY: hdr is a correctly laid out sg_io_hdr; cmdp points to cdb
    // (cmd_len bytes), sbp to sense (mx_sb_len bytes), dxferp to a buffer of
    // dxfer_len bytes that is borrowed mutably (or, for TO_DEV, only read by
    // the kernel) for the duration of this synchronous call.
    let rc = unsafe { libc::ioctl(fd, SG_IO, &mut hdr as *mut SgIoHdr) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(SgOutcome {
        status: hdr.status,
        host_status: hdr.host_status,
        driver_status: hdr.driver_status,
        resid: hdr.resid,
        sense_len: usize::from(hdr.sb_len_wr),
    })
}

impl Transport for SgTransport {
    fn device(&self) -> &str {
        &self.device
    }

    fn execute(
        &mut self,
        name: &'static str,
        cdb: &[u8],
        mut data: DataDir<'_>,
        timeout: Duration,
    ) -> Result<Reply> {
        let len = data.len();
        let mut sense = [0u8; 64];
        let out = sg_io(self.file.as_raw_fd(), cdb, &mut data, &mut sense, timeout).map_err(
            |source| Error::Io {
                device: self.device.clone(),
                command: name,
                source,
            },
        )?;
        if out.host_status == DID_TIME_OUT || out.driver_status & 0x0f == DRIVER_TIMEOUT {
            return Err(Error::Timeout {
                device: self.device.clone(),
                command: name,
                secs: timeout.as_secs(),
            });
        }
        let has_sense = out.sense_len > 0 || out.driver_status & 0x0f == DRIVER_SENSE;
        if out.host_status != 0 && !has_sense {
            return Err(Error::Gone {
                device: self.device.clone(),
                command: name,
                host: out.host_status,
                driver: out.driver_status,
            });
        }
        let transferred = len.saturating_sub(usize::try_from(out.resid.max(0)).unwrap_or(0));
        let status = match out.status & 0x3e {
            0x00 if !has_sense => Status::Good,
            0x00 | 0x02 => Status::CheckCondition(Sense::parse(&sense[..out.sense_len.min(64)])),
            0x08 => Status::Busy,
            s => Status::Other(s),
        };
        tracing::trace!(device = %self.device, command = name, ?status, transferred, "sg_io");
        Ok(Reply {
            status,
            transferred,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    fn sg_io_hdr_has_the_kernel_layout() {
        // sizeof(struct sg_io_hdr) on 64-bit Linux.
        assert_eq!(std::mem::size_of::<SgIoHdr>(), 88);
        assert_eq!(std::mem::offset_of!(SgIoHdr, dxferp), 16);
        assert_eq!(std::mem::offset_of!(SgIoHdr, timeout), 40);
        assert_eq!(std::mem::offset_of!(SgIoHdr, status), 64);
        assert_eq!(std::mem::offset_of!(SgIoHdr, resid), 72);
    }

    #[test]
    fn missing_device_is_a_clear_open_error() {
        let err = SgTransport::open("/dev/sr-does-not-exist").unwrap_err();
        assert!(matches!(err, Error::Open { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("cannot open /dev/sr-does-not-exist: "),
            "{err}"
        );
    }

    #[test]
    fn non_scsi_device_is_refused_by_name() {
        let err = SgTransport::open("/dev/null").unwrap_err();
        assert!(matches!(err, Error::NotScsi { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "/dev/null is not a SCSI/MMC device (SG_IO not supported): use /dev/sr* or /dev/sg*"
        );
    }

    #[test]
    fn regular_file_is_refused_too() {
        let path = std::env::temp_dir().join(format!("copyunit-optical-sg-{}", std::process::id()));
        std::fs::write(&path, b"not a drive").unwrap();
        let res = SgTransport::open(&path);
        let _ = std::fs::remove_file(&path);
        assert!(matches!(res, Err(Error::NotScsi { .. })), "{res:?}");
    }

    #[test]
    fn real_drive_answers_inquiry_when_present() {
        // Runs only where a drive exists (the QEMU test has one); elsewhere
        // the path is covered by the error tests above.
        let Ok(mut t) = SgTransport::open("/dev/sr0") else {
            return;
        };
        let mut buf = [0u8; 36];
        let cdb = [0x12, 0, 0, 0, 36, 0];
        let reply = t
            .execute(
                "INQUIRY",
                &cdb,
                DataDir::FromDevice(&mut buf),
                Duration::from_secs(10),
            )
            .unwrap();
        assert_eq!(reply.status, Status::Good);
        assert_eq!(buf[0] & 0x1f, 5, "sr0 is an MMC device");
    }
}
