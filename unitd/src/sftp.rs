//! The SFTP door (`sftp`, `scp`, WinSCP, FileZilla) over the image store.
//!
//! The client sees one flat folder, `/`, holding the complete images and
//! their sidecars. Uploads go through [`crate::store::Upload`]: a hidden
//! partial, hashed as it arrives, published on close. `stat` of a name with
//! an interrupted upload shows the partial's size, so `reput` / `put -a`
//! resume where it stopped.
//!
//! Opening a complete image for writing without TRUNCATE (`reput`,
//! `curl -C -`, `lftp put -c`, `>>` through sshfs) starts from its bytes:
//! the result, old prefix plus what the client wrote, is published on close
//! as a new version (a job reading the old one keeps its file).
//!
//! A modification time a client sets (`setstat`/`fsetstat`: `put -p`,
//! `scp -p`, rclone) is kept on the file and shown in `stat` and listings,
//! so rclone sees an unchanged image as unchanged; the catalog's `added`
//! stays the time the image arrived.
//!
//! What a hostile client can send is bounded: packets longer than
//! [`MAX_PACKET`] close the channel ([`Framed`], before russh-sftp reads
//! them), at most [`MAX_HANDLES`] open handles ([`MAX_UPLOADS`] of them
//! uploads), offsets checked, and holes
//! (writes or sizes past the data) no larger than the store's free space.
//! Errors go back with their message, and on the channel's stderr, which is
//! where OpenSSH's sftp shows them (it prints only the code's name).
//!
//! Extensions: posix-rename, statvfs, fsync and limits (@openssh.com).

use std::collections::HashMap;
use std::fs::File as FsFile;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use copyunit_model::EventKind;
use russh_sftp::protocol::{
    Attrs, Data, ExtendedReply, File, FileAttributes, Handle, Name, OpenFlags, Packet, Status,
    StatusCode, Version,
};
use russh_sftp::server::StatusReply;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::store::{FileStat, ImageName, NameError, StoreError, Upload};
use crate::unit::Unit;

/// Largest read or write we accept (OpenSSH clients use up to this with the
/// limits extension: bigger writes, fewer round trips).
const MAX_IO: u64 = 255 * 1024;
/// Longest SFTP packet we accept (its length field, as `limits@openssh.com`
/// announces it). A longer one closes the channel.
pub const MAX_PACKET: u32 = 256 * 1024 + 1024;
/// Open files and folders per SFTP session.
pub const MAX_HANDLES: usize = 64;
/// Uploads open at once per SFTP session: each has a writer thread and a
/// queue of up to 16 MiB. Clients that upload in parallel (FileZilla,
/// WinSCP, rclone, lftp mirror) do it over separate sessions.
pub const MAX_UPLOADS: usize = 8;

/// Serves SFTP on a channel's byte stream until the client leaves (the
/// stream comes from `ssh::channel`, whose pump keeps reading while a reply
/// waits for the client's window). `stderr` is the channel's extended data:
/// OpenSSH's sftp prints what arrives there. Any byte stream will do (the
/// fuzz target, `fuzz/fuzz_targets/sftp.rs`, feeds it a duplex pipe).
/// Returns at once; the session runs on a task until the stream ends.
pub async fn serve<S>(unit: Arc<Unit>, stream: S, stderr: Pin<Box<dyn AsyncWrite + Send>>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let cfg = russh_sftp::server::Config {
        max_client_packet_len: MAX_PACKET,
    };
    let stream = Framed::new(stream, MAX_PACKET);
    russh_sftp::server::run_with_config(stream, Sftp::new(unit, stderr), cfg).await;
}

enum Open {
    Read {
        name: ImageName,
        file: Arc<FsFile>,
    },
    Write {
        name: ImageName,
        upload: Upload,
        /// Opened with APPEND: every write goes to the end, whatever its
        /// offset says (as OpenSSH's sftp-server does, with O_APPEND).
        append: bool,
    },
    Dir {
        listed: bool,
    },
}

pub struct Sftp {
    unit: Arc<Unit>,
    handles: HashMap<String, Open>,
    next: u64,
    /// The channel's stderr: OpenSSH's sftp prints only a status code's
    /// name ("Failure"), but shows what arrives here.
    stderr: Pin<Box<dyn AsyncWrite + Send>>,
    last_told: String,
}

type Reply<T> = Result<T, StatusReply>;

impl Sftp {
    fn new(unit: Arc<Unit>, stderr: Pin<Box<dyn AsyncWrite + Send>>) -> Sftp {
        Sftp {
            unit,
            handles: HashMap::new(),
            next: 0,
            stderr,
            last_told: String::new(),
        }
    }

    /// Passes a reply on, telling an error's message on stderr first (once
    /// per message in a row: 64 pipelined writes into a full store say it
    /// once). Not found and end of file are left to the status alone.
    async fn told<T>(&mut self, r: Reply<T>) -> Reply<T> {
        if let Err(e) = &r
            && !matches!(
                e.status_code,
                StatusCode::Ok | StatusCode::Eof | StatusCode::NoSuchFile
            )
            && let Some(msg) = &e.error_message
            && *msg != self.last_told
        {
            self.last_told = msg.clone();
            let line = format!("copyunit: {msg}\n");
            let w = &mut self.stderr;
            // Bounded: a client that reads nothing must not hold the reply.
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                w.write_all(line.as_bytes()).await?;
                w.flush().await
            })
            .await;
        }
        r
    }

    fn add(&mut self, open: Open) -> Reply<String> {
        if self.handles.len() >= MAX_HANDLES {
            return Err(too_many());
        }
        self.next += 1;
        let h = format!("h{}", self.next);
        self.handles.insert(h.clone(), open);
        Ok(h)
    }

    fn stat_path(&self, path: &str) -> Reply<FileAttributes> {
        match ImageName::from_client_path(path).map_err(name_err)? {
            None => Ok(dir_attrs()),
            Some(name) => self
                .unit
                .store
                .stat(&name)
                .map(file_attrs)
                .ok_or_else(|| no_such(&name)),
        }
    }

    /// The upload of `name` this session has open, if any.
    fn open_upload(&self, name: &ImageName) -> Option<&Upload> {
        self.handles.values().find_map(|o| match o {
            Open::Write {
                name: n, upload, ..
            } if n == name => Some(upload),
            _ => None,
        })
    }

    /// Refuses to make `upload` `end` bytes long if the holes that leaves
    /// (length beyond the bytes really written) exceed the store's free
    /// space: a write far past the end or a huge `fsetstat` size would make
    /// a sparse file that costs the client nothing and takes hours to hash.
    fn room(&self, upload: &Upload, end: u64) -> Reply<()> {
        let holes = upload.holes_at(end);
        if holes == 0 {
            return Ok(());
        }
        let free = self
            .unit
            .store
            .statvfs()
            .map(|s| s.blocks_available().saturating_mul(s.fragment_size()))
            .map_err(io_err)?;
        if holes > free {
            return Err(StatusCode::Failure.with_message(format!(
                "refusing to make {} {end} bytes long: {holes} of them would be unwritten, \
                 more than the {free} bytes free in the image store",
                upload.progress.name
            )));
        }
        Ok(())
    }

    /// Keeps a client's modification time for `name`: on its upload if this
    /// session is writing it, else on the complete file.
    async fn set_mtime(&mut self, name: &ImageName, mtime: u32) -> Reply<()> {
        if let Some(upload) = self.open_upload(name) {
            upload.set_mtime(mtime as u64);
            return Ok(());
        }
        if self.unit.store.entry(name.as_str()).is_none() {
            // Only an interrupted upload: its time is the age partials
            // expire by, keep it.
            return Ok(());
        }
        let unit = self.unit.clone();
        let name = name.clone();
        let when = SystemTime::UNIX_EPOCH + Duration::from_secs(mtime as u64);
        tokio::task::spawn_blocking(move || unit.store.set_mtime(&name, when))
            .await
            .map_err(|_| StatusCode::Failure.with_message("setting the time failed"))?
            .map_err(store_err)
    }

    async fn open_file(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        attrs: FileAttributes,
    ) -> Reply<Handle> {
        let name = ImageName::from_client_path(&filename)
            .map_err(name_err)?
            .ok_or_else(|| {
                StatusCode::Failure.with_message("/ is the image store folder, not a file")
            })?;
        let writing = pflags.intersects(
            OpenFlags::WRITE | OpenFlags::APPEND | OpenFlags::CREATE | OpenFlags::TRUNCATE,
        );
        if !writing {
            if self.unit.store.entry(name.as_str()).is_none() {
                return Err(no_such(&name));
            }
            let file = open_image(&self.unit.store.path_of(&name)).map_err(|_| no_such(&name))?;
            let handle = self.add(Open::Read {
                name,
                file: Arc::new(file),
            })?;
            return Ok(Handle { id, handle });
        }
        // Checked before a partial exists: a refused open leaves nothing.
        if self.handles.len() >= MAX_HANDLES {
            return Err(too_many());
        }
        let uploads = self
            .handles
            .values()
            .filter(|o| matches!(o, Open::Write { .. }))
            .count();
        if uploads >= MAX_UPLOADS {
            return Err(StatusCode::Failure.with_message(format!(
                "too many uploads at once: at most {MAX_UPLOADS} per SFTP session, \
                 close one first or use another session"
            )));
        }
        let existing = self.unit.store.stat(&name);
        if pflags.contains(OpenFlags::EXCLUDE) && existing.is_some() {
            return Err(StatusCode::Failure.with_message(format!("{name} already exists")));
        }
        let truncate = pflags.contains(OpenFlags::TRUNCATE);
        // Without TRUNCATE the client means to write over what it stat'ed:
        // an interrupted upload is resumed; a complete image is the start
        // of a new version (pinned now: its file, whatever replaces it).
        let resume = !truncate && existing.is_some_and(|s| s.partial);
        let base = match (truncate || resume, existing) {
            (false, Some(_)) => {
                Some(open_image(&self.unit.store.path_of(&name)).map_err(|_| no_such(&name))?)
            }
            _ => None,
        };
        let upload = self
            .unit
            .store
            .begin_upload(&name, !resume, attrs.size)
            .map_err(store_err)?;
        if resume {
            tracing::info!("resuming the upload of {name} at {} bytes", upload.len());
        }
        if let Some(base) = base {
            upload.start_from(base).await.map_err(io_err)?;
            tracing::info!(
                "writing a new version of {name} over its {} bytes",
                upload.len()
            );
        }
        self.unit.changed();
        let append = pflags.contains(OpenFlags::APPEND);
        let handle = self.add(Open::Write {
            name,
            upload,
            append,
        })?;
        Ok(Handle { id, handle })
    }

    async fn write_file(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        data: Vec<u8>,
    ) -> Reply<Status> {
        match self.handles.get(&handle).ok_or_else(bad_handle)? {
            Open::Write { upload, append, .. } => {
                let offset = if *append { upload.len() } else { offset };
                self.room(upload, offset)?;
                upload.write_at(offset, data).await.map_err(io_err)?;
                Ok(ok(id))
            }
            _ => Err(StatusCode::PermissionDenied.with_message("file not open for writing")),
        }
    }

    async fn close_handle(&mut self, id: u32, handle: String) -> Reply<Status> {
        match self.handles.remove(&handle).ok_or_else(bad_handle)? {
            Open::Write { name, upload, .. } => {
                let result = self.unit.store.finish_upload(&name, upload).await;
                self.unit.changed();
                let entry = result.map_err(store_err)?;
                self.unit.event(
                    EventKind::UploadDone,
                    format!(
                        "{name} stored ({}, sha256 {}…)",
                        copyunit_model::format::bytes(entry.size),
                        &entry.sha256[..12]
                    ),
                );
                Ok(ok(id))
            }
            _ => Ok(ok(id)),
        }
    }

    async fn set_attrs(&mut self, id: u32, path: String, attrs: FileAttributes) -> Reply<Status> {
        // Modes and owners are accepted and ignored (`put -p`). Sizes of
        // complete images never change.
        let current = self.stat_path(&path)?;
        if let Some(size) = attrs.size
            && Some(size) != current.size
        {
            return Err(
                StatusCode::PermissionDenied.with_message("stored images cannot be resized")
            );
        }
        if let (Some(mtime), Some(name)) = (
            attrs.mtime,
            ImageName::from_client_path(&path).map_err(name_err)?,
        ) {
            self.set_mtime(&name, mtime).await?;
        }
        Ok(ok(id))
    }

    async fn set_handle_attrs(
        &mut self,
        id: u32,
        handle: String,
        attrs: FileAttributes,
    ) -> Reply<Status> {
        match self.handles.get(&handle).ok_or_else(bad_handle)? {
            Open::Write { upload, .. } => {
                if let Some(size) = attrs.size {
                    self.room(upload, size)?;
                    upload.set_len(size).await.map_err(io_err)?;
                }
                if let Some(mtime) = attrs.mtime {
                    upload.set_mtime(mtime as u64);
                }
                Ok(ok(id))
            }
            Open::Read { name, .. } => {
                if let Some(mtime) = attrs.mtime {
                    let name = name.clone();
                    self.set_mtime(&name, mtime).await?;
                }
                Ok(ok(id))
            }
            Open::Dir { .. } => Ok(ok(id)),
        }
    }
}

fn too_many() -> StatusReply {
    StatusCode::Failure.with_message(format!(
        "too many open files: at most {MAX_HANDLES} per SFTP session, close some first"
    ))
}

/// Opens a complete image for reading, pinning this version of it.
fn open_image(path: &std::path::Path) -> io::Result<FsFile> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
}

impl Drop for Sftp {
    fn drop(&mut self) {
        // The connection went away: open uploads stay as resumable partials.
        for (_, open) in self.handles.drain() {
            if let Open::Write { name, upload, .. } = open {
                tracing::info!(
                    "upload of {name} interrupted at {} bytes: kept for resume",
                    upload.len()
                );
                self.unit.changed();
            }
        }
    }
}

impl russh_sftp::server::Handler for Sftp {
    type Error = StatusReply;

    fn unimplemented(&self) -> Self::Error {
        StatusCode::OpUnsupported.into()
    }

    async fn init(
        &mut self,
        _version: u32,
        _extensions: HashMap<String, String>,
    ) -> Reply<Version> {
        let mut v = Version::new();
        for (name, version) in [
            ("posix-rename@openssh.com", "1"),
            ("statvfs@openssh.com", "2"),
            ("fsync@openssh.com", "1"),
            ("limits@openssh.com", "1"),
        ] {
            v.extensions.insert(name.into(), version.into());
        }
        Ok(v)
    }

    async fn realpath(&mut self, id: u32, path: String) -> Reply<Name> {
        // Lenient, like a shell's `cd ..` at the root: `..` stops at `/`.
        let mut parts: Vec<&str> = Vec::new();
        for p in path.split('/') {
            match p {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                p => parts.push(p),
            }
        }
        let resolved = format!("/{}", parts.join("/"));
        ImageName::from_client_path(&resolved).map_err(name_err)?;
        Ok(Name {
            id,
            files: vec![File::dummy(resolved)],
        })
    }

    async fn stat(&mut self, id: u32, path: String) -> Reply<Attrs> {
        Ok(Attrs {
            id,
            attrs: self.stat_path(&path)?,
        })
    }

    async fn lstat(&mut self, id: u32, path: String) -> Reply<Attrs> {
        self.stat(id, path).await
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Reply<Attrs> {
        let attrs = match self.handles.get(&handle).ok_or_else(bad_handle)? {
            Open::Read { file, .. } => {
                let md = file.metadata().map_err(io_err)?;
                file_attrs(FileStat {
                    size: md.len(),
                    mtime: md.mtime().max(0) as u64,
                    partial: false,
                })
            }
            // What the upload holds (the image it started from included):
            // what the client will find once it closes.
            Open::Write { upload, .. } => file_attrs(FileStat {
                size: upload.len(),
                mtime: upload.mtime().unwrap_or_else(crate::unit::now),
                partial: true,
            }),
            Open::Dir { .. } => dir_attrs(),
        };
        Ok(Attrs { id, attrs })
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        attrs: FileAttributes,
    ) -> Reply<Handle> {
        let r = self.open_file(id, filename, pflags, attrs).await;
        self.told(r).await
    }

    async fn write(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        data: Vec<u8>,
    ) -> Reply<Status> {
        let r = self.write_file(id, handle, offset, data).await;
        self.told(r).await
    }

    async fn read(&mut self, id: u32, handle: String, offset: u64, len: u32) -> Reply<Data> {
        let Open::Read { file, .. } = self.handles.get(&handle).ok_or_else(bad_handle)? else {
            return Err(StatusCode::PermissionDenied.with_message("file not open for reading"));
        };
        if offset >= i64::MAX as u64 {
            return Err(StatusCode::Eof.into());
        }
        let file = file.clone();
        let len = (len as u64).min(MAX_IO) as usize;
        let data = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; len];
            let mut n = 0;
            while n < len {
                match file.read_at(&mut buf[n..], offset + n as u64) {
                    Ok(0) => break,
                    Ok(k) => n += k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            buf.truncate(n);
            Ok(buf)
        })
        .await
        .map_err(|_| StatusCode::Failure.with_message("read task failed"))?
        .map_err(io_err)?;
        if data.is_empty() {
            return Err(StatusCode::Eof.into());
        }
        Ok(Data { id, data })
    }

    async fn close(&mut self, id: u32, handle: String) -> Reply<Status> {
        let r = self.close_handle(id, handle).await;
        self.told(r).await
    }

    async fn opendir(&mut self, id: u32, path: String) -> Reply<Handle> {
        match ImageName::from_client_path(&path).map_err(name_err)? {
            None => {
                let handle = self.add(Open::Dir { listed: false })?;
                Ok(Handle { id, handle })
            }
            Some(name) if self.unit.store.stat(&name).is_some() => {
                Err(StatusCode::Failure.with_message(format!("{name} is a file, not a folder")))
            }
            Some(name) => Err(no_such(&name)),
        }
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Reply<Name> {
        let Some(Open::Dir { listed }) = self.handles.get_mut(&handle) else {
            return Err(bad_handle());
        };
        if *listed {
            return Err(StatusCode::Eof.into());
        }
        *listed = true;
        let mut files = vec![File::new(".", dir_attrs()), File::new("..", dir_attrs())];
        // Interrupted uploads are listed under their name with the bytes
        // they hold (as `stat` shows them), so FileZilla and WinSCP offer a
        // resume; opening one for reading still finds no image.
        let partials = self.unit.store.partials();
        for e in self.unit.store.entries() {
            if partials.iter().any(|p| p.name == e.name) {
                continue;
            }
            // The file's own time: the client's if it set one, else when
            // it arrived.
            let mtime = (e.mtime_ns / 1_000_000_000).clamp(0, u64::MAX as i128) as u64;
            files.push(File::new(
                e.name.clone(),
                file_attrs(FileStat {
                    size: e.size,
                    mtime,
                    partial: false,
                }),
            ));
        }
        for p in partials {
            files.push(File::new(
                p.name,
                file_attrs(FileStat {
                    size: p.bytes,
                    mtime: p.since,
                    partial: true,
                }),
            ));
        }
        Ok(Name { id, files })
    }

    async fn remove(&mut self, id: u32, filename: String) -> Reply<Status> {
        let r = self.do_remove(&filename).map(|()| ok(id));
        self.told(r).await
    }

    async fn rename(&mut self, id: u32, oldpath: String, newpath: String) -> Reply<Status> {
        let r = self.do_rename(&oldpath, &newpath, false).map(|()| ok(id));
        self.told(r).await
    }

    async fn mkdir(&mut self, _id: u32, _path: String, _attrs: FileAttributes) -> Reply<Status> {
        Err(StatusCode::OpUnsupported.with_message("the image store has no folders"))
    }

    async fn rmdir(&mut self, _id: u32, _path: String) -> Reply<Status> {
        Err(StatusCode::OpUnsupported.with_message("the image store has no folders"))
    }

    async fn setstat(&mut self, id: u32, path: String, attrs: FileAttributes) -> Reply<Status> {
        let r = self.set_attrs(id, path, attrs).await;
        self.told(r).await
    }

    async fn fsetstat(&mut self, id: u32, handle: String, attrs: FileAttributes) -> Reply<Status> {
        let r = self.set_handle_attrs(id, handle, attrs).await;
        self.told(r).await
    }

    async fn readlink(&mut self, _id: u32, _path: String) -> Reply<Name> {
        Err(StatusCode::OpUnsupported.with_message("the image store has no links"))
    }

    async fn symlink(&mut self, _id: u32, _linkpath: String, _targetpath: String) -> Reply<Status> {
        Err(StatusCode::OpUnsupported.with_message("the image store has no links"))
    }

    async fn extended(&mut self, id: u32, request: String, data: Vec<u8>) -> Reply<Packet> {
        let mut args = Args(&data);
        match request.as_str() {
            "limits@openssh.com" => {
                let mut out = Vec::new();
                for v in [MAX_PACKET as u64, MAX_IO, MAX_IO, MAX_HANDLES as u64] {
                    out.extend_from_slice(&v.to_be_bytes());
                }
                Ok(Packet::ExtendedReply(ExtendedReply { id, data: out }))
            }
            "statvfs@openssh.com" => {
                let path = args.string()?;
                ImageName::from_client_path(&path).map_err(name_err)?;
                let s = self.unit.store.statvfs().map_err(io_err)?;
                let mut out = Vec::new();
                for v in [
                    s.block_size(),
                    s.fragment_size(),
                    s.blocks(),
                    s.blocks_free(),
                    s.blocks_available(),
                    s.files(),
                    s.files_free(),
                    s.files_available(),
                    s.filesystem_id(),
                    s.flags().bits(),
                    s.name_max(),
                ] {
                    out.extend_from_slice(&v.to_be_bytes());
                }
                Ok(Packet::ExtendedReply(ExtendedReply { id, data: out }))
            }
            "fsync@openssh.com" => {
                let handle = args.string()?;
                let r = match self.handles.get(&handle).ok_or_else(bad_handle)? {
                    Open::Write { upload, .. } => upload.fsync().await.map_err(io_err),
                    _ => Ok(()),
                };
                self.told(r).await?;
                Ok(Packet::Status(ok(id)))
            }
            "posix-rename@openssh.com" => {
                let (from, to) = (args.string()?, args.string()?);
                let r = self.do_rename(&from, &to, true);
                self.told(r).await?;
                Ok(Packet::Status(ok(id)))
            }
            _ => Err(StatusCode::OpUnsupported.into()),
        }
    }
}

impl Sftp {
    fn do_remove(&mut self, filename: &str) -> Reply<()> {
        let name = ImageName::from_client_path(filename)
            .map_err(name_err)?
            .ok_or_else(|| {
                StatusCode::PermissionDenied.with_message("cannot remove the store itself")
            })?;
        self.unit.store.remove(&name).map_err(store_err)?;
        self.unit
            .event(EventKind::ImageRemoved, format!("{name} removed"));
        Ok(())
    }

    fn do_rename(&mut self, from: &str, to: &str, overwrite: bool) -> Reply<()> {
        let not_root =
            || StatusCode::PermissionDenied.with_message("cannot rename the store itself");
        let from = ImageName::from_client_path(from)
            .map_err(name_err)?
            .ok_or_else(not_root)?;
        let to = ImageName::from_client_path(to)
            .map_err(name_err)?
            .ok_or_else(not_root)?;
        self.unit
            .store
            .rename(&from, &to, overwrite)
            .map_err(store_err)?;
        self.unit
            .event(EventKind::Info, format!("{from} renamed to {to}"));
        Ok(())
    }
}

/// Reads SSH wire strings out of an extended request's data.
struct Args<'a>(&'a [u8]);

impl Args<'_> {
    fn string(&mut self) -> Reply<String> {
        let bad = || StatusReply::from(StatusCode::BadMessage);
        let len_bytes: [u8; 4] = self
            .0
            .get(..4)
            .ok_or_else(bad)?
            .try_into()
            .map_err(|_| bad())?;
        let len = u32::from_be_bytes(len_bytes) as usize;
        let s = self.0.get(4..4 + len).ok_or_else(bad)?;
        self.0 = &self.0[4 + len..];
        String::from_utf8(s.to_vec()).map_err(|_| bad())
    }
}

fn ok(id: u32) -> Status {
    Status {
        id,
        status_code: StatusCode::Ok,
        error_message: "Ok".into(),
        language_tag: "en-US".into(),
    }
}

fn dir_attrs() -> FileAttributes {
    FileAttributes {
        size: Some(4096),
        uid: Some(0),
        gid: Some(0),
        permissions: Some(0o040755),
        atime: Some(0),
        mtime: Some(0),
        ..FileAttributes::empty()
    }
}

fn file_attrs(s: FileStat) -> FileAttributes {
    let mtime = s.mtime.min(u32::MAX as u64) as u32;
    FileAttributes {
        size: Some(s.size),
        uid: Some(0),
        gid: Some(0),
        permissions: Some(0o100644),
        atime: Some(mtime),
        mtime: Some(mtime),
        ..FileAttributes::empty()
    }
}

fn bad_handle() -> StatusReply {
    StatusCode::Failure.with_message("invalid handle")
}

fn no_such(name: &ImageName) -> StatusReply {
    StatusCode::NoSuchFile.with_message(format!("no file named {name} in the image store"))
}

fn name_err(e: NameError) -> StatusReply {
    StatusCode::PermissionDenied.with_message(e.to_string())
}

fn store_err(e: StoreError) -> StatusReply {
    let code = match &e {
        StoreError::NotFound(_) => StatusCode::NoSuchFile,
        StoreError::Name(_) => StatusCode::PermissionDenied,
        _ => StatusCode::Failure,
    };
    code.with_message(e.to_string())
}

fn io_err(e: std::io::Error) -> StatusReply {
    StatusCode::Failure.with_message(e.to_string())
}

/// Length-checking framing between the channel and russh-sftp.
///
/// russh-sftp, refusing a packet longer than its limit, does not skip the
/// packet's body: it reads the next 4 bytes of that body as a length, and
/// so on, one warning per 4 bytes of garbage. This reads each packet's
/// length first and passes only whole, acceptable packets on; the first
/// one over `limit` (or a read error) is logged once and ends the stream,
/// which ends the SFTP session and closes the channel.
struct Framed<S> {
    inner: S,
    limit: u32,
    state: Frame,
}

#[derive(Clone, Copy)]
enum Frame {
    /// Reading a packet's length field: `got` of its 4 bytes so far.
    Length { buf: [u8; 4], got: usize },
    /// Handing that length on (`sent` of 4 bytes), then `body` bytes.
    Header {
        buf: [u8; 4],
        sent: usize,
        body: u32,
    },
    /// Passing `left` more bytes of a packet through.
    Body { left: u32 },
    /// Refused, or the stream ended: reads see end of file.
    Closed,
}

const START: Frame = Frame::Length {
    buf: [0; 4],
    got: 0,
};

impl<S> Framed<S> {
    fn new(inner: S, limit: u32) -> Self {
        Framed {
            inner,
            limit,
            state: START,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Framed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            match this.state {
                Frame::Closed => return Poll::Ready(Ok(())),
                Frame::Length { mut buf, got } => {
                    let mut rb = ReadBuf::new(&mut buf[got..]);
                    match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Err(e)) => {
                            tracing::info!("sftp: reading from the channel failed ({e}): closing");
                            this.state = Frame::Closed;
                        }
                        Poll::Ready(Ok(())) => {
                            let n = rb.filled().len();
                            if n == 0 {
                                this.state = Frame::Closed;
                                continue;
                            }
                            let got = got + n;
                            this.state = if got < 4 {
                                Frame::Length { buf, got }
                            } else {
                                let len = u32::from_be_bytes(buf);
                                if len > this.limit {
                                    tracing::warn!(
                                        "sftp: refused a packet of {len} bytes (the limit is {}): \
                                         closing the channel",
                                        this.limit
                                    );
                                    Frame::Closed
                                } else {
                                    Frame::Header {
                                        buf,
                                        sent: 0,
                                        body: len,
                                    }
                                }
                            };
                        }
                    }
                }
                Frame::Header { buf, sent, body } => {
                    if out.remaining() == 0 {
                        return Poll::Ready(Ok(()));
                    }
                    let n = (4 - sent).min(out.remaining());
                    out.put_slice(&buf[sent..sent + n]);
                    let sent = sent + n;
                    this.state = match (sent, body) {
                        (4, 0) => START,
                        (4, left) => Frame::Body { left },
                        _ => Frame::Header { buf, sent, body },
                    };
                    return Poll::Ready(Ok(()));
                }
                Frame::Body { left } => {
                    if out.remaining() == 0 {
                        return Poll::Ready(Ok(()));
                    }
                    let want = (left as usize).min(out.remaining());
                    let mut rb = ReadBuf::new(out.initialize_unfilled_to(want));
                    match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Err(e)) => {
                            tracing::info!("sftp: reading from the channel failed ({e}): closing");
                            this.state = Frame::Closed;
                        }
                        Poll::Ready(Ok(())) => {
                            let n = rb.filled().len();
                            if n == 0 {
                                this.state = Frame::Closed;
                                continue;
                            }
                            out.advance(n);
                            let left = left - n as u32;
                            this.state = if left == 0 {
                                START
                            } else {
                                Frame::Body { left }
                            };
                            return Poll::Ready(Ok(()));
                        }
                    }
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Framed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn packet(body: &[u8]) -> Vec<u8> {
        let mut p = (body.len() as u32).to_be_bytes().to_vec();
        p.extend_from_slice(body);
        p
    }

    #[tokio::test]
    async fn framing_passes_whole_packets_and_ends_at_an_oversize_one() {
        let mut wire = packet(b"\x01\x00\x00\x00\x03");
        wire.extend(packet(&[7u8; 100]));
        let good = wire.len();
        wire.extend_from_slice(&(1_000_000u32).to_be_bytes());
        wire.extend(vec![0x41u8; 256 * 1024]);
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let writer = tokio::spawn(async move {
            // One byte at a time: lengths split across reads.
            for b in wire {
                if client.write_all(&[b]).await.is_err() {
                    break;
                }
            }
        });
        let mut framed = Framed::new(server, 1024);
        let mut got = Vec::new();
        framed.read_to_end(&mut got).await.unwrap();
        assert_eq!(
            got.len(),
            good,
            "everything up to the oversize packet, then EOF"
        );
        assert_eq!(&got[..4], &5u32.to_be_bytes());
        writer.abort();
    }
}
