//! The dashboard on the unit's own screen (`--console /dev/tty1`): the
//! person at the PC sees the addresses, the host key fingerprint, the
//! pairing code and the jobs. View-only unless `--console-control`.
//!
//! The terminal is put in raw mode for as long as the dashboard runs and
//! restored afterwards; `q` only redraws it (the console has no one to log
//! out), so the screen never goes blank.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;

use copyunit_tui::{ColorMode, Dashboard, Options};
use nix::sys::termios::{self, SetArg};
use tokio::sync::mpsc;

use super::{Input, drive};
use crate::unit::Unit;

nix::ioctl_read_bad!(tiocgwinsz, nix::libc::TIOCGWINSZ, nix::libc::winsize);

/// Rows and columns of a terminal, if it knows them (a serial line does not).
fn window_size(tty: &File) -> Option<(u16, u16)> {
    use std::os::fd::AsRawFd;
    let mut ws = nix::libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the pointer we pass, which
    // points at a live local of exactly that type; the fd is open for the call.
    unsafe { tiocgwinsz(tty.as_raw_fd(), &mut ws) }.ok()?;
    (ws.ws_col > 0 && ws.ws_row > 0).then_some((ws.ws_col, ws.ws_row))
}

/// Runs the dashboard on `path` until unitd stops.
pub async fn run(unit: Arc<Unit>, path: &Path, control: bool) -> std::io::Result<()> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let saved = termios::tcgetattr(tty.as_fd()).ok();
    if let Some(mut raw) = saved.clone() {
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(tty.as_fd(), SetArg::TCSANOW, &raw);
    }
    let (cols, rows) = window_size(&tty).unwrap_or((80, 25));
    let mut reader = tty.try_clone()?;
    let mut writer = tty.try_clone()?;
    let (input_tx, mut input) = mpsc::channel(64);
    std::thread::Builder::new()
        .name("console input".into())
        .spawn(move || {
            let mut buf = [0u8; 256];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if input_tx
                            .blocking_send(Input::Bytes(buf[..n].to_vec()))
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            }
        })?;
    let (frames, mut frames_rx) = mpsc::channel::<Vec<u8>>(1);
    std::thread::Builder::new()
        .name("console output".into())
        .spawn(move || {
            while let Some(bytes) = frames_rx.blocking_recv() {
                if writer
                    .write_all(&bytes)
                    .and_then(|()| writer.flush())
                    .is_err()
                {
                    return;
                }
            }
        })?;
    let term = std::env::var("TERM").unwrap_or_else(|_| "linux".into());
    loop {
        let mut dash = Dashboard::new(Options {
            width: cols,
            height: rows,
            colors: ColorMode::from_term(&term, None),
            view_only: !control,
            mouse: false,
        });
        if !drive(&unit, &mut dash, &mut input, &frames, true).await {
            break;
        }
    }
    if let Some(saved) = saved {
        let _ = termios::tcsetattr(tty.as_fd(), SetArg::TCSANOW, &saved);
    }
    Ok(())
}
