//! The catalog: what the store knows about each complete file, in memory and
//! in `.copyunit/catalog.json`.
//!
//! One writer at a time: every change goes through [`Catalog::change`], which
//! holds the writer lock from taking the entries to renaming the new catalog
//! into place, so two publishes (two sftp closes, an `rm` during an upload)
//! can never interleave their saves, and the file on disk is always one whole
//! state. Temp files have unique names, so no two writers ever share one.
//!
//! All or nothing: a change that adds or renames something saves the catalog
//! first and only then touches the files; if the save fails (a full store)
//! nothing happened and the caller is told so. A removal frees space first
//! (the file goes, then the catalog is saved), because a full store must be
//! able to get space back: if that save fails, the entry is gone in memory
//! (the truth), the catalog is marked unsaved and saved with the next change;
//! start-up reconciles it with the files anyway.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use copyunit_model::ImageFormat;
use serde::{Deserialize, Serialize};

use super::sidecar::{self, FileRole};
use super::{Result, StoreError};

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
    /// Bytes once decoded: the file's size for raw and ISO images, the
    /// container's own record where it is reliable (single-stream xz index,
    /// zip entry), else what decoding the file once counted. None while
    /// that decode is pending (or the file does not decode: see below).
    #[serde(default)]
    pub content_size: Option<u64>,
    /// Why the file could not be decoded, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decode_error: Option<String>,
}

impl Entry {
    /// A compressed image whose decoded size is not known yet.
    pub fn needs_sizing(&self) -> bool {
        self.role == FileRole::Image
            && self.content_size.is_none()
            && self.decode_error.is_none()
            && self.format.is_compressed()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CatalogFile {
    version: u32,
    entries: Vec<Entry>,
}

pub type Entries = BTreeMap<String, Entry>;

/// When a change's file operation happens relative to saving the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Save first; if the file operation then fails, save the old state
    /// again. Adding and renaming: a failed save means nothing happened.
    SaveFirst,
    /// File operation first, then save (best effort). Removing: space is
    /// freed even on a full store.
    ActFirst,
}

pub struct Catalog {
    path: PathBuf,
    /// The folder of complete files, where checksum sidecars are read.
    images: PathBuf,
    state: Mutex<State>,
    writer: Mutex<Saved>,
    /// Sentences for the event log (the store full, the catalog unsaved),
    /// taken by the unit.
    notices: Mutex<Vec<String>>,
}

#[derive(Default)]
struct State {
    entries: Entries,
    /// What the checksum sidecars say, by image name: read from the sidecar
    /// files whenever the entries change, not on every snapshot.
    claims: BTreeMap<String, String>,
}

/// How the last save went; guarded by the writer lock.
#[derive(Default)]
struct Saved {
    /// The catalog on disk is older than the entries in memory.
    unsaved: bool,
    /// The last save failed because the store is full.
    full: bool,
}

impl Catalog {
    pub fn new(path: PathBuf, images: PathBuf) -> Catalog {
        Catalog {
            path,
            images,
            state: Mutex::default(),
            writer: Mutex::default(),
            notices: Mutex::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn writer(&self) -> MutexGuard<'_, Saved> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The entries saved on disk; an unreadable catalog is rebuilt from
    /// the files (an empty list here).
    pub fn load(&self) -> Result<Entries> {
        remove_stale_temps(&self.path);
        let saved: CatalogFile = match fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!("catalog unreadable ({e}): rebuilding it from the files");
                CatalogFile::default()
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => CatalogFile::default(),
            Err(e) => return Err(StoreError::io("reading the catalog", e)),
        };
        Ok(saved
            .entries
            .into_iter()
            .map(|e| (e.name.clone(), e))
            .collect())
    }

    /// Sets the entries found at start. The catalog is saved only if it
    /// differs from what is on disk, and a failed save is not fatal: unitd
    /// must come up on a full store so that the admin can free space.
    pub fn start_with(&self, entries: Entries, on_disk: &Entries) {
        let mut saved = self.writer();
        let differs = entries != *on_disk || !self.path.exists();
        self.set(entries);
        if differs {
            let entries = self.state().entries.clone();
            if let Err(e) = self.save(&entries) {
                self.save_failed(&mut saved, &e);
            }
        }
    }

    fn set(&self, entries: Entries) {
        let claims = claims(&entries, &self.images);
        let mut state = self.state();
        state.entries = entries;
        state.claims = claims;
    }

    /// Changes the catalog: `edit` is applied to a copy of the entries,
    /// `act` does the file operation, in `order`. Only one change runs at
    /// a time. On success the edited entries are the store's state.
    pub fn change<T>(
        &self,
        order: Order,
        edit: impl FnOnce(&mut Entries) -> Result<()>,
        act: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let mut saved = self.writer();
        let before = self.state().entries.clone();
        let mut next = before.clone();
        edit(&mut next)?;
        match order {
            Order::SaveFirst => {
                if let Err(e) = self.save(&next) {
                    self.save_failed(&mut saved, &e);
                    return Err(e);
                }
                match act() {
                    Ok(t) => {
                        self.set(next);
                        self.saved(&mut saved);
                        Ok(t)
                    }
                    Err(e) => {
                        // Nothing happened after all: the old state again.
                        match self.save(&before) {
                            Ok(()) => self.saved(&mut saved),
                            Err(e) => self.save_failed(&mut saved, &e),
                        }
                        Err(e)
                    }
                }
            }
            Order::ActFirst => {
                let t = act()?;
                self.set(next.clone());
                match self.save(&next) {
                    Ok(()) => self.saved(&mut saved),
                    Err(e) => self.save_failed(&mut saved, &e),
                }
                Ok(t)
            }
        }
    }

    /// Saves the catalog again if the last save failed (after space was
    /// freed by removing something the catalog does not list).
    pub fn retry_save(&self) {
        let mut saved = self.writer();
        if !saved.unsaved {
            return;
        }
        let entries = self.state().entries.clone();
        match self.save(&entries) {
            Ok(()) => self.saved(&mut saved),
            Err(e) => self.save_failed(&mut saved, &e),
        }
    }

    fn saved(&self, saved: &mut Saved) {
        if saved.unsaved {
            tracing::info!("catalog saved again");
        }
        *saved = Saved::default();
    }

    fn save_failed(&self, saved: &mut Saved, e: &StoreError) {
        let full = matches!(e, StoreError::Full);
        if !saved.unsaved || saved.full != full {
            let msg = if full {
                "the image store is full: free space with `rm NAME` (images or interrupted uploads)"
                    .to_string()
            } else {
                format!("the image catalog could not be saved: {e}")
            };
            tracing::warn!("{msg}");
            self.notices
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(msg);
        }
        saved.unsaved = true;
        saved.full = full;
    }

    /// True while the last catalog save failed because the store is full.
    pub fn full(&self) -> bool {
        self.writer().full
    }

    /// Sentences for the event log since the last call.
    pub fn take_notices(&self) -> Vec<String> {
        std::mem::take(&mut *self.notices.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn save(&self, entries: &Entries) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(&CatalogFile {
            version: 1,
            entries: entries.values().cloned().collect(),
        })
        .map_err(|e| StoreError::io("encoding the catalog", io::Error::other(e)))?;
        write_atomic(&self.path, &bytes).map_err(|e| StoreError::io("saving the catalog", e))
    }

    pub fn entries(&self) -> Entries {
        self.state().entries.clone()
    }

    pub fn get(&self, name: &str) -> Option<Entry> {
        self.state().entries.get(name).cloned()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.state().entries.contains_key(name)
    }

    /// Entries and sidecar claims, read together.
    pub fn with_claims(&self) -> (Entries, BTreeMap<String, String>) {
        let state = self.state();
        (state.entries.clone(), state.claims.clone())
    }

    /// Bytes of all complete files.
    pub fn bytes(&self) -> u64 {
        self.state().entries.values().map(|e| e.size).sum()
    }
}

/// The checksum sidecars' claims, keyed by image name.
fn claims(entries: &Entries, images: &Path) -> BTreeMap<String, String> {
    let mut claims = BTreeMap::new();
    for e in entries.values().filter(|e| e.role == FileRole::Checksums) {
        if let Some(text) = read_small(&images.join(&e.name)) {
            let subject = sidecar::default_subject(&e.name);
            for c in sidecar::parse_checksums(&text, subject.as_deref()) {
                claims.insert(c.name, c.sha256);
            }
        }
    }
    claims
}

/// The text of a (small) sidecar file.
fn read_small(path: &Path) -> Option<String> {
    let mut text = String::new();
    File::open(path)
        .ok()?
        .take(1 << 20)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// Temp files of [`write_atomic`] left by a crash: removed at start.
fn remove_stale_temps(path: &Path) {
    let (Some(dir), Some(file)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return;
    };
    let prefix = format!(".{file}.");
    let Ok(items) = fs::read_dir(dir) else { return };
    for item in items.flatten() {
        let name = item.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&prefix) && name.ends_with(".tmp") {
            let _ = fs::remove_file(item.path());
        }
    }
}

/// Writes `path` so that a reader sees either the old or the new content,
/// even across a power cut. Each call writes its own temp file (unique
/// name, created exclusively), so concurrent calls cannot tear each other;
/// the last rename wins.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
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

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_atomic_writes_never_share_a_temp_file() {
        let dir = tempdir("atomic");
        let path = dir.join("catalog.json");
        std::thread::scope(|s| {
            for t in 0..8u8 {
                let path = &path;
                s.spawn(move || {
                    for _ in 0..50 {
                        let body = vec![b'a' + t; 64 * 1024];
                        write_atomic(path, &body).expect("every write succeeds");
                    }
                });
            }
        });
        let body = fs::read(&path).unwrap();
        assert_eq!(body.len(), 64 * 1024);
        assert!(body.iter().all(|b| *b == body[0]), "one writer's content");
        let left: Vec<_> = fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(left.len(), 1, "no temp file left behind");
        fs::remove_dir_all(dir).unwrap();
    }

    fn tempdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("unitd-catalog-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }
}
