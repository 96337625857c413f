//! `cargo xtask qemu`.

use anyhow::Result;

pub fn run(_args: &[String]) -> Result<()> {
    anyhow::bail!("`qemu` is not written yet")
}
