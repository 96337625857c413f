//! Who may log in: the admin's `authorized_keys`, and the one-time pairing
//! code of a unit that has no key yet.
//!
//! The file is read as bytes and line by line, as sshd reads it
//! ([`super::authorized_keys`]): a line that is not a key, or whose options
//! we cannot honour, is skipped with a log line naming its number, and the
//! other lines work. It is re-read whenever it changes (size, mtime, inode),
//! so a key added by hand (or on the boot stick) works at the next login. A
//! file that cannot be read keeps the last good set of keys: an error never
//! means "no keys". Keys are only ever matched after russh has verified the
//! signature (`auth_publickey`), never on the unsigned probe alone.
//!
//! Signatures: ed25519, ecdsa and RSA with SHA-2 (`rsa-sha2-256/512`); RSA
//! with SHA-1 (`ssh-rsa`) is refused, as OpenSSH >= 8.8 does.
//!
//! Pairing: while the file holds no key line at all (blank lines and
//! comments only, or no file), unitd prints a random code on its console
//! and log; `admin` may log in with it (password or keyboard-interactive) to
//! run `keys add`. As soon as a key line exists, even a broken one, the code
//! is dead and password-style login is refused.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use russh::keys::{Algorithm, HashAlg, PublicKey};
use subtle_eq::constant_time_eq;

use super::authorized_keys::{KeyLine, KeyOptions, parse_line};

/// Characters of a pairing code: no 0/O, 1/I/L, so it reads aloud well.
const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// Signature algorithms a user key may log in with, best first: what the
/// server advertises in `server-sig-algs`. No `ssh-rsa` (SHA-1).
pub const USER_KEY_ALGORITHMS: &[Algorithm] = &[
    Algorithm::Ed25519,
    Algorithm::Ecdsa {
        curve: russh::keys::EcdsaCurve::NistP256,
    },
    Algorithm::Ecdsa {
        curve: russh::keys::EcdsaCurve::NistP384,
    },
    Algorithm::Ecdsa {
        curve: russh::keys::EcdsaCurve::NistP521,
    },
    Algorithm::Rsa {
        hash: Some(HashAlg::Sha512),
    },
    Algorithm::Rsa {
        hash: Some(HashAlg::Sha256),
    },
];

/// Input `keys add` accepts at most.
pub const MAX_ADD: usize = 64 * 1024;

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
    /// The line's options as written (`from="...",no-pty`), or empty.
    pub options: String,
    /// Its line number in `authorized_keys`.
    pub line: usize,
}

/// A key that may log in, with what its line allows.
#[derive(Debug, Clone)]
pub struct Grant {
    pub line: usize,
    pub options: KeyOptions,
}

pub struct Keys {
    path: PathBuf,
    state: Mutex<State>,
    pairing_code: String,
}

/// What identifies one version of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stamp {
    Missing,
    File {
        len: u64,
        mtime: (i64, i64),
        ctime: (i64, i64),
        ino: u64,
        dev: u64,
    },
}

#[derive(Default)]
struct State {
    /// The version `entries` come from; `None`: read it (again).
    stamp: Option<Stamp>,
    /// The last good reading: (line number, key line).
    entries: Vec<(usize, KeyLine)>,
    /// Lines that are neither blank nor comment, good or not.
    key_lines: usize,
    /// The file was read (or is missing) at least once.
    known: bool,
    /// Why lines were skipped, and why the last read failed.
    problems: Vec<String>,
    read_error: Option<String>,
}

impl Keys {
    pub fn new(path: &Path) -> Keys {
        let keys = Keys {
            path: path.to_path_buf(),
            state: Mutex::new(State::default()),
            pairing_code: new_code(),
        };
        drop(keys.refresh());
        keys
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Re-reads the file if it changed. A missing file is no keys; a file
    /// that cannot be read leaves the last good set in place.
    fn refresh(&self) -> std::sync::MutexGuard<'_, State> {
        let mut st = self.lock();
        let stamp = match fs::metadata(&self.path) {
            Ok(m) => Stamp::File {
                len: m.len(),
                mtime: (m.mtime(), m.mtime_nsec()),
                ctime: (m.ctime(), m.ctime_nsec()),
                ino: m.ino(),
                dev: m.dev(),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Stamp::Missing,
            Err(e) => {
                self.read_failed(&mut st, e);
                return st;
            }
        };
        if st.stamp == Some(stamp) {
            return st;
        }
        let bytes = match stamp {
            Stamp::Missing => Vec::new(),
            Stamp::File { .. } => match fs::read(&self.path) {
                Ok(b) => b,
                Err(e) => {
                    self.read_failed(&mut st, e);
                    return st;
                }
            },
        };
        let (entries, key_lines, problems) = parse_file(&bytes);
        for p in &problems {
            tracing::warn!("{}: {p}", self.path.display());
        }
        if entries.is_empty() && key_lines > 0 {
            tracing::warn!(
                "{}: no usable key; pairing stays off while the file holds key lines (fix or remove them)",
                self.path.display()
            );
        }
        st.entries = entries;
        st.key_lines = key_lines;
        st.problems = problems;
        st.known = true;
        st.read_error = None;
        st.stamp = Some(stamp);
        st
    }

    /// Logs a read error once (not on every login attempt) and keeps the
    /// last good set.
    fn read_failed(&self, st: &mut State, e: std::io::Error) {
        let msg = format!(
            "cannot read {}: {e}; keeping the {} key(s) read before",
            self.path.display(),
            st.entries.len()
        );
        if st.read_error.as_deref() != Some(msg.as_str()) {
            tracing::error!("{msg}");
            st.read_error = Some(msg);
        }
        st.stamp = None;
    }

    /// May `key`, which signed with `algorithm`, log in from `ip`? Lines are
    /// tried in order; the first whose options admit the login wins.
    pub fn authorize(
        &self,
        key: &PublicKey,
        algorithm: &Algorithm,
        ip: IpAddr,
    ) -> Result<Grant, String> {
        if !USER_KEY_ALGORITHMS.contains(algorithm) {
            return Err(format!(
                "{algorithm} signatures are refused (use rsa-sha2-256/512, ed25519 or ecdsa)"
            ));
        }
        let now = crate::unit::now();
        let st = self.refresh();
        let mut why = "not an authorized key".to_string();
        for (line, k) in &st.entries {
            if k.key.key_data() != key.key_data() {
                continue;
            }
            match k.options.permits(ip, now) {
                Ok(()) => {
                    return Ok(Grant {
                        line: *line,
                        options: k.options.clone(),
                    });
                }
                Err(e) => why = format!("line {line}: {e}"),
            }
        }
        Err(why)
    }

    /// Pairing is on while the file holds no key line (and was read).
    pub fn pairing(&self) -> bool {
        let st = self.refresh();
        st.known && st.key_lines == 0
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
        self.refresh()
            .entries
            .iter()
            .map(|(n, k)| info(*n, k))
            .collect()
    }

    /// Why lines of the file are skipped, and a read error: for `keys list`.
    pub fn problems(&self) -> Vec<String> {
        let st = self.refresh();
        let mut out = st.problems.clone();
        out.extend(st.read_error.clone());
        out
    }

    /// Reads the file as it is now: a file that cannot be read is never
    /// rewritten.
    fn read_now(&self) -> Result<Vec<u8>, KeysError> {
        match fs::read(&self.path) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(source) => Err(KeysError::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Adds OpenSSH public key lines (as `ssh-copy-id` sends them, options
    /// allowed). Every line already in the file stays as it is, byte for
    /// byte; the new ones are appended.
    pub fn add(&self, text: &[u8]) -> Result<Vec<KeyInfo>, KeysError> {
        let mut st = self.lock();
        let mut bytes = self.read_now()?;
        let (existing, _, _) = parse_file(&bytes);
        // Lines in the file now: the new ones are numbered after them.
        let mut number = bytes.split(|b| *b == b'\n').count();
        if bytes.is_empty() || bytes.ends_with(b"\n") {
            number -= 1;
        }
        let mut keys: Vec<PublicKey> = existing.into_iter().map(|(_, k)| k.key).collect();
        let mut added = Vec::new();
        let mut lines = Vec::new();
        for (i, line) in text.split(|b| *b == b'\n').enumerate() {
            let line = line.trim_ascii();
            let k = match parse_line(line) {
                Ok(Some(k)) => k,
                Ok(None) => continue,
                Err(e) => return Err(KeysError::Parse(format!("input line {}: {e}", i + 1))),
            };
            let fp = k.key.fingerprint(HashAlg::Sha256).to_string();
            if keys.iter().any(|o| o.key_data() == k.key.key_data()) {
                return Err(KeysError::Duplicate(fp));
            }
            number += 1;
            added.push(info(number, &k));
            keys.push(k.key);
            lines.push(line);
        }
        if added.is_empty() {
            return Err(KeysError::Parse("no key on standard input".into()));
        }
        if !bytes.is_empty() && !bytes.ends_with(b"\n") {
            bytes.push(b'\n');
        }
        for l in lines {
            bytes.extend_from_slice(l);
            bytes.push(b'\n');
        }
        self.write(&mut st, &bytes)?;
        Ok(added)
    }

    /// Removes every line holding the key with this `SHA256:` fingerprint
    /// (the prefix may be left out). The other lines stay byte for byte.
    pub fn remove(&self, fingerprint: &str) -> Result<KeyInfo, KeysError> {
        let mut st = self.lock();
        let bytes = self.read_now()?;
        let want = fingerprint.trim();
        let want = want.strip_prefix("SHA256:").unwrap_or(want);
        let mut removed = None;
        let mut kept = Vec::with_capacity(bytes.len());
        for (i, line) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
            let body = line.strip_suffix(b"\n").unwrap_or(line);
            if let Ok(Some(k)) = parse_line(body) {
                let fp = k.key.fingerprint(HashAlg::Sha256).to_string();
                if !want.is_empty() && fp.strip_prefix("SHA256:") == Some(want) {
                    removed.get_or_insert_with(|| info(i + 1, &k));
                    continue;
                }
            }
            kept.extend_from_slice(line);
        }
        let removed = removed.ok_or_else(|| KeysError::NotFound(fingerprint.trim().to_string()))?;
        self.write(&mut st, &kept)?;
        Ok(removed)
    }

    fn write(&self, st: &mut State, bytes: &[u8]) -> Result<(), KeysError> {
        let io = |source| KeysError::Io {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir).map_err(io)?;
        }
        write_atomic(&self.path, bytes).map_err(io)?;
        st.stamp = None; // re-read next time, whatever the mtime granularity
        Ok(())
    }
}

/// Parses a whole file: the key lines with their numbers, how many lines
/// are not blank or comments, and why lines were skipped.
fn parse_file(bytes: &[u8]) -> (Vec<(usize, KeyLine)>, usize, Vec<String>) {
    let mut entries = Vec::new();
    let mut key_lines = 0;
    let mut problems = Vec::new();
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        match parse_line(line) {
            Ok(None) => {}
            Ok(Some(k)) => {
                key_lines += 1;
                entries.push((i + 1, k));
            }
            Err(e) => {
                key_lines += 1;
                problems.push(format!("line {}: {e}: skipped", i + 1));
            }
        }
    }
    (entries, key_lines, problems)
}

/// Writes `bytes` to a temporary file beside `path`, fsyncs it and renames
/// it over `path`, keeping the old file's permissions (0600 for a new one).
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("keys");
    let tmp = dir.join(format!(".{name}.tmp"));
    let mode = fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0o600);
    let result = (|| {
        let _ = fs::remove_file(&tmp);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // The umask may have taken bits away; FAT has no modes at all.
        let _ = f.set_permissions(fs::Permissions::from_mode(mode));
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// [`Keys::authorize`] off the async runtime (it may read the file).
pub async fn authorize(
    unit: &Arc<crate::unit::Unit>,
    key: &PublicKey,
    algorithm: &Algorithm,
    ip: IpAddr,
) -> Result<Grant, String> {
    let (unit, key, algorithm) = (unit.clone(), key.clone(), algorithm.clone());
    tokio::task::spawn_blocking(move || unit.keys.authorize(&key, &algorithm, ip))
        .await
        .unwrap_or_else(|e| Err(format!("key check failed: {e}")))
}

fn info(line: usize, k: &KeyLine) -> KeyInfo {
    KeyInfo {
        fingerprint: k.key.fingerprint(HashAlg::Sha256).to_string(),
        algorithm: k.key.algorithm().to_string(),
        comment: k.comment.clone(),
        options: k.options_text.clone(),
        line,
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
    const KEY2: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICp8r1nFJmItFJkgNVRyKafAemElurWN8Wr+Ir5RYCWl bob";

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("unitd-keys-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir.join("authorized_keys")
    }

    fn key(line: &str) -> PublicKey {
        PublicKey::from_openssh(line).unwrap()
    }

    const ED: Algorithm = Algorithm::Ed25519;
    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn pairing_is_on_until_the_first_key_and_then_the_code_is_dead() {
        let path = temp("pair");
        let keys = Keys::new(&path);
        let code = keys.pairing_code().unwrap().to_string();
        assert_eq!(code.len(), 14);
        assert!(keys.check_code(&code.to_lowercase().replace('-', " ")));
        assert!(!keys.check_code("AAAA-AAAA-AAAA"));
        keys.add(KEY.as_bytes()).unwrap();
        assert!(!keys.pairing());
        assert!(!keys.check_code(&code));
        assert_eq!(keys.list()[0].comment, "alice@laptop");
    }

    #[test]
    fn keys_are_added_once_and_removed_by_fingerprint() {
        let path = temp("rm");
        fs::write(&path, "# my keys\n").unwrap();
        let keys = Keys::new(&path);
        let fp = keys.add(KEY.as_bytes()).unwrap()[0].fingerprint.clone();
        assert!(matches!(
            keys.add(KEY.as_bytes()),
            Err(KeysError::Duplicate(_))
        ));
        assert!(matches!(
            keys.add(b"ssh-ed25519 garbage"),
            Err(KeysError::Parse(_))
        ));
        keys.remove(&fp).unwrap();
        assert!(keys.list().is_empty());
        assert_eq!(fs::read_to_string(&path).unwrap(), "# my keys\n");
    }

    /// Issue 14: one Latin-1 byte turned every key off and pairing on, and
    /// `keys add` rewrote the file with the new key only.
    #[test]
    fn a_latin1_comment_keeps_every_key_and_pairing_off_and_add_rm_keep_the_bytes() {
        let path = temp("latin1");
        let mut original = b"# keys of the shop\n\n".to_vec();
        original.extend_from_slice(KEY.as_bytes());
        original.extend_from_slice(b" Jos\xe9\n");
        original.extend_from_slice(b"not a key at all\n");
        original.extend_from_slice(b"no-pty,from=\"10.0.0.0/8\"   ");
        original.extend_from_slice(KEY2.as_bytes());
        original.extend_from_slice(b" caf\xe9\r\n# end, no newline");
        fs::write(&path, &original).unwrap();
        let keys = Keys::new(&path);
        assert!(!keys.pairing(), "a file with keys never turns pairing on");
        assert!(keys.authorize(&key(KEY), &ED, LOCAL).is_ok());
        assert_eq!(keys.list().len(), 2);
        assert_eq!(keys.list()[0].line, 3);
        assert!(
            keys.problems()[0].starts_with("line 4: "),
            "{:?}",
            keys.problems()
        );
        // line 5 only from 10/8, without a pty.
        assert!(keys.authorize(&key(KEY2), &ED, LOCAL).is_err());
        let ten = "10.1.2.3".parse().unwrap();
        assert!(!keys.authorize(&key(KEY2), &ED, ten).unwrap().options.pty);

        let third = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII603wSMJZATQZ6/zHDNQPCxaE56k/s2YuLnI3GZ739N ren\u{e9}";
        let added = keys.add(third.as_bytes()).unwrap();
        assert_eq!(added[0].line, 7);
        let mut expected = original.clone();
        expected.push(b'\n');
        expected.extend_from_slice(third.as_bytes());
        expected.push(b'\n');
        assert_eq!(
            fs::read(&path).unwrap(),
            expected,
            "every old line byte for byte"
        );
        keys.remove(&added[0].fingerprint).unwrap();
        let mut expected = original.clone();
        expected.push(b'\n');
        assert_eq!(fs::read(&path).unwrap(), expected);
        let fp2 = key(KEY2).fingerprint(HashAlg::Sha256).to_string();
        keys.remove(fp2.trim_start_matches("SHA256:")).unwrap();
        let text = fs::read(&path).unwrap();
        assert!(!text.windows(5).any(|w| w == b"caf\xe9\r"), "line 5 went");
        assert!(text.starts_with(b"# keys of the shop\n\n"));
        assert!(text.windows(5).any(|w| w == b"Jos\xe9\n"));
    }

    #[test]
    fn a_read_error_keeps_the_last_good_keys_and_pairing_off() {
        let path = temp("unreadable");
        fs::write(&path, KEY).unwrap();
        let keys = Keys::new(&path);
        assert!(keys.authorize(&key(KEY), &ED, LOCAL).is_ok());
        // A directory where the file was: reading it fails.
        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();
        assert!(
            keys.authorize(&key(KEY), &ED, LOCAL).is_ok(),
            "last good set"
        );
        assert!(!keys.pairing());
        assert!(
            keys.add(KEY2.as_bytes()).is_err(),
            "never rewrites what it could not read"
        );
        assert!(!keys.problems().is_empty());
        // Unreadable from the start: no keys, but no pairing either.
        let keys = Keys::new(&path);
        assert!(!keys.pairing());
        assert!(keys.pairing_code().is_none());
        // Only broken key lines: pairing stays off too.
        let path = temp("broken");
        fs::write(&path, "ssh-ed25519 AAAAbroken\n").unwrap();
        assert!(!Keys::new(&path).pairing());
        // No file at all: pairing.
        assert!(Keys::new(&temp("none")).pairing());
    }

    /// Issue 15: `ssh-rsa` (SHA-1) signatures were accepted.
    #[test]
    fn ssh_rsa_sha1_signatures_are_refused() {
        let path = temp("rsa");
        fs::write(&path, KEY).unwrap();
        let keys = Keys::new(&path);
        let k = key(KEY);
        assert!(
            keys.authorize(&k, &Algorithm::Rsa { hash: None }, LOCAL)
                .is_err()
        );
        assert!(keys.authorize(&k, &Algorithm::Dsa, LOCAL).is_err());
        assert!(!USER_KEY_ALGORITHMS.contains(&Algorithm::Rsa { hash: None }));
    }

    #[test]
    fn a_rewrite_keeps_the_file_mode() {
        let path = temp("mode");
        fs::write(&path, "").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let keys = Keys::new(&path);
        keys.add(KEY.as_bytes()).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
        let fresh = temp("fresh");
        Keys::new(&fresh).add(KEY.as_bytes()).unwrap();
        assert_eq!(
            fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
