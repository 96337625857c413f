//! Who may log in: the admin's `authorized_keys`, and the one-time pairing
//! code of a unit that has no key yet.
//!
//! The file is re-read whenever its size or mtime changes, so a key added by
//! hand (or on the boot stick) works at the next login. Keys are only ever
//! matched after russh has verified the signature (`auth_publickey`), never
//! on the unsigned probe.
//!
//! Pairing: while the file holds no key, unitd prints a random code on its
//! console and log; `admin` may log in with it (password or
//! keyboard-interactive) to run `keys add`. As soon as a key exists the code
//! is dead and password-style login is refused.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use russh::keys::{HashAlg, PublicKey, ssh_key::AuthorizedKeys};
use subtle_eq::constant_time_eq;

/// Characters of a pairing code: no 0/O, 1/I/L, so it reads aloud well.
const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("not an OpenSSH public key: {0}")]
    Parse(String),
    #[error("no key with fingerprint {0}")]
    NotFound(String),
    #[error("that key is already installed ({0})")]
    Duplicate(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One installed key as `keys list` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyInfo {
    pub fingerprint: String,
    pub algorithm: String,
    pub comment: String,
}

pub struct Keys {
    path: PathBuf,
    cache: Mutex<Cache>,
    pairing_code: String,
}

#[derive(Default)]
struct Cache {
    stamp: Option<(u64, SystemTime)>,
    keys: Vec<PublicKey>,
    /// The raw lines, so a rewrite keeps options and comments.
    lines: Vec<String>,
}

impl Keys {
    pub fn new(path: &Path) -> Keys {
        let keys = Keys {
            path: path.to_path_buf(),
            cache: Mutex::new(Cache::default()),
            pairing_code: new_code(),
        };
        drop(keys.refresh());
        keys
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Re-reads the file if it changed. A missing file is no keys.
    fn refresh(&self) -> std::sync::MutexGuard<'_, Cache> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let stamp = fs::metadata(&self.path)
            .ok()
            .map(|m| (m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH)));
        if stamp != cache.stamp || stamp.is_none() {
            let text = fs::read_to_string(&self.path).unwrap_or_default();
            let mut keys = Vec::new();
            for (i, entry) in AuthorizedKeys::new(&text).enumerate() {
                match entry {
                    Ok(e) => keys.push(e.public_key().clone()),
                    Err(e) => {
                        tracing::warn!("{} entry {}: {e}: skipped", self.path.display(), i + 1)
                    }
                }
            }
            cache.lines = text.lines().map(str::to_string).collect();
            cache.keys = keys;
            cache.stamp = stamp;
        }
        cache
    }

    /// True when `key` (already signature-verified) is authorized.
    pub fn allows(&self, key: &PublicKey) -> bool {
        self.refresh()
            .keys
            .iter()
            .any(|k| k.key_data() == key.key_data())
    }

    /// Pairing is on while no key is installed.
    pub fn pairing(&self) -> bool {
        self.refresh().keys.is_empty()
    }

    /// The code to show on the console, while pairing is on.
    pub fn pairing_code(&self) -> Option<&str> {
        self.pairing().then_some(self.pairing_code.as_str())
    }

    /// Checks a typed pairing code (case, spaces and dashes are forgiven).
    pub fn check_code(&self, typed: &str) -> bool {
        if !self.pairing() {
            return false;
        }
        let norm = |s: &str| -> Vec<u8> {
            s.bytes()
                .filter(|b| b.is_ascii_alphanumeric())
                .map(|b| b.to_ascii_uppercase())
                .collect()
        };
        constant_time_eq(&norm(typed), &norm(&self.pairing_code))
    }

    pub fn list(&self) -> Vec<KeyInfo> {
        self.refresh().keys.iter().map(info).collect()
    }

    /// Adds OpenSSH public key lines (as `ssh-copy-id` sends them).
    pub fn add(&self, text: &str) -> Result<Vec<KeyInfo>, KeysError> {
        let mut cache = self.refresh();
        let mut added = Vec::new();
        let mut new_lines = Vec::new();
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let entry = AuthorizedKeys::new(line)
                .next()
                .ok_or_else(|| KeysError::Parse(short(line)))?
                .map_err(|e| KeysError::Parse(format!("{}: {e}", short(line))))?;
            let key = entry.public_key().clone();
            let fp = key.fingerprint(HashAlg::Sha256).to_string();
            if cache.keys.iter().any(|k| k.key_data() == key.key_data()) {
                return Err(KeysError::Duplicate(fp));
            }
            added.push(info(&key));
            new_lines.push(line.to_string());
            cache.keys.push(key);
        }
        if added.is_empty() {
            return Err(KeysError::Parse("no key on standard input".into()));
        }
        let mut lines = cache.lines.clone();
        lines.extend(new_lines);
        self.write(&mut cache, lines)?;
        Ok(added)
    }

    /// Removes the key with this `SHA256:` fingerprint (or its unique prefix).
    pub fn remove(&self, fingerprint: &str) -> Result<KeyInfo, KeysError> {
        let mut cache = self.refresh();
        let want = fingerprint.trim();
        let mut removed = None;
        let lines: Vec<String> = cache
            .lines
            .iter()
            .filter(|line| {
                let Some(Ok(entry)) = AuthorizedKeys::new(line).next() else {
                    return true;
                };
                let fp = entry.public_key().fingerprint(HashAlg::Sha256).to_string();
                let hit = fp == want || fp.trim_start_matches("SHA256:") == want;
                if hit && removed.is_none() {
                    removed = Some(info(entry.public_key()));
                    return false;
                }
                true
            })
            .cloned()
            .collect();
        let removed = removed.ok_or_else(|| KeysError::NotFound(want.to_string()))?;
        self.write(&mut cache, lines)?;
        Ok(removed)
    }

    fn write(&self, cache: &mut Cache, lines: Vec<String>) -> Result<(), KeysError> {
        let mut text = lines.join("\n");
        text.push('\n');
        let io = |source| KeysError::Io {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir).map_err(io)?;
        }
        crate::store::write_atomic(&self.path, text.as_bytes()).map_err(io)?;
        cache.stamp = None; // re-read next time, whatever the mtime granularity
        cache.lines = lines;
        Ok(())
    }
}

fn info(key: &PublicKey) -> KeyInfo {
    KeyInfo {
        fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
        algorithm: key.algorithm().to_string(),
        comment: key.comment().to_string(),
    }
}

fn short(line: &str) -> String {
    let s: String = line.chars().take(40).collect();
    if line.chars().count() > 40 {
        format!("{s}...")
    } else {
        s
    }
}

/// 12 characters from a 31-symbol alphabet (about 59 bits), as XXXX-XXXX-XXXX.
fn new_code() -> String {
    let mut bytes = [0u8; 12];
    rand::fill(&mut bytes);
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

mod subtle_eq {
    /// Compares without an early exit, so timing says nothing of the code.
    pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@laptop";

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("unitd-keys-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir.join("authorized_keys")
    }

    #[test]
    fn pairing_is_on_until_the_first_key_and_then_the_code_is_dead() {
        let path = temp("pair");
        let keys = Keys::new(&path);
        let code = keys.pairing_code().unwrap().to_string();
        assert_eq!(code.len(), 14);
        assert!(keys.check_code(&code.to_lowercase().replace('-', " ")));
        assert!(!keys.check_code("AAAA-AAAA-AAAA"));
        keys.add(KEY).unwrap();
        assert!(!keys.pairing());
        assert!(!keys.check_code(&code));
        assert_eq!(keys.list()[0].comment, "alice@laptop");
    }

    #[test]
    fn keys_are_added_once_and_removed_by_fingerprint() {
        let path = temp("rm");
        fs::write(&path, "# my keys\n").unwrap();
        let keys = Keys::new(&path);
        let fp = keys.add(KEY).unwrap()[0].fingerprint.clone();
        assert!(matches!(keys.add(KEY), Err(KeysError::Duplicate(_))));
        assert!(matches!(
            keys.add("ssh-ed25519 garbage"),
            Err(KeysError::Parse(_))
        ));
        keys.remove(&fp).unwrap();
        assert!(keys.list().is_empty());
        assert_eq!(fs::read_to_string(&path).unwrap(), "# my keys\n");
    }
}
