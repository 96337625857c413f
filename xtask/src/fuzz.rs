//! `cargo xtask fuzz [TARGET] [--secs N]`: run the fuzz targets of `fuzz/`
//! (cargo-fuzz, libFuzzer), each for a bounded time; fails on a crash.
//!
//! cargo-fuzz needs `-Z` flags; the stable toolchain takes them with
//! `RUSTC_BOOTSTRAP=1`, so no nightly is needed. Each target starts from its
//! seeds in `fuzz/corpus/TARGET/` (read only) and keeps what it finds in
//! `fuzz/target/corpus/TARGET/`, so later runs go on from there. A crashing
//! input lands in `fuzz/artifacts/TARGET/`; replay it with
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run -a TARGET FILE`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::util::{root, run as run_cmd};

/// Seconds per target when no `--secs` is given.
const DEFAULT_SECS: u64 = 60;
/// Seconds per target in `cargo xtask test` (9 targets: under 5 minutes).
pub const CI_SECS: u64 = 30;

pub fn run(args: &[String]) -> Result<()> {
    let mut target = None;
    let mut secs = DEFAULT_SECS;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--secs" => {
                let n = args.next().context("--secs needs a number of seconds")?;
                secs = n
                    .parse()
                    .with_context(|| format!("--secs {n}: not a number of seconds"))?;
            }
            flag if flag.starts_with('-') => bail!("unknown option {flag}"),
            name if target.is_none() => target = Some(name.to_string()),
            extra => bail!("one target at a time (got `{extra}` too)"),
        }
    }
    let all = targets()?;
    let chosen = match target {
        None => all,
        Some(t) if all.contains(&t) => vec![t],
        Some(t) => bail!("no fuzz target `{t}`; there are: {}", all.join(", ")),
    };
    fuzz(&chosen, secs)
}

/// Every target for [`CI_SECS`] (called at the end of `cargo xtask test`).
pub fn ci() -> Result<()> {
    fuzz(&targets()?, CI_SECS)
}

fn fuzz(targets: &[String], secs: u64) -> Result<()> {
    ensure_cargo_fuzz()?;
    let root = root();
    // One build for all of them (with overflow checks and debug assertions).
    let mut build = cargo_fuzz(&root);
    build.args(["build", "--debug-assertions"]);
    if let [one] = targets {
        build.arg(one);
    }
    run_cmd(&mut build)?;
    let scratch = Scratch::mount(&root.join("fuzz/target/scratch"));
    let mut crashed = Vec::new();
    for t in targets {
        let found = root.join("fuzz/target/corpus").join(t);
        std::fs::create_dir_all(&found).with_context(|| format!("creating {}", found.display()))?;
        let seeds = root.join("fuzz/corpus").join(t);
        eprintln!("xtask fuzz: {t} for {secs} s");
        let mut run = cargo_fuzz(&root);
        if let Some(dir) = &scratch.dir {
            run.env("COPYUNIT_FUZZ_SCRATCH", dir);
        }
        let status = run
            .args(["run", "--debug-assertions", t])
            .arg(&found)
            .arg(&seeds)
            .arg("--")
            .arg(format!("-max_total_time={secs}"))
            // A single input (at most 4 KiB) taking this long is a hang,
            // a finding too: e.g. a sparse upload hashed for minutes.
            .arg("-timeout=10")
            .arg("-rss_limit_mb=4096")
            // Each input opens a unit over a fresh store, whose background
            // threads (the store's sizer) end after the input; LeakSanitizer
            // reports such detached threads as leaks of every input. Memory
            // growth is still caught by the RSS limit.
            .arg("-detect_leaks=0")
            .status()
            .context("could not start cargo fuzz")?;
        if !status.success() {
            crashed.push(format!(
                "{t} (input in {})",
                root.join("fuzz/artifacts").join(t).display()
            ));
        }
    }
    if !crashed.is_empty() {
        bail!("fuzzing found crashes: {}", crashed.join("; "));
    }
    eprintln!(
        "xtask fuzz: no crash in {} target(s), {secs} s each",
        targets.len()
    );
    Ok(())
}

/// A small tmpfs for the targets' stores, mounted for the run: the store
/// caps what a client may make it hold (sizes, holes) by its free space, so
/// on a small filesystem every input stays quick to serve, while on the
/// machine's big disks a legitimate 16 GiB size would take a minute to hash
/// and count as a hang. Without root (no mount) the targets use /dev/shm.
struct Scratch {
    dir: Option<std::path::PathBuf>,
    mounted: bool,
}

impl Scratch {
    fn mount(dir: &Path) -> Scratch {
        if std::fs::create_dir_all(dir).is_err() {
            return Scratch {
                dir: None,
                mounted: false,
            };
        }
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256m,mode=0700", "copyunit-fuzz"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            eprintln!(
                "xtask fuzz: could not mount a tmpfs at {} (not root?): the stores use /dev/shm",
                dir.display()
            );
        }
        Scratch {
            dir: mounted.then(|| dir.to_path_buf()),
            mounted,
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let (true, Some(dir)) = (self.mounted, &self.dir) {
            let _ = Command::new("umount").arg(dir).status();
        }
    }
}

/// The targets: one file each in `fuzz/fuzz_targets/`.
fn targets() -> Result<Vec<String>> {
    let dir = root().join("fuzz/fuzz_targets");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| {
            let path = e.ok()?.path();
            (path.extension()? == "rs").then(|| path.file_stem()?.to_str().map(String::from))?
        })
        .collect();
    names.sort();
    Ok(names)
}

fn cargo_fuzz(root: &Path) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.arg("fuzz")
        .current_dir(root)
        .env("RUSTC_BOOTSTRAP", "1")
        // The fuzz crate is its own workspace with its own target dir.
        .env_remove("CARGO_TARGET_DIR");
    cmd
}

fn ensure_cargo_fuzz() -> Result<()> {
    let have = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        eprintln!("xtask fuzz: installing cargo-fuzz");
        run_cmd(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    }
    Ok(())
}
