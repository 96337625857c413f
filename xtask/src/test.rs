//! `cargo xtask test`.

use anyhow::Result;

pub fn run(_args: &[String]) -> Result<()> {
    anyhow::bail!("`test` is not written yet")
}
