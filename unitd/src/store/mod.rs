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

pub mod names;
pub mod sidecar;
pub mod upload;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use copyunit_model::{Image, ImageFormat, ImageState, StoreUsage};
use serde::{Deserialize, Serialize};

pub use names::{ImageName, NameError};
pub use sidecar::FileRole;
pub use upload::{Upload, UploadProgress};

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

/// Metadata of one complete file in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub added: u64,
    pub format: ImageFormat,
    pub role: FileRole,
    /// Identity of the file the metadata describes, to notice changes behind
    /// our back (a crash between rename and catalog write).
    pub inode: u64,
    pub mtime_ns: i128,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CatalogFile {
    version: u32,
    entries: Vec<Entry>,
}

/// Size and times of a file as SFTP shows it.
#[derive(Debug, Clone, Copy)]
pub struct FileStat {
    pub size: u64,
    pub mtime: u64,
    pub partial: bool,
}

pub struct Store {
    root: PathBuf,
    images: PathBuf,
    partial: PathBuf,
    catalog_path: PathBuf,
    volatile: bool,
    inner: Mutex<Inner>,
    uploads: Uploads,
}

#[derive(Default)]
struct Inner {
    entries: BTreeMap<String, Entry>,
    /// What the checksum sidecars say, by image name: read from the sidecar
    /// files whenever the entries change, not on every snapshot.
    claims: BTreeMap<String, String>,
}

/// Uploads whose writer thread is alive, by name. The writer removes its own
/// entry when it exits, so a new upload of a name never races the last
/// writes of an interrupted one.
type Uploads = Arc<Mutex<BTreeMap<String, Arc<UploadProgress>>>>;

impl Store {
    /// Opens (creating if needed) the store at `root` and reconciles its
    /// catalog with the files actually there.
    pub fn open(root: &Path, volatile: bool) -> Result<Store> {
        let meta = root.join(".copyunit");
        let store = Store {
            root: root.to_path_buf(),
            images: root.join("images"),
            partial: meta.join("partial"),
            catalog_path: meta.join("catalog.json"),
            volatile,
            inner: Mutex::new(Inner::default()),
            uploads: Arc::default(),
        };
        for dir in [&store.images, &store.partial] {
            fs::create_dir_all(dir)
                .map_err(|e| StoreError::io(format!("creating {}", dir.display()), e))?;
        }
        store.recover()?;
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn uploads_lock(&self) -> MutexGuard<'_, BTreeMap<String, Arc<UploadProgress>>> {
        self.uploads.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn recover(&self) -> Result<()> {
        let saved: CatalogFile = match fs::read(&self.catalog_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!("catalog unreadable ({e}): rebuilding it from the files");
                CatalogFile::default()
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => CatalogFile::default(),
            Err(e) => return Err(StoreError::io("reading the catalog", e)),
        };
        let mut known: BTreeMap<String, Entry> = saved
            .entries
            .into_iter()
            .map(|e| (e.name.clone(), e))
            .collect();
        let mut entries = BTreeMap::new();
        let dir = fs::read_dir(&self.images)
            .map_err(|e| StoreError::io(format!("listing {}", self.images.display()), e))?;
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
                    self.describe(&name, &item.path(), unix(SystemTime::now()))?
                }
            };
            entries.insert(name, entry);
        }
        for name in known.keys() {
            tracing::warn!("{name} is in the catalog but its file is gone: dropped");
        }
        self.lock().entries = entries;
        self.entries_changed()?;
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

    /// Computes a fresh entry for the file at `path` (one pass: hash + head).
    fn describe(&self, name: &str, path: &Path, added: u64) -> Result<Entry> {
        let ctx = || format!("reading {}", path.display());
        let mut file = File::open(path).map_err(|e| StoreError::io(ctx(), e))?;
        let md = file.metadata().map_err(|e| StoreError::io(ctx(), e))?;
        // One pass: the head decides the format and is the start of the hash.
        let head = read_head(&mut file).map_err(|e| StoreError::io(ctx(), e))?;
        let sha256 = upload::hash_reader(&mut head.as_slice().chain(&mut file))
            .map_err(|e| StoreError::io(ctx(), e))?;
        Ok(Entry {
            name: name.to_string(),
            size: md.len(),
            sha256,
            added,
            format: ImageFormat::detect(&head),
            role: FileRole::of(name),
            inode: md.ino(),
            mtime_ns: mtime_ns(&md),
        })
    }

    /// After any change of the entries: re-read the sidecars' claims and
    /// save the catalog.
    fn entries_changed(&self) -> Result<()> {
        let entries = self.lock().entries.clone();
        let claims = claims(&entries, self);
        self.lock().claims = claims;
        self.persist()
    }

    fn persist(&self) -> Result<()> {
        let entries: Vec<Entry> = self.lock().entries.values().cloned().collect();
        let bytes = serde_json::to_vec_pretty(&CatalogFile {
            version: 1,
            entries,
        })
        .map_err(|e| StoreError::io("encoding the catalog", io::Error::other(e)))?;
        write_atomic(&self.catalog_path, &bytes)
            .map_err(|e| StoreError::io("saving the catalog", e))
    }

    /// One image by name, as [`Store::catalog`] describes it.
    pub fn image(&self, name: &str) -> Option<Image> {
        self.catalog().into_iter().find(|i| i.name == name)
    }

    /// Every complete file (images and sidecars), for directory listings.
    pub fn entries(&self) -> Vec<Entry> {
        self.lock().entries.values().cloned().collect()
    }

    pub fn entry(&self, name: &str) -> Option<Entry> {
        self.lock().entries.get(name).cloned()
    }

    /// Uploads in flight, for the model.
    pub fn uploads(&self) -> Vec<copyunit_model::Upload> {
        self.uploads_lock().values().map(|p| p.to_model()).collect()
    }

    /// Path of a complete file. Open it to pin its content: a later upload of
    /// the same name replaces the directory entry, not the open file.
    pub fn path_of(&self, name: &ImageName) -> PathBuf {
        self.images.join(name.as_str())
    }

    /// The bmap sidecar stored for an image, if any.
    pub fn bmap_for(&self, image: &str) -> Option<PathBuf> {
        let inner = self.lock();
        inner
            .entries
            .values()
            .find(|e| e.role == FileRole::Bmap && sidecar::bmap_matches(&e.name, image))
            .map(|e| self.images.join(&e.name))
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
        if uploads.contains_key(name.as_str()) {
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

    /// Completes an upload: drain, fsync, hash, then atomically publish.
    pub async fn finish_upload(&self, name: &ImageName, up: Upload) -> Result<Entry> {
        let partial = up.partial.clone();
        let written = up.finish().await;
        let written = written.map_err(|e| StoreError::io(format!("storing {name}"), e))?;
        self.publish(name, &partial, written.sha256)
    }

    /// Where a job may build a new image before [`Store::adopt`] publishes
    /// it (not visible to clients, not a resumable upload).
    pub fn scratch_path(&self, name: &ImageName) -> PathBuf {
        let dir = self.root.join(".copyunit").join("incoming");
        let _ = fs::create_dir_all(&dir);
        dir.join(name.as_str())
    }

    /// Publishes a complete, hashed file built by a job (e.g. a drive read
    /// back into an image).
    pub fn adopt(&self, name: &ImageName, path: &Path, sha256: String) -> Result<Entry> {
        File::open(path)
            .and_then(|f| f.sync_all())
            .map_err(|e| StoreError::io(format!("storing {name}"), e))?;
        self.publish(name, path, sha256)
    }

    /// Renames a complete file into `images/` and records it.
    fn publish(&self, name: &ImageName, from: &Path, sha256: String) -> Result<Entry> {
        sidecar::check_content(name.as_str(), from)
            .map_err(|e| StoreError::io(format!("storing {name}"), e))?;
        let head = File::open(from)
            .and_then(|mut f| read_head(&mut f))
            .map_err(|e| StoreError::io(format!("reading {name}"), e))?;
        let dest = self.path_of(name);
        fs::rename(from, &dest).map_err(|e| StoreError::io(format!("publishing {name}"), e))?;
        sync_dir(&self.images).map_err(|e| StoreError::io(format!("publishing {name}"), e))?;
        let md = fs::symlink_metadata(&dest)
            .map_err(|e| StoreError::io(format!("publishing {name}"), e))?;
        let entry = Entry {
            name: name.to_string(),
            size: md.len(),
            sha256,
            added: unix(SystemTime::now()),
            format: ImageFormat::detect(&head),
            role: FileRole::of(name.as_str()),
            inode: md.ino(),
            mtime_ns: mtime_ns(&md),
        };
        self.lock().entries.insert(name.to_string(), entry.clone());
        self.entries_changed()?;
        tracing::info!(name = %name, size = entry.size, sha256 = %entry.sha256, "image stored");
        Ok(entry)
    }

    /// Removes a complete file, or else an interrupted upload of that name.
    pub fn remove(&self, name: &ImageName) -> Result<()> {
        let known = self.lock().entries.contains_key(name.as_str());
        if known {
            match fs::remove_file(self.path_of(name)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io(format!("removing {name}"), e)),
            }
            self.lock().entries.remove(name.as_str());
            sync_dir(&self.images).map_err(|e| StoreError::io(format!("removing {name}"), e))?;
            return self.entries_changed();
        }
        if self.upload_active(name) {
            return Err(StoreError::Busy(name.to_string()));
        }
        match fs::remove_file(self.partial_path(name)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::NotFound(name.to_string()))
            }
            Err(e) => Err(StoreError::io(format!("removing {name}"), e)),
        }
    }

    /// Renames a complete file (WinSCP uploads `x.filepart`, then renames).
    pub fn rename(&self, from: &ImageName, to: &ImageName, overwrite: bool) -> Result<()> {
        if !self.lock().entries.contains_key(from.as_str()) {
            return Err(StoreError::NotFound(from.to_string()));
        }
        if !overwrite && self.lock().entries.contains_key(to.as_str()) {
            return Err(StoreError::Exists(to.to_string()));
        }
        fs::rename(self.path_of(from), self.path_of(to))
            .map_err(|e| StoreError::io(format!("renaming {from}"), e))?;
        sync_dir(&self.images).map_err(|e| StoreError::io(format!("renaming {from}"), e))?;
        {
            let mut inner = self.lock();
            if let Some(mut e) = inner.entries.remove(from.as_str()) {
                e.name = to.to_string();
                e.role = FileRole::of(to.as_str());
                inner.entries.insert(to.to_string(), e);
            }
        }
        self.entries_changed()
    }

    /// Sets the modification time of a complete file, as a client asked
    /// (`setstat`: rclone, `touch` through sshfs). The time lives on the file
    /// itself; the catalog's identity of the file follows it, so a restart
    /// does not take it for a file changed behind our back. Blocking.
    pub fn set_mtime(&self, name: &ImageName, mtime: SystemTime) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        if !self.lock().entries.contains_key(name.as_str()) {
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
        if let Some(e) = self.lock().entries.get_mut(name.as_str())
            && e.inode == md.ino()
        {
            e.mtime_ns = mtime_ns(&md);
        }
        self.persist()
    }

    /// Space on the store's filesystem.
    pub fn usage(&self) -> StoreUsage {
        let images_bytes = self.lock().entries.values().map(|e| e.size).sum();
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
            volatile: self.volatile,
        }
    }

    /// Raw statvfs of the store, for `statvfs@openssh.com`.
    pub fn statvfs(&self) -> io::Result<nix::sys::statvfs::Statvfs> {
        nix::sys::statvfs::statvfs(&self.root).map_err(io::Error::from)
    }

    /// Reads the text of a (small) checksum sidecar.
    fn read_sidecar(&self, name: &str) -> Option<String> {
        let mut text = String::new();
        File::open(self.images.join(name))
            .ok()?
            .take(1 << 20)
            .read_to_string(&mut text)
            .ok()?;
        Some(text)
    }
}

/// The checksum sidecars' claims, keyed by image name.
fn claims(entries: &BTreeMap<String, Entry>, store: &Store) -> BTreeMap<String, String> {
    let mut claims = BTreeMap::new();
    for e in entries.values().filter(|e| e.role == FileRole::Checksums) {
        if let Some(text) = store.read_sidecar(&e.name) {
            let subject = sidecar::default_subject(&e.name);
            for c in sidecar::parse_checksums(&text, subject.as_deref()) {
                claims.insert(c.name, c.sha256);
            }
        }
    }
    claims
}

fn to_image(e: &Entry) -> Image {
    Image {
        name: e.name.clone(),
        size: e.size,
        sha256: e.sha256.clone(),
        added: e.added,
        format: e.format,
        content_size: (!e.format.is_compressed()).then_some(e.size),
        bmap: false,
        expected_sha256: None,
        state: ImageState::Ok,
    }
}

impl Store {
    /// Complete images (sidecars excluded) by name, with what their sidecars
    /// say folded in (bmap present, expected hash, corrupt flag). This is what
    /// every front-end lists. Claims are re-read whenever a file arrives,
    /// leaves or is renamed, so an image is flagged whichever arrives first,
    /// the image or its checksum.
    pub fn catalog(&self) -> Vec<Image> {
        let (entries, claims) = {
            let inner = self.lock();
            (inner.entries.clone(), inner.claims.clone())
        };
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
                    if *want != e.sha256 {
                        img.state = ImageState::Corrupt(format!(
                            "SHA-256 is {} but its checksum file says {}",
                            &e.sha256[..16],
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

/// Writes `path` so that a reader sees either the old or the new content,
/// even across a power cut.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
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
}
