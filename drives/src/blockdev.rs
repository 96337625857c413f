//! Opening block devices and the block-layer ioctls.
//!
//! Architecture invariant: this is the only module of the crate with
//! `unsafe`, and the only one that opens a device node. Every ioctl is
//! wrapped once in a small safe function. A [`Disk`] is a whole-disk handle
//! opened with `O_EXCL` (the kernel refuses it while a partition is mounted
//! or another writer holds the disk) and, where the device allows it,
//! `O_DIRECT`, so data read once does not fill the page cache.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::buffer::{ALIGN, AlignedBuf};

mod ioctl {
    use nix::{ioctl_none, ioctl_read, ioctl_read_bad, ioctl_write_ptr_bad, request_code_none};
    // <linux/fs.h>: BLKGETSIZE64 = _IOR(0x12, 114, size_t)
    ioctl_read!(blkgetsize64, 0x12, 114, u64);
    // BLKSSZGET = _IO(0x12, 104), but the kernel writes an int through the argument.
    ioctl_read_bad!(blksszget, request_code_none!(0x12, 104), libc::c_int);
    // BLKPBSZGET = _IO(0x12, 123), writes an unsigned int.
    ioctl_read_bad!(blkpbszget, request_code_none!(0x12, 123), libc::c_uint);
    ioctl_none!(blkflsbuf, 0x12, 97);
    ioctl_none!(blkrrpart, 0x12, 95);
    // BLKDISCARD / BLKZEROOUT = _IO(0x12, 119 / 127) taking uint64_t[2] {start, len}.
    ioctl_write_ptr_bad!(blkdiscard, request_code_none!(0x12, 119), [u64; 2]);
    ioctl_write_ptr_bad!(blkzeroout, request_code_none!(0x12, 127), [u64; 2]);
    // BLKGETDISKSEQ = _IOR(0x12, 128, __u64), Linux 5.15+.
    ioctl_read!(blkgetdiskseq, 0x12, 128, u64);
}

fn errno(e: nix::errno::Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Size of the device in bytes (BLKGETSIZE64).
pub fn size_bytes(f: &File) -> io::Result<u64> {
    let mut v: u64 = 0;
    // SAFETY: the fd is open for the lifetime of `f`; the kernel writes one u64 to `v`.
    unsafe { ioctl::blkgetsize64(f.as_raw_fd(), &mut v) }.map_err(errno)?;
    Ok(v)
}

/// Logical sector size (BLKSSZGET): the unit of O_DIRECT offsets and lengths.
pub fn logical_sector_size(f: &File) -> io::Result<u32> {
    let mut v: libc::c_int = 0;
    // SAFETY: valid fd; the kernel writes one int to `v`.
    unsafe { ioctl::blksszget(f.as_raw_fd(), &mut v) }.map_err(errno)?;
    Ok(u32::try_from(v).unwrap_or(512))
}

/// Physical sector size (BLKPBSZGET).
pub fn physical_sector_size(f: &File) -> io::Result<u32> {
    let mut v: libc::c_uint = 0;
    // SAFETY: valid fd; the kernel writes one unsigned int to `v`.
    unsafe { ioctl::blkpbszget(f.as_raw_fd(), &mut v) }.map_err(errno)?;
    Ok(v)
}

/// Drops the device's cached pages (BLKFLSBUF) so a read-back sees the medium.
pub fn flush_buffers(f: &File) -> io::Result<()> {
    // SAFETY: valid fd; the ioctl takes no argument.
    unsafe { ioctl::blkflsbuf(f.as_raw_fd()) }.map_err(errno)?;
    Ok(())
}

/// Asks the kernel to re-read the partition table (BLKRRPART).
pub fn reread_partitions(f: &File) -> io::Result<()> {
    // SAFETY: valid fd; the ioctl takes no argument.
    unsafe { ioctl::blkrrpart(f.as_raw_fd()) }.map_err(errno)?;
    Ok(())
}

/// Discards `len` bytes at `start` (BLKDISCARD); both must be sector aligned.
pub fn discard(f: &File, start: u64, len: u64) -> io::Result<()> {
    let range = [start, len];
    // SAFETY: valid fd; the kernel reads two u64 from `range`, which outlives the call.
    unsafe { ioctl::blkdiscard(f.as_raw_fd(), &range) }.map_err(errno)?;
    Ok(())
}

/// Zeroes `len` bytes at `start` (BLKZEROOUT); both must be sector aligned.
pub fn zero_out(f: &File, start: u64, len: u64) -> io::Result<()> {
    let range = [start, len];
    // SAFETY: valid fd; the kernel reads two u64 from `range`, which outlives the call.
    unsafe { ioctl::blkzeroout(f.as_raw_fd(), &range) }.map_err(errno)?;
    Ok(())
}

/// The disk sequence number (BLKGETDISKSEQ): changes when the medium is replaced.
pub fn diskseq(f: &File) -> io::Result<u64> {
    let mut v: u64 = 0;
    // SAFETY: valid fd; the kernel writes one u64 to `v`.
    unsafe { ioctl::blkgetdiskseq(f.as_raw_fd(), &mut v) }.map_err(errno)?;
    Ok(v)
}

/// How a [`Disk`] is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read only, shared (discovery probes, reading a drive to an image).
    Read,
    /// Read and write, `O_EXCL`: the mount lock held for a whole job.
    WriteExclusive,
}

/// An open whole-disk block device.
#[derive(Debug)]
pub struct Disk {
    file: File,
    path: PathBuf,
    access: Access,
    direct: bool,
    size: u64,
    logical: u32,
    physical: u32,
}

fn open_raw(path: &Path, access: Access, direct: bool) -> io::Result<File> {
    let mut flags = libc::O_CLOEXEC;
    if direct {
        flags |= libc::O_DIRECT;
    }
    let mut o = OpenOptions::new();
    o.read(true);
    if access == Access::WriteExclusive {
        o.write(true);
        flags |= libc::O_EXCL;
    }
    o.custom_flags(flags).open(path)
}

impl Disk {
    /// Opens `path`, with `O_DIRECT` when the device accepts it. An
    /// exclusive open is retried for about a second while the device is
    /// busy: udev, blkid or the loop driver claim a device for a moment
    /// after it changes. A mount keeps it busy and the open fails with EBUSY.
    pub fn open(path: &Path, access: Access) -> io::Result<Disk> {
        let mut tries = 0;
        loop {
            match Disk::open_once(path, access) {
                Err(e)
                    if e.raw_os_error() == Some(libc::EBUSY)
                        && access == Access::WriteExclusive
                        && tries < 10 =>
                {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                r => return r,
            }
        }
    }

    fn open_once(path: &Path, access: Access) -> io::Result<Disk> {
        let (file, direct) = match open_raw(path, access, true) {
            Ok(f) => (f, true),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                (open_raw(path, access, false)?, false)
            }
            Err(e) => return Err(e),
        };
        let size = size_bytes(&file)?;
        let logical = logical_sector_size(&file).unwrap_or(512).max(512);
        let physical = physical_sector_size(&file).unwrap_or(logical).max(logical);
        Ok(Disk {
            file,
            path: path.to_owned(),
            access,
            direct,
            size,
            logical,
            physical,
        })
    }

    pub fn file(&self) -> &File {
        &self.file
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn size(&self) -> u64 {
        self.size
    }
    pub fn logical_sector_size(&self) -> u32 {
        self.logical
    }
    pub fn physical_sector_size(&self) -> u32 {
        self.physical
    }
    pub fn is_direct(&self) -> bool {
        self.direct
    }
    pub fn diskseq(&self) -> io::Result<u64> {
        diskseq(&self.file)
    }

    /// Drops O_DIRECT after the device refused an aligned transfer.
    fn reopen_buffered(&mut self) -> io::Result<()> {
        tracing::debug!(path = %self.path.display(), "O_DIRECT refused, falling back to buffered I/O");
        // The exclusive claim is released for the instant between close and open;
        // a mount in that window makes the reopen fail with EBUSY, which is safe.
        let placeholder = open_raw(Path::new("/dev/null"), Access::Read, false)?;
        drop(std::mem::replace(&mut self.file, placeholder));
        self.file = open_raw(&self.path, self.access, false)?;
        self.direct = false;
        Ok(())
    }

    /// Writes all of `buf` at `offset`. With O_DIRECT, `buf`, `offset` and
    /// the length must be aligned to the logical sector size.
    pub fn write_all_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        match self.file.write_all_at(buf, offset) {
            Err(e) if self.direct && e.raw_os_error() == Some(libc::EINVAL) => {
                self.reopen_buffered()?;
                self.file.write_all_at(buf, offset)
            }
            r => r,
        }
    }

    /// Reads exactly `buf.len()` bytes at `offset` (same alignment rules).
    pub fn read_exact_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        match self.file.read_exact_at(buf, offset) {
            Err(e) if self.direct && e.raw_os_error() == Some(libc::EINVAL) => {
                self.reopen_buffered()?;
                self.file.read_exact_at(buf, offset)
            }
            r => r,
        }
    }

    /// Writes `data` at `offset` where its length may end mid-sector: the
    /// last partial sector is read, patched and written whole.
    pub fn write_unaligned_tail(&mut self, data: &[u8], offset: u64) -> io::Result<()> {
        let sector = self.logical as usize;
        let whole = data.len() / sector * sector;
        if whole > 0 {
            let mut b = AlignedBuf::zeroed(whole);
            b.as_mut_slice().copy_from_slice(&data[..whole]);
            self.write_all_at(b.as_slice(), offset)?;
        }
        let rest = &data[whole..];
        if !rest.is_empty() {
            let at = offset + whole as u64;
            let mut s = AlignedBuf::zeroed(sector.max(ALIGN));
            let s = &mut s.as_mut_slice()[..sector];
            self.read_exact_at(s, at)?;
            s[..rest.len()].copy_from_slice(rest);
            self.write_all_at(s, at)?;
        }
        Ok(())
    }

    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_all()
    }
    pub fn flush_buffers(&self) -> io::Result<()> {
        flush_buffers(&self.file)
    }
    pub fn reread_partitions(&self) -> io::Result<()> {
        reread_partitions(&self.file)
    }
    pub fn discard(&self, start: u64, len: u64) -> io::Result<()> {
        discard(&self.file, start, len)
    }
    pub fn zero_out(&self, start: u64, len: u64) -> io::Result<()> {
        zero_out(&self.file, start, len)
    }
}

/// Reads up to `len` bytes at `offset` of a device or partition node through
/// the page cache (superblock probes during discovery).
pub fn read_head(path: &Path, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)?;
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        match f.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(done);
    Ok(buf)
}
