//! `cargo xtask image`.

use anyhow::Result;

pub fn run(_args: &[String]) -> Result<()> {
    anyhow::bail!("`image` is not written yet")
}
