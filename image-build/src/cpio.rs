//! A writer for the "newc" cpio format the kernel unpacks as the initramfs.
//!
//! Entries are written in path order with fixed owner, time and inode numbers, so the same
//! tree always gives the same bytes.

use std::collections::BTreeMap;

/// What one archive member is.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Dir,
    File(Vec<u8>),
    Symlink(String),
    /// Character device (major, minor), e.g. /dev/console, which the kernel needs before /init.
    CharDev(u32, u32),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub kind: Kind,
    /// Permission bits only (0o755 ...); the file type comes from `kind`.
    pub perm: u32,
}

/// An archive under construction: path (no leading slash) -> entry.
#[derive(Debug, Default)]
pub struct Archive {
    entries: BTreeMap<String, Entry>,
}

impl Archive {
    /// Adds an entry and every missing parent directory (0o755).
    pub fn add(&mut self, path: &str, kind: Kind, perm: u32) {
        let path = path.trim_start_matches('/').to_string();
        let mut parent = String::new();
        for part in path
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map(|(_, p)| p.to_vec())
            .unwrap_or_default()
        {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(part);
            self.entries.entry(parent.clone()).or_insert(Entry {
                kind: Kind::Dir,
                perm: 0o755,
            });
        }
        self.entries.insert(path, Entry { kind, perm });
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The archive bytes, all times set to `mtime`.
    pub fn to_bytes(&self, mtime: u32) -> Vec<u8> {
        let mut out = Vec::new();
        for (ino, (path, e)) in self.entries.iter().enumerate() {
            let (mode, data, rdev): (u32, &[u8], (u32, u32)) = match &e.kind {
                Kind::Dir => (0o040000, &[], (0, 0)),
                Kind::File(d) => (0o100000, d, (0, 0)),
                Kind::Symlink(t) => (0o120000, t.as_bytes(), (0, 0)),
                Kind::CharDev(ma, mi) => (0o020000, &[], (*ma, *mi)),
            };
            let nlink = if matches!(e.kind, Kind::Dir) { 2 } else { 1 };
            header(
                &mut out,
                ino as u32 + 1,
                mode | e.perm,
                nlink,
                mtime,
                data.len() as u32,
                rdev,
                path,
            );
            out.extend_from_slice(data);
            pad4(&mut out);
        }
        header(&mut out, 0, 0, 1, 0, 0, (0, 0), "TRAILER!!!");
        out
    }
}

#[allow(clippy::too_many_arguments)]
fn header(
    out: &mut Vec<u8>,
    ino: u32,
    mode: u32,
    nlink: u32,
    mtime: u32,
    size: u32,
    rdev: (u32, u32),
    name: &str,
) {
    let fields = [
        ino,
        mode,
        0,
        0,
        nlink,
        mtime,
        size,
        0,
        0,
        rdev.0,
        rdev.1,
        name.len() as u32 + 1,
        0,
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08X}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn gnu_cpio_reads_it_back() {
        let mut a = Archive::default();
        a.add("/bin/unitd", Kind::File(b"\x7fELF...".to_vec()), 0o755);
        a.add(
            "etc/copyunit/unit.toml",
            Kind::File(b"name = \"x\"\n".to_vec()),
            0o644,
        );
        a.add("dev/console", Kind::CharDev(5, 1), 0o600);
        a.add("sbin/init", Kind::Symlink("/init".into()), 0o777);
        let bytes = a.to_bytes(1_700_000_000);
        assert_eq!(bytes.len() % 4, 0);
        assert_eq!(bytes, a.to_bytes(1_700_000_000), "same tree, same bytes");
        let mut child = Command::new("cpio")
            .args(["-t", "-v", "--quiet"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("GNU cpio is needed for this test");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(&bytes)
            .expect("write");
        let out = child.wait_with_output().expect("cpio ran");
        assert!(out.status.success());
        let listing = String::from_utf8_lossy(&out.stdout);
        let names: Vec<&str> = listing
            .lines()
            .filter_map(|l| l.split_whitespace().last())
            .collect();
        assert_eq!(
            names,
            [
                "bin",
                "bin/unitd",
                "dev",
                "dev/console",
                "etc",
                "etc/copyunit",
                "etc/copyunit/unit.toml",
                "sbin",
                "/init"
            ]
        );
        assert!(listing.contains("crw-------"), "{listing}");
        assert!(listing.contains("sbin/init -> /init"), "{listing}");
    }
}
