//! Benchmark: write.

use anyhow::Result;

pub fn run() -> Result<()> {
    anyhow::bail!("the write benchmark is not written yet")
}
