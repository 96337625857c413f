//! Exec commands: `ssh admin@unit CMD [ARGS]` without a pty.
//!
//! Each command parses its argv (clap), asks the unit, and renders the answer
//! as text or, with `--json`, as JSON with the field names of
//! `copyunit_model` (documented in the README). Exit status: 0 success,
//! 1 the unit could not do it, 2 bad usage (usage on stderr).

mod render;

use std::sync::Arc;

use bytes::Bytes;
use clap::{Parser, Subcommand};
use copyunit_model::{EventKind, Request};
use serde::Serialize;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::store::ImageName;
use crate::unit::Unit;

pub const EXIT_OK: u32 = 0;
pub const EXIT_FAILED: u32 = 1;
pub const EXIT_USAGE: u32 = 2;

/// Standard input of a command, as the SSH channel delivers it.
pub struct Stdin {
    rx: mpsc::Receiver<StdinMsg>,
    ended: bool,
}

pub enum StdinMsg {
    Data(Bytes),
    /// The client sent EOF: input is complete.
    Eof,
}

#[derive(Debug, thiserror::Error)]
#[error("the connection closed before the end of the input")]
pub struct Broken;

impl Stdin {
    pub fn new(rx: mpsc::Receiver<StdinMsg>) -> Stdin {
        Stdin { rx, ended: false }
    }

    /// Next chunk; `Ok(None)` at EOF; `Err(Broken)` if the channel went
    /// away without EOF (Ctrl-C, network cut): the input is incomplete.
    pub async fn next(&mut self) -> Result<Option<Bytes>, Broken> {
        if self.ended {
            return Ok(None);
        }
        match self.rx.recv().await {
            Some(StdinMsg::Data(b)) => Ok(Some(b)),
            Some(StdinMsg::Eof) => {
                self.ended = true;
                Ok(None)
            }
            None => Err(Broken),
        }
    }

    /// Reads everything up to EOF, at most `limit` bytes.
    pub async fn read_to_end(&mut self, limit: usize) -> Result<Vec<u8>, String> {
        let mut buf = Vec::new();
        while let Some(chunk) = self.next().await.map_err(|e| e.to_string())? {
            buf.extend_from_slice(&chunk);
            if buf.len() > limit {
                return Err(format!("input longer than {limit} bytes"));
            }
        }
        Ok(buf)
    }

    /// Reads everything up to EOF as UTF-8 text, at most `limit` bytes.
    pub async fn read_to_string(&mut self, limit: usize) -> Result<String, String> {
        let buf = self.read_to_end(limit).await?;
        String::from_utf8(buf).map_err(|_| "input is not UTF-8 text".to_string())
    }
}

/// Where a command writes.
pub struct Io<'a> {
    pub stdin: Stdin,
    pub stdout: &'a mut (dyn AsyncWrite + Send + Unpin),
    pub stderr: &'a mut (dyn AsyncWrite + Send + Unpin),
}

#[derive(Debug, Parser)]
#[command(
    name = "ssh admin@unit",
    disable_help_subcommand = true,
    no_binary_name = true,
    about = "copyunit: write one image to many drives",
    after_help = "Upload images with sftp or scp; `ssh admin@unit upload NAME < FILE` works too.\nWithout a command, `ssh admin@unit` opens the dashboard."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Unit name, version, addresses, store usage, uptime
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Images in the store
    Images {
        #[arg(long)]
        json: bool,
    },
    /// Remove an image (or an interrupted upload) from the store
    Rm {
        image: String,
        #[arg(long)]
        json: bool,
    },
    /// Store standard input as image NAME (e.g. `upload disc.iso < /dev/sr0`)
    Upload {
        name: String,
        /// Expected size in bytes, for progress
        #[arg(long)]
        size: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// Drives, source drives, burners and the store disk, with eligibility
    Drives {
        #[arg(long)]
        json: bool,
    },
    /// Write IMAGE (or the disc in a drive, e.g. sr0) to DRIVE... (kernel name, slot or serial;
    /// disc burners too; `all` = every eligible drive that is not a burner)
    Copy {
        image: String,
        drives: Vec<String>,
        /// Skip reading the drives back
        #[arg(long)]
        no_verify: bool,
        /// Wait for the result: exit 0 only if every drive was written and verified
        #[arg(long)]
        wait: bool,
        /// Duplicator mode: write IMAGE to every drive inserted from now on
        #[arg(long, conflicts_with_all = ["drives", "wait"])]
        auto: bool,
        #[arg(long)]
        json: bool,
    },
    /// Duplicator mode status; `auto stop` turns it off
    Auto {
        #[arg(value_parser = ["stop"])]
        action: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Jobs, running and finished (the acknowledgements)
    Jobs {
        #[arg(long)]
        json: bool,
    },
    /// One job with every drive's result
    Job {
        id: u64,
        /// Wait until it finishes; exit 0 only if it succeeded
        #[arg(long)]
        wait: bool,
        #[arg(long)]
        json: bool,
    },
    /// Cancel a running job
    Cancel { id: u64 },
    /// Erase a drive's partition tables and signatures (--full: every byte);
    /// blank or format a rewritable disc (--full: every sector)
    Wipe {
        drive: String,
        #[arg(long)]
        full: bool,
        #[arg(long)]
        wait: bool,
        #[arg(long)]
        json: bool,
    },
    /// Read a whole drive into a new image NAME in the store
    Read {
        drive: String,
        name: String,
        #[arg(long)]
        wait: bool,
        #[arg(long)]
        json: bool,
    },
    /// Open a disc drive's tray (--load closes it); flush and power off a USB drive
    Eject {
        drive: String,
        #[arg(long)]
        load: bool,
    },
    /// Manage the admin's SSH keys
    Keys {
        #[command(subcommand)]
        cmd: KeysCmd,
    },
    /// Recent events (uploads, drives, jobs)
    Events {
        #[arg(long)]
        json: bool,
    },
    /// Power the unit off (appliance only)
    Poweroff,
    /// Reboot the unit (appliance only)
    Reboot,
    /// This help
    Help,
}

#[derive(Debug, Subcommand)]
enum KeysCmd {
    /// Installed keys with their fingerprints
    List {
        #[arg(long)]
        json: bool,
    },
    /// Install OpenSSH public keys read from standard input
    Add {
        #[arg(long)]
        json: bool,
    },
    /// Remove the key with this fingerprint (SHA256:...)
    Rm {
        fingerprint: String,
        #[arg(long)]
        json: bool,
    },
}

/// Runs one command line and returns its exit status.
pub async fn run(unit: &Arc<Unit>, line: &str, io: &mut Io<'_>) -> u32 {
    let argv = match shell_words::split(line) {
        Ok(argv) => argv,
        Err(e) => {
            let _ = say(io.stderr, &format!("cannot parse the command line: {e}\n")).await;
            return EXIT_USAGE;
        }
    };
    let cli = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind::*;
            let text = e.render().to_string();
            return match e.kind() {
                // A missing subcommand (`keys` alone) is bad usage: exit 2.
                DisplayHelp | DisplayVersion => {
                    let _ = say(io.stdout, &text).await;
                    EXIT_OK
                }
                _ => {
                    let _ = say(io.stderr, &text).await;
                    EXIT_USAGE
                }
            };
        }
    };
    match execute(unit, cli.cmd, io).await {
        Ok(code) => code,
        Err(msg) => {
            let _ = say(io.stderr, &format!("error: {msg}\n")).await;
            EXIT_FAILED
        }
    }
}

/// Whether `line` is a command unitd would run (for `command=` in
/// authorized_keys); the reason if not.
pub fn check(line: &str) -> Result<(), String> {
    parse(line).map_err(|e| {
        e.lines()
            .next()
            .unwrap_or("not a command")
            .trim_start_matches("error: ")
            .to_string()
    })
}

/// Parses a command line as [`run`] does, without running it (the fuzz
/// target's entry point: `fuzz/fuzz_targets/exec_command.rs`): the text clap
/// would print for help or bad usage.
pub fn parse(line: &str) -> Result<(), String> {
    let argv = shell_words::split(line).map_err(|e| e.to_string())?;
    Cli::try_parse_from(&argv)
        .map(drop)
        .map_err(|e| e.render().to_string())
}

/// Help text, for `help` and the no-pty shell.
pub fn help() -> String {
    use clap::CommandFactory;
    Cli::command().render_help().to_string()
}

type Outcome = Result<u32, String>;

async fn execute(unit: &Arc<Unit>, cmd: Cmd, io: &mut Io<'_>) -> Outcome {
    match cmd {
        Cmd::Status { json } => {
            let info = unit.info();
            let images = unit.store.catalog();
            emit(io, json, &info, || render::status(&info, &images)).await
        }
        Cmd::Images { json } => {
            let images = unit.store.catalog();
            let partials = unit.store.partials();
            let rows = images_rows(&images, &partials);
            emit(io, json, &rows, || {
                render::images_and_partials(&images, &partials)
            })
            .await
        }
        Cmd::Events { json } => {
            let events = unit.snapshot().events;
            emit(io, json, &events, || render::events(&events)).await
        }
        Cmd::Rm { image, json } => {
            let msg = unit
                .request(Request::RemoveImage {
                    name: image.clone(),
                })
                .await?
                .message;
            let out = serde_json::json!({ "removed": image });
            emit(io, json, &out, || format!("{msg}\n")).await
        }
        Cmd::Upload { name, size, json } => upload(unit, &name, size, json, io).await,
        Cmd::Drives { json } => {
            // Answer with what is attached now, not at the last rescan.
            let u = unit.clone();
            let _ = tokio::task::spawn_blocking(move || u.rescan_drives()).await;
            let drives = unit.drives_now();
            emit(io, json, &drives, || render::drives(&drives)).await
        }
        Cmd::Copy {
            image,
            drives,
            no_verify,
            wait,
            auto,
            json,
        } => {
            if auto {
                let req = Request::StartDuplicator {
                    image,
                    verify: !no_verify,
                };
                let msg = unit.request(req).await?.message;
                let dup = unit.duplicator();
                return emit(io, json, &dup, || format!("{msg}; `auto stop` ends it\n")).await;
            }
            let req = Request::Copy {
                image,
                targets: drives,
                verify: !no_verify,
            };
            started(unit, req, wait, json, io).await
        }
        Cmd::Auto { action, json } => {
            let msg = match action {
                Some(_) => Some(unit.request(Request::StopDuplicator).await?.message),
                None => None,
            };
            let dup = unit.duplicator();
            emit(io, json, &dup, || match msg {
                Some(msg) => format!("{msg}\n"),
                None => format!("duplicator {}\n", render::duplicator(dup.as_ref())),
            })
            .await
        }
        Cmd::Jobs { json } => {
            let jobs = unit.jobs.list();
            emit(io, json, &jobs, || render::jobs(&jobs)).await
        }
        Cmd::Job { id, wait, json } => {
            if unit.jobs.get(id).is_none() {
                return Err(format!("no job {id} (see `jobs`)"));
            }
            if wait {
                return wait_job(unit, id, json, io).await;
            }
            let job = unit.jobs.get(id).ok_or_else(|| format!("no job {id}"))?;
            emit(io, json, &job, || render::job(&job)).await
        }
        Cmd::Cancel { id } => {
            let msg = unit.request(Request::Cancel { job: id }).await?.message;
            say(io.stdout, &format!("{msg}\n")).await?;
            Ok(EXIT_OK)
        }
        Cmd::Wipe {
            drive,
            full,
            wait,
            json,
        } => started(unit, Request::Wipe { drive, full }, wait, json, io).await,
        Cmd::Read {
            drive,
            name,
            wait,
            json,
        } => started(unit, Request::Read { drive, name }, wait, json, io).await,
        Cmd::Eject { drive, load } => {
            let u = unit.clone();
            let done = tokio::task::spawn_blocking(move || crate::jobs::eject(&u, &drive, load))
                .await
                .map_err(|e| e.to_string())??;
            say(io.stdout, &format!("{done}\n")).await?;
            Ok(EXIT_OK)
        }
        Cmd::Keys { cmd } => keys(unit, cmd, io).await,
        Cmd::Poweroff => power(unit, nix::sys::signal::Signal::SIGUSR2, "powering off", io).await,
        Cmd::Reboot => power(unit, nix::sys::signal::Signal::SIGTERM, "rebooting", io).await,
        Cmd::Help => {
            say(io.stdout, &help()).await?;
            Ok(EXIT_OK)
        }
    }
}

/// Starts a job; prints its id, or with `--wait` follows it to the end.
async fn started(
    unit: &Arc<Unit>,
    req: Request,
    wait: bool,
    json: bool,
    io: &mut Io<'_>,
) -> Outcome {
    let answer = unit.request(req).await?;
    let msg = answer.message;
    let id = answer
        .job
        .ok_or_else(|| "the job did not start".to_string())?;
    if wait {
        return wait_job(unit, id, json, io).await;
    }
    let out = serde_json::json!({ "job": id });
    emit(io, json, &out, || {
        format!("{msg} (job {id}; follow with `job {id} --wait`)\n")
    })
    .await
}

/// Follows a job: progress on stderr, the result on stdout. Exit 0 only
/// when every drive was written and verified - the acknowledgement.
async fn wait_job(unit: &Arc<Unit>, id: u64, json: bool, io: &mut Io<'_>) -> Outcome {
    let mut snaps = unit.subscribe();
    let mut last_line = String::new();
    loop {
        let job = unit
            .jobs
            .get(id)
            .ok_or_else(|| format!("job {id} vanished"))?;
        if job.state.is_finished() {
            let code = if job.state == copyunit_model::JobState::Done {
                EXIT_OK
            } else {
                EXIT_FAILED
            };
            emit(io, json, &job, || render::job(&job)).await?;
            if code != EXIT_OK {
                for t in job
                    .targets
                    .iter()
                    .filter(|t| t.phase != copyunit_model::Phase::Done)
                {
                    let why = t.error.as_deref().unwrap_or(match t.phase {
                        copyunit_model::Phase::Cancelled => "cancelled",
                        _ => "not finished",
                    });
                    say(io.stderr, &format!("error: {}: {why}\n", t.drive)).await?;
                }
                if let Some(e) = &job.error {
                    say(io.stderr, &format!("error: {e}\n")).await?;
                }
            }
            return Ok(code);
        }
        let line = render::progress_line(&job);
        if line != last_line {
            say(io.stderr, &format!("{line}\n")).await?;
            last_line = line;
        }
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), snaps.changed()).await;
    }
}

/// The patent's step 32 without a client program: the admin's own `ssh`
/// pipes a file or a disc in. Only an EOF completes it; a cut connection
/// leaves a partial that never shows as an image.
async fn upload(
    unit: &Arc<Unit>,
    name: &str,
    size: Option<u64>,
    json: bool,
    io: &mut Io<'_>,
) -> Outcome {
    let name = ImageName::new(name).map_err(|e| e.to_string())?;
    let up = unit
        .store
        .begin_upload(&name, true, size)
        .map_err(|e| e.to_string())?;
    unit.changed();
    let mut offset = 0u64;
    loop {
        match io.stdin.next().await {
            Ok(Some(chunk)) => {
                let n = chunk.len() as u64;
                if let Err(e) = up.write_at(offset, chunk.to_vec()).await {
                    return Err(e.to_string());
                }
                offset += n;
            }
            Ok(None) => break,
            Err(Broken) => {
                drop(up);
                let msg = format!("upload of {name} interrupted after {offset} bytes: not stored");
                tracing::warn!("{msg}");
                return Err(msg);
            }
        }
    }
    let entry = unit
        .store
        .finish_upload(&name, up)
        .await
        .map_err(|e| e.to_string())?;
    unit.event(
        EventKind::UploadDone,
        format!(
            "image {name} stored ({})",
            copyunit_model::format::bytes(entry.size)
        ),
    );
    let image = unit.store.image(name.as_str());
    match image {
        Some(img) => {
            emit(io, json, &img, || {
                render::images(std::slice::from_ref(&img))
            })
            .await
        }
        None => {
            emit(io, json, &entry, || {
                format!(
                    "stored {name} ({} bytes, sha256 {})\n",
                    entry.size, entry.sha256
                )
            })
            .await
        }
    }
}

/// Runs a key-file operation off the async runtime (it reads and writes the
/// file).
async fn with_keys<T: Send + 'static>(
    unit: &Arc<Unit>,
    f: impl FnOnce(&crate::ssh::auth::Keys) -> T + Send + 'static,
) -> Result<T, String> {
    let unit = unit.clone();
    tokio::task::spawn_blocking(move || f(&unit.keys))
        .await
        .map_err(|e| e.to_string())
}

async fn keys(unit: &Arc<Unit>, cmd: KeysCmd, io: &mut Io<'_>) -> Outcome {
    match cmd {
        KeysCmd::List { json } => {
            let (keys, problems) = with_keys(unit, |k| (k.list(), k.problems())).await?;
            for p in &problems {
                say(
                    io.stderr,
                    &format!("warning: {}: {p}\n", unit.keys.path().display()),
                )
                .await?;
            }
            emit(io, json, &keys, || render::keys(&keys)).await
        }
        KeysCmd::Add { json } => {
            let text = io.stdin.read_to_end(crate::ssh::auth::MAX_ADD).await?;
            let added = with_keys(unit, move |k| k.add(&text))
                .await?
                .map_err(|e| e.to_string())?;
            for k in &added {
                unit.event(EventKind::Info, format!("SSH key {} added", k.fingerprint));
            }
            emit(io, json, &added, || render::keys(&added)).await
        }
        KeysCmd::Rm { fingerprint, json } => {
            let removed = with_keys(unit, move |k| k.remove(&fingerprint))
                .await?
                .map_err(|e| e.to_string())?;
            unit.event(
                EventKind::Info,
                format!("SSH key {} removed", removed.fingerprint),
            );
            emit(io, json, &removed, || {
                format!("removed {}\n", removed.fingerprint)
            })
            .await
        }
    }
}

async fn power(
    unit: &Arc<Unit>,
    sig: nix::sys::signal::Signal,
    what: &str,
    io: &mut Io<'_>,
) -> Outcome {
    if !unit.config.appliance {
        return Err("this unitd is not running as the appliance (no --appliance): refusing to power off its host".into());
    }
    say(io.stdout, &format!("{}: {what}\n", unit.config.name)).await?;
    unit.event(EventKind::Warning, format!("{what} on request"));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(1), sig)
        .map_err(|e| format!("signalling init: {e}"))?;
    Ok(EXIT_OK)
}

/// Prints `value` as JSON or as the text `text()` renders.
/// One row of `images --json`: an image (`partial: false`), or an
/// interrupted upload (`partial: true`) with only its name, the bytes it
/// holds (`size`) and when it was last written (`added`). Interrupted
/// uploads come after the images; they are never a copy source.
#[derive(Serialize)]
#[serde(untagged)]
enum ImagesRow<'a> {
    Image {
        #[serde(flatten)]
        image: &'a copyunit_model::Image,
        partial: bool,
    },
    Partial {
        name: &'a str,
        partial: bool,
        size: u64,
        added: u64,
    },
}

fn images_rows<'a>(
    images: &'a [copyunit_model::Image],
    partials: &'a [copyunit_model::Partial],
) -> Vec<ImagesRow<'a>> {
    let images = images.iter().map(|image| ImagesRow::Image {
        image,
        partial: false,
    });
    let partials = partials.iter().map(|p| ImagesRow::Partial {
        name: &p.name,
        partial: true,
        size: p.bytes,
        added: p.since,
    });
    images.chain(partials).collect()
}

async fn emit<T: Serialize>(
    io: &mut Io<'_>,
    json: bool,
    value: &T,
    text: impl FnOnce() -> String,
) -> Outcome {
    let out = if json {
        let mut s = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
        s.push('\n');
        s
    } else {
        text()
    };
    say(io.stdout, &out).await?;
    Ok(EXIT_OK)
}

async fn say(w: &mut (dyn AsyncWrite + Send + Unpin), text: &str) -> Result<(), String> {
    w.write_all(text.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    w.flush().await.map_err(|e| e.to_string())
}
