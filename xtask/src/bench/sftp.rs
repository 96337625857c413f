//! Benchmark: sftp.

use anyhow::Result;

pub fn run() -> Result<()> {
    anyhow::bail!("the sftp benchmark is not written yet")
}
