//! The unit's SSH host key: generated once, kept on the store, 0600.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result, bail};
use russh::keys::{Algorithm, HashAlg, PrivateKey, ssh_key::LineEnding};

/// Loads the host key at `path`, generating an ed25519 key there if absent.
pub fn load_or_create(path: &Path) -> Result<PrivateKey> {
    if path.exists() {
        let mode = fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                "host key {} is readable by others (mode {:o}): fixing to 0600",
                path.display(),
                mode & 0o777
            );
            fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
        }
        let key = russh::keys::load_secret_key(path, None)
            .with_context(|| format!("host key {} is unreadable", path.display()))?;
        return Ok(key);
    }
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
        .context("generating the host key")?;
    let pem = key
        .to_openssh(LineEnding::LF)
        .context("encoding the host key")?;
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(pem.as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    if !path.exists() {
        bail!("host key {} vanished after writing", path.display());
    }
    tracing::info!("generated a new host key at {}", path.display());
    Ok(key)
}

/// `SHA256:...`, as `ssh-keygen -l` and the ssh client print it.
pub fn fingerprint(key: &PrivateKey) -> String {
    key.public_key().fingerprint(HashAlg::Sha256).to_string()
}
