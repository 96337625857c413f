//! The image store: a directory on the unit's disk, and its catalog.
//!
//! ```text
//! STORE/images/NAME             complete images and sidecars (what clients see)
//! STORE/.copyunit/partial/NAME  uploads in progress or interrupted (resumable)
//! STORE/.copyunit/catalog.json  metadata: size, SHA-256, time added, format
//! ```
//!
//! Invariants:
//! - A file appears under `images/` only by an atomic rename of a fully
//!   written, fsynced partial: nothing truncated is ever listed.
//! - The catalog is rewritten atomically (temp file, fsync, rename, fsync dir).
//!   On start it is reconciled with `images/`: a file the catalog does not
//!   know (unitd died between rename and catalog write) is hashed again.
//! - Replacing an image renames over it: a job that opened the old file keeps
//!   reading the old inode.

pub mod catalog;
pub mod names;
pub mod sidecar;
mod sizer;
pub mod upload;

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use copyunit_model::{Image, ImageFormat, ImageState, Partial, StoreUsage};

pub use catalog::{Entry, write_atomic};
pub use names::{ImageName, NameError};
pub use sidecar::FileRole;
pub use upload::{Upload, UploadProgress};

use catalog::{Catalog, Order, sync_dir};
use upload::unix;

/// Partials untouched for this long are removed at start.
const STALE_PARTIAL_SECS: u64 = 14 * 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("no image named `{0}` in the store")]
    NotFound(String),
    #[error("an upload of `{0}` is already in progress")]
    Busy(String),
    #[error("`{0}` already exists")]
    Exists(String),
    #[error("the image store is full")]
    Full,
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

impl StoreError {
    fn io(context: impl Into<String>, source: io::Error) -> Self {
        if source.raw_os_error() == Some(nix::libc::ENOSPC) {
            return StoreError::Full;
        }
        StoreError::Io {
            context: context.into(),
            source,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Size and times of a file as SFTP shows it.
#[derive(Debug, Clone, Copy)]
pub struct FileStat {
    pub size: u64,
    pub mtime: u64,
    pub partial: bool,
}

pub struct Store {
    root: PathBuf,
    partial: PathBuf,
    volatile: bool,
    shared: Arc<Shared>,
    uploads: Uploads,
    /// Uploads closed by their client and being published: their partial
    /// is not an interrupted upload.
    publishing: Mutex<BTreeSet<String>>,
}

/// What the publish path and the sizer thread share with the store.
struct Shared {
    images: PathBuf,
    catalog: Catalog,
    /// Names of compressed images whose decoded size is to be counted.
    sizer: sizer::Queue,
}

/// Uploads whose writer thread is alive, by name. The writer removes its own
/// entry when it exits, so a new upload of a name never races the last
/// writes of an interrupted one.
type Uploads = Arc<Mutex<std::collections::BTreeMap<String, Arc<UploadProgress>>>>;

impl Store {
    /// Opens (creating if needed) the store at `root` and reconciles its
    /// catalog with the files actually there. A store too full to save the
    /// reconciled catalog still opens (see [`StoreUsage::full`]).
    pub fn open(root: &Path, volatile: bool) -> Result<Store> {
        let meta = root.join(".copyunit");
        let images = root.join("images");
        let store = Store {
            root: root.to_path_buf(),
            partial: meta.join("partial"),
            volatile,
            shared: Arc::new_cyclic(|weak| Shared {
                catalog: Catalog::new(meta.join("catalog.json"), images.clone()),
                images: images.clone(),
                sizer: sizer::Queue::start(weak.clone()),
            }),
            uploads: Arc::default(),
            publishing: Mutex::default(),
        };
        for dir in [&store.shared.images, &store.partial] {
            fs::create_dir_all(dir)
                .map_err(|e| StoreError::io(format!("creating {}", dir.display()), e))?;
        }
        store.recover()?;
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn catalog_ref(&self) -> &Catalog {
        &self.shared.catalog
    }

    fn uploads_lock(
        &self,
    ) -> MutexGuard<'_, std::collections::BTreeMap<String, Arc<UploadProgress>>> {
        self.uploads.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publishing_lock(&self) -> MutexGuard<'_, BTreeSet<String>> {
        self.publishing.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn recover(&self) -> Result<()> {
        let on_disk = self.catalog_ref().load()?;
        let mut known = on_disk.clone();
        let mut entries = catalog::Entries::new();
        let images = &self.shared.images;
        let dir = fs::read_dir(images)
            .map_err(|e| StoreError::io(format!("listing {}", images.display()), e))?;
        for item in dir.flatten() {
            let Ok(name) = item.file_name().into_string() else {
                continue;
            };
            let Ok(md) = item.path().symlink_metadata() else {
                continue;
            };
            if !md.is_file() || ImageName::new(&name).is_err() {
                tracing::warn!(
                    "ignoring {} in the store: not a plain file with a valid name",
                    item.path().display()
                );
                continue;
            }
            let entry = match known.remove(&name) {
                Some(e)
                    if e.inode == md.ino() && e.size == md.len() && e.mtime_ns == mtime_ns(&md) =>
                {
                    e
                }
                _ => {
                    tracing::info!(
                        "hashing {name}: not in the catalog (recovering after a crash?)"
                    );
                    describe(&name, &item.path(), unix(SystemTime::now()))?
                }
            };
            entries.insert(name, entry);
        }
        for name in known.keys() {
            tracing::warn!("{name} is in the catalog but its file is gone: dropped");
        }
        let to_size: Vec<String> = entries
            .values()
            .filter(|e| e.needs_sizing())
            .map(|e| e.name.clone())
            .collect();
        self.catalog_ref().start_with(entries, &on_disk);
        for name in to_size {
            self.shared.sizer.push(name);
        }
        self.clean_partials();
        Ok(())
    }

    fn clean_partials(&self) {
        let Ok(dir) = fs::read_dir(&self.partial) else {
            return;
        };
        let now = SystemTime::now();
        for item in dir.flatten() {
            let stale = item
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age.as_secs() > STALE_PARTIAL_SECS);
            if stale {
                tracing::info!("removing stale partial upload {:?}", item.file_name());
                let _ = fs::remove_file(item.path());
            }
        }
    }

    /// One image by name, as [`Store::catalog`] describes it.
    pub fn image(&self, name: &str) -> Option<Image> {
        self.catalog().into_iter().find(|i| i.name == name)
    }

    /// Every complete file (images and sidecars), for directory listings.
    pub fn entries(&self) -> Vec<Entry> {
        self.catalog_ref().entries().into_values().collect()
    }

    pub fn entry(&self, name: &str) -> Option<Entry> {
        self.catalog_ref().get(name)
    }

    /// Uploads in flight, for the model.
    pub fn uploads(&self) -> Vec<copyunit_model::Upload> {
        self.uploads_lock().values().map(|p| p.to_model()).collect()
    }

    /// Interrupted uploads: partial files no writer is working on, kept for
    /// a resume (`reput`, `put -a`, FileZilla, WinSCP) and holding store
    /// space until resumed or removed (`rm NAME`). Never an image: nothing
    /// here can be copied.
    pub fn partials(&self) -> Vec<Partial> {
        let Ok(dir) = fs::read_dir(&self.partial) else {
            return Vec::new();
        };
        let busy: BTreeSet<String> = self
            .uploads_lock()
            .keys()
            .cloned()
            .chain(self.publishing_lock().iter().cloned())
            .collect();
        let mut out: Vec<Partial> = dir
            .flatten()
            .filter_map(|item| {
                let name = item.file_name().into_string().ok()?;
                ImageName::new(&name).ok()?;
                if busy.contains(&name) {
                    return None;
                }
                let md = item.path().symlink_metadata().ok()?;
                md.is_file().then(|| Partial {
                    name,
                    bytes: md.len(),
                    since: md.mtime().max(0) as u64,
                })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Path of a complete file. Open it to pin its content: a later upload of
    /// the same name replaces the directory entry, not the open file.
    pub fn path_of(&self, name: &ImageName) -> PathBuf {
        self.shared.images.join(name.as_str())
    }

    /// The bmap sidecar stored for an image, if any.
    pub fn bmap_for(&self, image: &str) -> Option<PathBuf> {
        self.catalog_ref()
            .entries()
            .values()
            .find(|e| e.role == FileRole::Bmap && sidecar::bmap_matches(&e.name, image))
            .map(|e| self.shared.images.join(&e.name))
    }

    fn partial_path(&self, name: &ImageName) -> PathBuf {
        self.partial.join(name.as_str())
    }

    /// What a client sees at `name`: an interrupted upload takes precedence,
    /// so `sftp reput` finds the size it must resume from.
    pub fn stat(&self, name: &ImageName) -> Option<FileStat> {
        if let Ok(md) = fs::symlink_metadata(self.partial_path(name))
            && md.is_file()
        {
            return Some(FileStat {
                size: md.len(),
                mtime: md.mtime().max(0) as u64,
                partial: true,
            });
        }
        let md = fs::symlink_metadata(self.path_of(name)).ok()?;
        md.is_file().then(|| FileStat {
            size: md.len(),
            mtime: md.mtime().max(0) as u64,
            partial: false,
        })
    }

    /// Starts (or, without `truncate`, resumes) an upload of `name`.
    pub fn begin_upload(
        &self,
        name: &ImageName,
        truncate: bool,
        expected: Option<u64>,
    ) -> Result<Upload> {
        let mut uploads = self.uploads_lock();
        if uploads.contains_key(name.as_str()) || self.publishing_lock().contains(name.as_str()) {
            return Err(StoreError::Busy(name.to_string()));
        }
        let registry = self.uploads.clone();
        let key = name.to_string();
        let on_exit = Box::new(move || {
            registry
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
        });
        let up = Upload::start(
            &self.partial_path(name),
            name.as_str(),
            truncate,
            expected,
            on_exit,
        )
        .map_err(|e| StoreError::io(format!("starting the upload of {name}"), e))?;
        uploads.insert(name.to_string(), up.progress.clone());
        Ok(up)
    }

    /// True while the writer of an upload of `name` is still running.
    pub fn upload_active(&self, name: &ImageName) -> bool {
        self.uploads_lock().contains_key(name.as_str())
    }

    /// Completes an upload: drain, fsync, hash, then atomically publish (on
    /// a blocking thread). All or nothing: `Ok` means the image is stored
    /// and in the catalog on disk; an error means it is not, and the bytes
    /// stay an interrupted upload (resumable, or freed with `rm NAME`).
    pub async fn finish_upload(&self, name: &ImageName, up: Upload) -> Result<Entry> {
        let partial = up.partial.clone();
        self.publishing_lock().insert(name.to_string());
        let result = async {
            let written = up
                .finish()
                .await
                .map_err(|e| StoreError::io(format!("storing {name}"), e))?;
            let (shared, name2) = (self.shared.clone(), name.clone());
            tokio::task::spawn_blocking(move || shared.publish(&name2, &partial, written.sha256))
                .await
                .map_err(|e| StoreError::io(format!("storing {name}"), io::Error::other(e)))?
        }
        .await;
        self.publishing_lock().remove(name.as_str());
        result
    }

    /// Where a job may build a new image before [`Store::adopt`] publishes
    /// it (not visible to clients, not a resumable upload).
    pub fn scratch_path(&self, name: &ImageName) -> PathBuf {
        let dir = self.root.join(".copyunit").join("incoming");
        let _ = fs::create_dir_all(&dir);
        dir.join(name.as_str())
    }

    /// Publishes a complete, hashed file built by a job (e.g. a drive read
    /// back into an image). Blocking: call it from a job's thread.
    pub fn adopt(&self, name: &ImageName, path: &Path, sha256: String) -> Result<Entry> {
        File::open(path)
            .and_then(|f| f.sync_all())
            .map_err(|e| StoreError::io(format!("storing {name}"), e))?;
        self.shared.publish(name, path, sha256)
    }

    /// Removes a complete file, or else an interrupted upload of that name.
    /// Space is freed first, so this works on a full store.
    pub fn remove(&self, name: &ImageName) -> Result<()> {
        if self.catalog_ref().contains(name.as_str()) {
            let path = self.path_of(name);
            let images = self.shared.images.clone();
            let key = name.to_string();
            return self.catalog_ref().change(
                Order::ActFirst,
                |entries| {
                    entries.remove(&key);
                    Ok(())
                },
                || {
                    match fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(StoreError::io(format!("removing {name}"), e)),
                    }
                    sync_dir(&images).map_err(|e| StoreError::io(format!("removing {name}"), e))
                },
            );
        }
        if self.upload_active(name) || self.publishing_lock().contains(name.as_str()) {
            return Err(StoreError::Busy(name.to_string()));
        }
        match fs::remove_file(self.partial_path(name)) {
            Ok(()) => {
                tracing::info!("interrupted upload {name} removed");
                self.catalog_ref().retry_save();
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::NotFound(name.to_string()))
            }
            Err(e) => Err(StoreError::io(format!("removing {name}"), e)),
        }
    }

    /// Renames a complete file (WinSCP uploads `x.filepart`, then renames).
    pub fn rename(&self, from: &ImageName, to: &ImageName, overwrite: bool) -> Result<()> {
        let (src, dst) = (self.path_of(from), self.path_of(to));
        let images = self.shared.images.clone();
        self.catalog_ref().change(
            Order::SaveFirst,
            |entries| {
                let mut e = entries
                    .remove(from.as_str())
                    .ok_or_else(|| StoreError::NotFound(from.to_string()))?;
                if !overwrite && entries.contains_key(to.as_str()) {
                    return Err(StoreError::Exists(to.to_string()));
                }
                e.name = to.to_string();
                e.role = FileRole::of(to.as_str());
                entries.insert(to.to_string(), e);
                Ok(())
            },
            || {
                fs::rename(&src, &dst)
                    .map_err(|e| StoreError::io(format!("renaming {from}"), e))?;
                sync_dir(&images).map_err(|e| StoreError::io(format!("renaming {from}"), e))
            },
        )
    }

    /// Sets the modification time of a complete file, as a client asked
    /// (`setstat`: rclone, `touch` through sshfs). The time lives on the file
    /// itself; the catalog's identity of the file follows it, so a restart
    /// does not take it for a file changed behind our back. Blocking.
    pub fn set_mtime(&self, name: &ImageName, mtime: SystemTime) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        if !self.catalog_ref().contains(name.as_str()) {
            return Err(StoreError::NotFound(name.to_string()));
        }
        let ctx = || format!("setting the time of {name}");
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(self.path_of(name))
            .map_err(|e| StoreError::io(ctx(), e))?;
        file.set_times(fs::FileTimes::new().set_modified(mtime))
            .map_err(|e| StoreError::io(ctx(), e))?;
        let md = file.metadata().map_err(|e| StoreError::io(ctx(), e))?;
        self.catalog_ref().change(
            Order::ActFirst,
            |entries| {
                if let Some(e) = entries.get_mut(name.as_str())
                    && e.inode == md.ino()
                {
                    e.mtime_ns = mtime_ns(&md);
                }
                Ok(())
            },
            || Ok(()),
        )
    }

    /// Space on the store's filesystem, and what holds it.
    pub fn usage(&self) -> StoreUsage {
        let images_bytes = self.catalog_ref().bytes();
        let partial_bytes = self.partials().iter().map(|p| p.bytes).sum();
        let (total, free) = match nix::sys::statvfs::statvfs(&self.root) {
            Ok(s) => {
                let frag = s.fragment_size();
                (s.blocks() * frag, s.blocks_available() * frag)
            }
            Err(_) => (0, 0),
        };
        StoreUsage {
            path: self.root.display().to_string(),
            total_bytes: total,
            free_bytes: free,
            used_bytes: total.saturating_sub(free),
            images_bytes,
            partial_bytes,
            full: self.catalog_ref().full() || (total > 0 && free == 0),
            volatile: self.volatile,
        }
    }

    /// Sentences for the event log the store has to say (full, catalog not
    /// saved) since the last call.
    pub fn take_notices(&self) -> Vec<String> {
        self.catalog_ref().take_notices()
    }

    /// Raw statvfs of the store, for `statvfs@openssh.com`.
    pub fn statvfs(&self) -> io::Result<nix::sys::statvfs::Statvfs> {
        nix::sys::statvfs::statvfs(&self.root).map_err(io::Error::from)
    }
}

impl Shared {
    /// Renames a complete file into `images/` and records it, all or
    /// nothing: the catalog naming it is saved first (its inode and mtime
    /// survive the rename), then the file is renamed; if the save fails
    /// nothing changed, if the rename fails the old catalog is saved again.
    fn publish(&self, name: &ImageName, from: &Path, sha256: String) -> Result<Entry> {
        let ctx = || format!("publishing {name}");
        sidecar::check_content(name.as_str(), from).map_err(|e| StoreError::io(ctx(), e))?;
        let mut file = File::open(from).map_err(|e| StoreError::io(ctx(), e))?;
        let md = file.metadata().map_err(|e| StoreError::io(ctx(), e))?;
        let head = read_head(&mut file).map_err(|e| StoreError::io(ctx(), e))?;
        drop(file);
        let format = ImageFormat::detect(&head);
        let entry = Entry {
            name: name.to_string(),
            size: md.len(),
            sha256,
            added: unix(SystemTime::now()),
            format,
            role: FileRole::of(name.as_str()),
            inode: md.ino(),
            mtime_ns: mtime_ns(&md),
            content_size: quick_content_size(from, format, md.len()),
            decode_error: None,
        };
        let dest = self.images.join(name.as_str());
        let added = entry.clone();
        self.catalog.change(
            Order::SaveFirst,
            |entries| {
                entries.insert(name.to_string(), added);
                Ok(())
            },
            || {
                fs::rename(from, &dest).map_err(|e| StoreError::io(ctx(), e))?;
                sync_dir(&self.images).map_err(|e| StoreError::io(ctx(), e))
            },
        )?;
        tracing::info!(name = %name, size = entry.size, sha256 = %entry.sha256, "image stored");
        if entry.needs_sizing() {
            self.sizer.push(entry.name.clone());
        }
        Ok(entry)
    }
}

/// Computes a fresh entry for the file at `path` (one pass: hash + head).
fn describe(name: &str, path: &Path, added: u64) -> Result<Entry> {
    let ctx = || format!("reading {}", path.display());
    let mut file = File::open(path).map_err(|e| StoreError::io(ctx(), e))?;
    let md = file.metadata().map_err(|e| StoreError::io(ctx(), e))?;
    // One pass: the head decides the format and is the start of the hash.
    let head = read_head(&mut file).map_err(|e| StoreError::io(ctx(), e))?;
    let sha256 = upload::hash_reader(&mut head.as_slice().chain(&mut file))
        .map_err(|e| StoreError::io(ctx(), e))?;
    let format = ImageFormat::detect(&head);
    Ok(Entry {
        name: name.to_string(),
        size: md.len(),
        sha256,
        added,
        format,
        role: FileRole::of(name),
        inode: md.ino(),
        mtime_ns: mtime_ns(&md),
        content_size: quick_content_size(path, format, md.len()),
        decode_error: None,
    })
}

/// The decoded size where it is known without decoding: the file's own
/// size for raw and ISO, the index of a single-stream xz file, the entry
/// of a zip archive. gzip's ISIZE (modulo 4 GiB, per member), bzip2 (none)
/// and zstd (per frame) are not trusted: those are decoded once by the
/// sizer thread.
fn quick_content_size(path: &Path, format: ImageFormat, size: u64) -> Option<u64> {
    match format {
        ImageFormat::Raw | ImageFormat::Iso => Some(size),
        ImageFormat::Xz | ImageFormat::Zip => copyunit_drives::inspect(path)
            .ok()
            .and_then(|i| i.content_size),
        ImageFormat::Gzip | ImageFormat::Bzip2 | ImageFormat::Zstd => None,
    }
}

fn to_image(e: &Entry) -> Image {
    Image {
        name: e.name.clone(),
        size: e.size,
        sha256: e.sha256.clone(),
        added: e.added,
        format: e.format,
        // Catalogs from before content_size was recorded: raw is its size.
        content_size: e
            .content_size
            .or((!e.format.is_compressed()).then_some(e.size)),
        bmap: false,
        expected_sha256: None,
        state: match &e.decode_error {
            Some(why) => ImageState::Corrupt(format!("it does not decompress: {why}")),
            None => ImageState::Ok,
        },
    }
}

impl Store {
    /// Complete images (sidecars excluded) by name, with what their sidecars
    /// say folded in (bmap present, expected hash, corrupt flag). This is what
    /// every front-end lists. Claims are re-read whenever a file arrives,
    /// leaves or is renamed, so an image is flagged whichever arrives first,
    /// the image or its checksum.
    pub fn catalog(&self) -> Vec<Image> {
        let (entries, claims) = self.catalog_ref().with_claims();
        entries
            .values()
            .filter(|e| e.role == FileRole::Image)
            .map(|e| {
                let mut img = to_image(e);
                img.bmap = entries
                    .values()
                    .any(|s| s.role == FileRole::Bmap && sidecar::bmap_matches(&s.name, &e.name));
                if let Some(want) = claims.get(&e.name) {
                    img.expected_sha256 = Some(want.clone());
                    if *want != e.sha256 && img.state == ImageState::Ok {
                        img.state = ImageState::Corrupt(format!(
                            "SHA-256 is {} but its checksum file says {}",
                            &e.sha256[..16.min(e.sha256.len())],
                            &want[..16.min(want.len())]
                        ));
                    }
                }
                img
            })
            .collect()
    }
}

fn mtime_ns(md: &fs::Metadata) -> i128 {
    md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128
}

/// The first bytes of a file, as many as format detection looks at.
fn read_head(r: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut head = vec![0u8; ImageFormat::DETECT_LEN];
    let n = read_full(r, &mut head)?;
    head.truncate(n);
    Ok(head)
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    fn store(name: &str) -> (Store, PathBuf) {
        let dir = std::env::temp_dir().join(format!("unitd-store-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        (Store::open(&dir, false).unwrap(), dir)
    }

    fn sha(data: &[u8]) -> String {
        hex::encode(sha2::Sha256::digest(data))
    }

    #[tokio::test]
    async fn out_of_order_and_rewritten_chunks_still_hash_the_file_as_stored() {
        let (s, dir) = store("order");
        let name = ImageName::new("x.img").unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let up = s.begin_upload(&name, true, None).unwrap();
        up.write_at(200_000, data[200_000..].to_vec())
            .await
            .unwrap();
        up.write_at(0, data[..100_000].to_vec()).await.unwrap();
        up.write_at(100_000, vec![0xFF; 100_000]).await.unwrap();
        up.write_at(100_000, data[100_000..200_000].to_vec())
            .await
            .unwrap();
        let e = s.finish_upload(&name, up).await.unwrap();
        assert_eq!(e.sha256, sha(&data));
        assert_eq!(s.catalog()[0].name, "x.img");
        fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_resumed_upload_hashes_the_prefix_already_on_disk() {
        let (s, dir) = store("resume");
        let name = ImageName::new("r.img").unwrap();
        let data = vec![42u8; 50_000];
        let up = s.begin_upload(&name, true, None).unwrap();
        up.write_at(0, data[..20_000].to_vec()).await.unwrap();
        drop(up); // the connection broke
        while s.upload_active(&name) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(s.catalog().is_empty(), "a partial is not an image");
        assert_eq!(
            s.stat(&name).map(|st| (st.size, st.partial)),
            Some((20_000, true))
        );
        let up = s.begin_upload(&name, false, None).unwrap();
        up.write_at(20_000, data[20_000..].to_vec()).await.unwrap();
        let e = s.finish_upload(&name, up).await.unwrap();
        assert_eq!((e.size, e.sha256), (50_000, sha(&data)));
        fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn partials_are_interrupted_uploads_only_and_rm_clears_them() {
        let (s, dir) = store("partials");
        let name = ImageName::new("p.img").unwrap();
        let up = s.begin_upload(&name, true, None).unwrap();
        up.write_at(0, vec![7u8; 30_000]).await.unwrap();
        up.fsync().await.unwrap();
        assert!(
            s.partials().is_empty(),
            "a running upload is not interrupted"
        );
        drop(up);
        while s.upload_active(&name) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let p = s.partials();
        assert_eq!(
            p.iter()
                .map(|p| (p.name.as_str(), p.bytes))
                .collect::<Vec<_>>(),
            [("p.img", 30_000)]
        );
        assert_eq!(s.usage().partial_bytes, 30_000);
        assert!(s.catalog().is_empty() && s.image("p.img").is_none());
        s.remove(&name).unwrap();
        assert!(s.partials().is_empty());
        assert!(matches!(s.remove(&name), Err(StoreError::NotFound(_))));
        fs::remove_dir_all(dir).unwrap();
    }
}
