//! The dashboard doors: `ssh admin@unit` with a terminal, and the unit's
//! own console ([`console`]).
//!
//! One [`copyunit_tui::Dashboard`] per session, fed with the unit's published
//! snapshots, the channel's input bytes and window changes. Frames are
//! rendered at most ~10 times a second and only when something changed. A
//! slow client never slows the unit: a frame is rendered only when the
//! previous one has been handed to the channel, and a late frame is simply
//! skipped (the next one is a diff against what the client really has).
//! The terminal is restored on every way out: `q`, Ctrl-C, EOF, disconnect.

use std::sync::Arc;
use std::time::Duration;

use copyunit_tui::{Action, ColorMode, Dashboard, Options};
use russh::ChannelMsg;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::ssh::channel::Door;
use crate::unit::Unit;

pub mod console;

const FRAME: Duration = Duration::from_millis(100);
/// How long a lone ESC waits for the rest of an escape sequence.
const ESC_WAIT: Duration = Duration::from_millis(50);

/// The largest terminal we draw for: a 4K screen in a 6x9 font (~12 MB of
/// cells). A client
/// may ask for 65535x65535 (`pty-req`, `window-change`); the frame buffers
/// are cols x rows cells, so an unbounded size is an unbounded allocation.
pub const MAX_COLS: u16 = 640;
pub const MAX_ROWS: u16 = 240;

/// A client's terminal size, bounded to what a screen can show (pixel
/// sizes are never used).
pub fn bound_size(cols: u32, rows: u32) -> (u16, u16) {
    let c = cols.clamp(1, MAX_COLS as u32) as u16;
    let r = rows.clamp(1, MAX_ROWS as u32) as u16;
    (c, r)
}

/// The terminal the client asked for.
#[derive(Debug, Clone)]
pub struct Pty {
    pub term: String,
    pub cols: u16,
    pub rows: u16,
}

/// What a terminal sends the dashboard.
pub enum Input {
    Bytes(Vec<u8>),
    Resize(u16, u16),
}

/// The dashboard loop, whatever the terminal: input in, frames out, until
/// the user quits (true) or the input ends (false). `frames` is a one-slot
/// queue to the terminal's writer: while it is full the client has not taken
/// the last frame, so nothing is rendered (frames are skipped, not queued).
pub async fn drive(
    unit: &Arc<Unit>,
    dash: &mut Dashboard,
    input: &mut mpsc::Receiver<Input>,
    frames: &mpsc::Sender<Vec<u8>>,
    on_unit_screen: bool,
) -> bool {
    let _ = frames.send(dash.enter_bytes()).await;
    let mut snaps = unit.subscribe();
    // Only the unit's own screen shows the pairing code.
    let local = |snap: Arc<copyunit_model::Snapshot>| {
        if !on_unit_screen {
            return snap;
        }
        let mut s = (*snap).clone();
        s.unit.pairing_code = unit.keys.pairing_code().map(str::to_string);
        Arc::new(s)
    };
    let mut snap = local(snaps.borrow_and_update().clone());
    let mut last_frame = Instant::now() - FRAME;
    let mut esc_deadline: Option<Instant> = None;
    let quit = loop {
        let next_frame = last_frame + FRAME;
        tokio::select! {
            msg = input.recv() => match msg {
                Some(Input::Bytes(data)) => {
                    let actions = dash.handle_input(&data, &snap);
                    if act(unit, dash, actions).await {
                        break true;
                    }
                    esc_deadline = dash.has_pending_input().then(|| Instant::now() + ESC_WAIT);
                }
                Some(Input::Resize(cols, rows)) => {
                    let (cols, rows) = bound_size(cols.into(), rows.into());
                    dash.resize(cols, rows)
                }
                None => break false,
            },
            r = snaps.changed() => {
                if r.is_err() { break false; }
                snap = local(snaps.borrow_and_update().clone());
            }
            _ = tokio::time::sleep_until(esc_deadline.unwrap_or(next_frame)), if esc_deadline.is_some() => {
                esc_deadline = None;
                let actions = dash.flush_pending(&snap);
                if act(unit, dash, actions).await {
                    break true;
                }
            }
            // Wake for the frame clock only while a redraw is due.
            _ = tokio::time::sleep_until(next_frame), if dash.needs_redraw(&snap) => {}
        }
        if Instant::now() >= last_frame + FRAME && dash.needs_redraw(&snap) && frames.capacity() > 0
        {
            if let Some(bytes) = dash.render(&snap)
                && frames.try_send(bytes).is_err()
            {
                dash.redraw_all();
            }
            last_frame = Instant::now();
        }
    };
    let _ = frames.send(dash.leave_bytes()).await;
    quit
}

/// The pty door: one dashboard on an SSH channel; exit-status 0 at the end.
pub async fn run(
    unit: Arc<Unit>,
    door: Door,
    pty: Pty,
    mut resize: mpsc::UnboundedReceiver<(u16, u16)>,
) {
    let Door {
        input: mut read,
        output: write,
    } = door;
    let (width, height) = bound_size(pty.cols.into(), pty.rows.into());
    let mut dash = Dashboard::new(Options {
        width,
        height,
        colors: ColorMode::from_term(&pty.term, None),
        view_only: false,
        mouse: false,
    });
    let (input_tx, mut input) = mpsc::channel(64);
    let pump = tokio::spawn(async move {
        loop {
            let msg = tokio::select! {
                m = read.wait() => match m {
                    Some(ChannelMsg::Data { data }) => Input::Bytes(data.to_vec()),
                    Some(ChannelMsg::Eof | ChannelMsg::Close) | None => break,
                    Some(_) => continue,
                },
                Some((c, r)) = resize.recv() => Input::Resize(c, r),
            };
            if input_tx.send(msg).await.is_err() {
                break;
            }
        }
    });
    let (frames, mut frames_rx) = mpsc::channel::<Vec<u8>>(1);
    let out = write.writer(None);
    let writer = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let mut out = out;
        while let Some(bytes) = frames_rx.recv().await {
            if out.write_all(&bytes).await.is_err() || out.flush().await.is_err() {
                break;
            }
        }
    });
    drive(&unit, &mut dash, &mut input, &frames, false).await;
    drop(frames);
    let _ = writer.await;
    pump.abort();
    write.finish(0).await;
}

/// Hands each action to the unit; returns true on Quit.
async fn act(unit: &Arc<Unit>, dash: &mut Dashboard, actions: Vec<Action>) -> bool {
    for action in actions {
        match action {
            Action::Quit => return true,
            Action::Request(req) => match unit.request(req).await {
                Ok(answer) => dash.show_message(answer.message),
                Err(msg) => dash.show_message(msg),
            },
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_65535x65535_window_change_is_bounded_to_a_screen() {
        assert_eq!(bound_size(65535, 65535), (MAX_COLS, MAX_ROWS));
        assert_eq!(bound_size(u32::MAX, 0), (MAX_COLS, 1));
        assert_eq!(bound_size(80, 24), (80, 24));
        // What the biggest terminal costs the dashboard, drawn.
        let mut d = Dashboard::new(Options {
            width: MAX_COLS,
            height: MAX_ROWS,
            colors: ColorMode::from_term("xterm-256color", None),
            view_only: true,
            mouse: false,
        });
        d.resize(MAX_COLS, MAX_ROWS);
    }
}
