//! kernel.lock: the Debian packages the image is made of, pinned by version and SHA-256.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cmd;
use crate::error::{Error, Result, io};

/// What a pinned package is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// linux-image-*: vmlinuz and the modules.
    Kernel,
    /// syslinux: the installer that writes the FAT boot sector and ldlinux.sys.
    Syslinux,
    /// syslinux-common: mbr.bin.
    SyslinuxCommon,
    /// shim-signed: the Microsoft-signed first stage for UEFI (Secure Boot on or off).
    Shim,
    /// grub-efi-amd64-signed: the Debian-signed grub that shim starts; it boots the
    /// Debian-signed kernel.
    GrubSigned,
    /// busybox-static: mke2fs for a blank store disk, and a shell for rescue.
    Busybox,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pin {
    pub role: Role,
    pub name: String,
    pub version: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lock {
    #[serde(rename = "package")]
    pub packages: Vec<Pin>,
}

const HEADER: &str = "# Debian packages the unit image is built from, pinned by version and SHA-256.\n\
# Move every pin to the archive's current version: cargo xtask image --update-lock\n\n";

impl Lock {
    pub fn read(path: &Path) -> Result<Lock> {
        let text = std::fs::read_to_string(path).map_err(io("reading", path))?;
        Lock::parse(&text).map_err(|msg| Error::Lock {
            path: path.into(),
            msg,
        })
    }

    pub fn parse(text: &str) -> std::result::Result<Lock, String> {
        let lock: Lock = toml::from_str(text).map_err(|e| e.to_string())?;
        for role in [
            Role::Kernel,
            Role::Syslinux,
            Role::SyslinuxCommon,
            Role::Shim,
            Role::GrubSigned,
            Role::Busybox,
        ] {
            if !lock.packages.iter().any(|p| p.role == role) {
                return Err(format!("no package for role {role:?}"));
            }
        }
        Ok(lock)
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let body = toml::to_string(self).map_err(|e| Error::Lock {
            path: path.into(),
            msg: e.to_string(),
        })?;
        std::fs::write(path, format!("{HEADER}{body}")).map_err(io("writing", path))
    }

    pub fn get(&self, role: Role) -> &Pin {
        // `parse` checked every role is present.
        self.packages
            .iter()
            .find(|p| p.role == role)
            .unwrap_or(&self.packages[0])
    }
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(io("opening", path))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(io("reading", path))?;
    Ok(hex::encode(h.finalize()))
}

/// Where a pinned .deb is kept in the download cache.
pub fn cached_deb(cache: &Path, pin: &Pin) -> PathBuf {
    cache.join(format!(
        "{}_{}.deb",
        pin.name,
        pin.version.replace(':', "%3a")
    ))
}

/// Downloads one pinned package with `apt-get download` (or takes it from the cache) and
/// checks its SHA-256. Returns the .deb's path.
pub fn fetch(cache: &Path, pin: &Pin) -> Result<PathBuf> {
    let dest = cached_deb(cache, pin);
    if dest.exists() && sha256_file(&dest)? == pin.sha256 {
        return Ok(dest);
    }
    let tmp = cache.join(format!(".download-{}", pin.name));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io("creating", &tmp))?;
    let got = download(&tmp, &pin.name, &pin.version);
    let file = match got {
        Ok(f) => f,
        Err(Error::Command { stderr, .. }) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(Error::PinGone {
                name: pin.name.clone(),
                version: pin.version.clone(),
                detail: stderr
                    .lines()
                    .last()
                    .unwrap_or("apt-get download failed")
                    .to_string(),
            });
        }
        Err(e) => return Err(e),
    };
    let got = sha256_file(&file)?;
    if got != pin.sha256 {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(Error::Checksum {
            name: pin.name.clone(),
            version: pin.version.clone(),
            got,
            want: pin.sha256.clone(),
        });
    }
    std::fs::rename(&file, &dest).map_err(io("moving", &file))?;
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(dest)
}

/// `apt-get download NAME=VERSION` into an empty folder; returns the one file it wrote.
fn download(dir: &Path, name: &str, version: &str) -> Result<PathBuf> {
    cmd::run(
        Command::new("apt-get")
            .args(["download", "-q", "-o", "APT::Sandbox::User=root"])
            .arg(format!("{name}={version}"))
            .current_dir(dir),
    )?;
    let entries = std::fs::read_dir(dir).map_err(io("listing", dir))?;
    entries
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .ok_or_else(|| Error::Layout(format!("apt-get download {name}={version} wrote no .deb")))
}

/// Pins each role to the version the archive serves now (after `apt-get update`).
pub fn update(cache: &Path) -> Result<Lock> {
    let kernel = cmd::run(Command::new("apt-cache").args(["depends", "linux-image-amd64"]))?
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Depends: ")
                .filter(|d| d.starts_with("linux-image-"))
                .map(str::to_string)
        })
        .ok_or_else(|| {
            Error::Layout("apt-cache knows no linux-image-amd64: run apt-get update".into())
        })?;
    let mut packages = Vec::new();
    for (role, name) in [
        (Role::Kernel, kernel.as_str()),
        (Role::Syslinux, "syslinux"),
        (Role::SyslinuxCommon, "syslinux-common"),
        (Role::Shim, "shim-signed"),
        (Role::GrubSigned, "grub-efi-amd64-signed"),
        (Role::Busybox, "busybox-static"),
    ] {
        let policy = cmd::run(Command::new("apt-cache").args(["policy", name]))?;
        let version = policy
            .lines()
            .find_map(|l| l.trim().strip_prefix("Candidate: ").map(str::to_string))
            .filter(|v| v != "(none)")
            .ok_or_else(|| {
                Error::Layout(format!(
                    "the archive has no candidate for {name}: run apt-get update"
                ))
            })?;
        std::fs::create_dir_all(cache).map_err(io("creating", cache))?;
        let tmp = cache.join(format!(".download-{name}"));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(io("creating", &tmp))?;
        let file = download(&tmp, name, &version)?;
        let pin = Pin {
            role,
            name: name.to_string(),
            sha256: sha256_file(&file)?,
            version,
        };
        std::fs::rename(&file, cached_deb(cache, &pin)).map_err(io("moving", &file))?;
        let _ = std::fs::remove_dir_all(&tmp);
        packages.push(pin);
    }
    Ok(Lock { packages })
}

/// `dpkg-deb -x`: unpacks a package's files under `dest`.
pub fn extract(deb: &Path, dest: &Path) -> Result<()> {
    std::fs::create_dir_all(dest).map_err(io("creating", dest))?;
    cmd::run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(dest)).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checked_in_lock_parses() {
        let lock = Lock::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("kernel.lock"))
            .expect("kernel.lock");
        let k = lock.get(Role::Kernel);
        assert!(k.name.starts_with("linux-image-"), "{k:?}");
        assert_eq!(k.sha256.len(), 64);
        let round = Lock::parse(&toml::to_string(&lock).expect("ser")).expect("parse");
        assert_eq!(round, lock);
        assert!(
            Lock::parse(
                "[[package]]\nrole = \"kernel\"\nname = \"x\"\nversion = \"1\"\nsha256 = \"0\"\n"
            )
            .is_err()
        );
    }
}
