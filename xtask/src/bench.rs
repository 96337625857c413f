//! `cargo xtask bench [NAME...]`: measured against the peer tool in the same run.

use anyhow::{Result, bail};

mod dashboard;
mod sftp;
mod tui;
mod write;

pub fn run(args: &[String]) -> Result<()> {
    let all = ["sftp", "write", "tui", "dashboard"];
    let names: Vec<&str> = if args.is_empty() {
        all.to_vec()
    } else {
        args.iter().map(String::as_str).collect()
    };
    for name in names {
        match name {
            "sftp" => sftp::run()?,
            "write" => write::run()?,
            "tui" => tui::run()?,
            "dashboard" => dashboard::run()?,
            other => bail!("unknown benchmark `{other}` (known: {})", all.join(", ")),
        }
    }
    Ok(())
}
