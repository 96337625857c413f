//! Benchmark: tui.

use anyhow::Result;

pub fn run() -> Result<()> {
    anyhow::bail!("the tui benchmark is not written yet")
}
