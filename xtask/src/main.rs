//! `cargo xtask <task>`: every developer task in one place (see README).

#![forbid(unsafe_code)]

use std::process::ExitCode;

mod bench;
mod fuzz;
mod image;
mod qemu;
mod test;
mod util;

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  test [--quick]          install what the tests need, then run every test
  bench [NAME...]         run benchmarks (sftp, write, tui, boot); results go to BENCHMARKS.md
  fuzz [TARGET] [--secs N]
                          run the fuzz targets (cargo-fuzz), N seconds each (default 60)
  image [--authorized-keys FILE] [--out PATH]
                          build the bootable unit image (target/unit.img)
  qemu [--sticks N] [--port P] [--iso FILE] [--uefi|--secure-boot|--direct] [--pc]
                          boot the unit image in QEMU and print how to reach it
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((task, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = match task.as_str() {
        "test" => test::run(rest),
        "bench" => bench::run(rest),
        "fuzz" => fuzz::run(rest),
        "image" => image::run(rest),
        "qemu" => qemu::run(rest),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => {
            eprintln!("xtask: unknown task `{other}`\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {task}: {e:#}");
            ExitCode::FAILURE
        }
    }
}
