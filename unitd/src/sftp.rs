//! The SFTP door (`sftp`, `scp`, WinSCP, FileZilla) over the image store.
//!
//! The client sees one flat folder, `/`, holding the complete images and
//! their sidecars. Uploads go through [`crate::store::Upload`]: a hidden
//! partial, hashed as it arrives, published on close. `stat` of a name with
//! an interrupted upload shows the partial's size, so `reput` / `put -a`
//! resume where it stopped.
//!
//! Extensions: posix-rename, statvfs, fsync and limits (@openssh.com).

use std::collections::HashMap;
use std::fs::File as FsFile;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::sync::Arc;

use copyunit_model::EventKind;
use russh::Channel;
use russh::server::Msg;
use russh_sftp::protocol::{
    Attrs, Data, ExtendedReply, File, FileAttributes, Handle, Name, OpenFlags, Packet, Status,
    StatusCode, Version,
};
use russh_sftp::server::StatusReply;

use crate::store::{FileStat, ImageName, NameError, StoreError, Upload};
use crate::unit::Unit;

/// Largest read or write we accept (OpenSSH clients use up to this with the
/// limits extension: bigger writes, fewer round trips).
const MAX_IO: u64 = 255 * 1024;
const MAX_PACKET: u32 = 256 * 1024 + 1024;
const MAX_HANDLES: usize = 64;

/// Serves SFTP on `channel` until the client leaves.
pub async fn serve(unit: Arc<Unit>, channel: Channel<Msg>) {
    let cfg = russh_sftp::server::Config {
        max_client_packet_len: MAX_PACKET + 4096,
    };
    russh_sftp::server::run_with_config(channel.into_stream(), Sftp::new(unit), cfg).await;
}

enum Open {
    Read(Arc<FsFile>),
    Write { name: ImageName, upload: Upload },
    Dir { listed: bool },
}

pub struct Sftp {
    unit: Arc<Unit>,
    handles: HashMap<String, Open>,
    next: u64,
}

type Reply<T> = Result<T, StatusReply>;

impl Sftp {
    fn new(unit: Arc<Unit>) -> Sftp {
        Sftp {
            unit,
            handles: HashMap::new(),
            next: 0,
        }
    }

    fn add(&mut self, open: Open) -> Reply<String> {
        if self.handles.len() >= MAX_HANDLES {
            return Err(
                StatusCode::Failure.with_message(format!("more than {MAX_HANDLES} open files"))
            );
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
}

impl Drop for Sftp {
    fn drop(&mut self) {
        // The connection went away: open uploads stay as resumable partials.
        for (_, open) in self.handles.drain() {
            if let Open::Write { name, upload } = open {
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
            Open::Read(f) => {
                let md = f.metadata().map_err(io_err)?;
                file_attrs(FileStat {
                    size: md.len(),
                    mtime: std::os::unix::fs::MetadataExt::mtime(&md).max(0) as u64,
                    partial: false,
                })
            }
            Open::Write { upload, .. } => file_attrs(FileStat {
                size: upload.len(),
                mtime: crate::unit::now(),
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
        let name = ImageName::from_client_path(&filename)
            .map_err(name_err)?
            .ok_or_else(|| {
                StatusCode::Failure.with_message("/ is the image store folder, not a file")
            })?;
        let writing = pflags.intersects(
            OpenFlags::WRITE | OpenFlags::APPEND | OpenFlags::CREATE | OpenFlags::TRUNCATE,
        );
        if !writing {
            let path = self.unit.store.path_of(&name);
            if self.unit.store.entry(name.as_str()).is_none() {
                return Err(no_such(&name));
            }
            let file = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(path)
                .map_err(|_| no_such(&name))?;
            let handle = self.add(Open::Read(Arc::new(file)))?;
            return Ok(Handle { id, handle });
        }
        let existing = self.unit.store.stat(&name);
        if pflags.contains(OpenFlags::EXCLUDE) && existing.is_some() {
            return Err(StatusCode::Failure.with_message(format!("{name} already exists")));
        }
        // Resume only an interrupted upload; anything else starts afresh
        // (a complete image is replaced only when the new upload completes).
        let resume = !pflags.contains(OpenFlags::TRUNCATE) && existing.is_some_and(|s| s.partial);
        let upload = self
            .unit
            .store
            .begin_upload(&name, !resume, attrs.size)
            .map_err(store_err)?;
        if resume {
            tracing::info!("resuming the upload of {name} at {} bytes", upload.len());
        }
        self.unit.changed();
        let handle = self.add(Open::Write { name, upload })?;
        Ok(Handle { id, handle })
    }

    async fn write(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        data: Vec<u8>,
    ) -> Reply<Status> {
        match self.handles.get(&handle).ok_or_else(bad_handle)? {
            Open::Write { upload, .. } => {
                upload.write_at(offset, data).await.map_err(io_err)?;
                Ok(ok(id))
            }
            _ => Err(StatusCode::PermissionDenied.with_message("file not open for writing")),
        }
    }

    async fn read(&mut self, id: u32, handle: String, offset: u64, len: u32) -> Reply<Data> {
        let Open::Read(file) = self.handles.get(&handle).ok_or_else(bad_handle)? else {
            return Err(StatusCode::PermissionDenied.with_message("file not open for reading"));
        };
        let file = file.clone();
        let len = (len as u64).min(MAX_IO) as usize;
        let data = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; len];
            let mut n = 0;
            while n < len {
                match file.read_at(&mut buf[n..], offset + n as u64) {
                    Ok(0) => break,
                    Ok(k) => n += k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
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
        match self.handles.remove(&handle).ok_or_else(bad_handle)? {
            Open::Write { name, upload } => {
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
            let mtime = e.added;
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
        let name = ImageName::from_client_path(&filename)
            .map_err(name_err)?
            .ok_or_else(|| {
                StatusCode::PermissionDenied.with_message("cannot remove the store itself")
            })?;
        self.unit.store.remove(&name).map_err(store_err)?;
        self.unit
            .event(EventKind::ImageRemoved, format!("{name} removed"));
        Ok(ok(id))
    }

    async fn rename(&mut self, id: u32, oldpath: String, newpath: String) -> Reply<Status> {
        self.do_rename(&oldpath, &newpath, false)?;
        Ok(ok(id))
    }

    async fn mkdir(&mut self, _id: u32, _path: String, _attrs: FileAttributes) -> Reply<Status> {
        Err(StatusCode::OpUnsupported.with_message("the image store has no folders"))
    }

    async fn rmdir(&mut self, _id: u32, _path: String) -> Reply<Status> {
        Err(StatusCode::OpUnsupported.with_message("the image store has no folders"))
    }

    async fn setstat(&mut self, id: u32, path: String, attrs: FileAttributes) -> Reply<Status> {
        // Times and modes are accepted and ignored (`put -p`); the catalog
        // keeps its own time added. Sizes of complete images never change.
        let current = self.stat_path(&path)?;
        if let Some(size) = attrs.size
            && Some(size) != current.size
        {
            return Err(
                StatusCode::PermissionDenied.with_message("stored images cannot be resized")
            );
        }
        Ok(ok(id))
    }

    async fn fsetstat(&mut self, id: u32, handle: String, attrs: FileAttributes) -> Reply<Status> {
        match self.handles.get(&handle).ok_or_else(bad_handle)? {
            Open::Write { upload, .. } => {
                if let Some(size) = attrs.size {
                    upload.set_len(size).await.map_err(io_err)?;
                }
                Ok(ok(id))
            }
            _ => Ok(ok(id)),
        }
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
                if let Open::Write { upload, .. } =
                    self.handles.get(&handle).ok_or_else(bad_handle)?
                {
                    upload.fsync().await.map_err(io_err)?;
                }
                Ok(Packet::Status(ok(id)))
            }
            "posix-rename@openssh.com" => {
                let (from, to) = (args.string()?, args.string()?);
                self.do_rename(&from, &to, true)?;
                Ok(Packet::Status(ok(id)))
            }
            _ => Err(StatusCode::OpUnsupported.into()),
        }
    }
}

impl Sftp {
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
