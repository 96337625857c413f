//! The pty door: `ssh admin@unit` with a terminal runs the dashboard.
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
use russh::server::Msg;
use russh::{Channel, ChannelMsg};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::unit::Unit;

const FRAME: Duration = Duration::from_millis(100);
/// How long a lone ESC waits for the rest of an escape sequence.
const ESC_WAIT: Duration = Duration::from_millis(50);

/// The terminal the client asked for.
#[derive(Debug, Clone)]
pub struct Pty {
    pub term: String,
    pub cols: u16,
    pub rows: u16,
}

pub async fn run(
    unit: Arc<Unit>,
    channel: Channel<Msg>,
    pty: Pty,
    mut resize: mpsc::UnboundedReceiver<(u16, u16)>,
) {
    let (mut read, write) = channel.split();
    let mut dash = Dashboard::new(Options {
        width: pty.cols,
        height: pty.rows,
        colors: ColorMode::from_term(&pty.term, None),
        view_only: false,
        mouse: false,
    });
    // Frames go through a one-slot queue to a writer task: a full slot means
    // the client has not taken the last frame yet, so we do not render.
    let (frames, mut frames_rx) = mpsc::channel::<Vec<u8>>(1);
    let out = write.make_writer();
    let writer = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let mut out = out;
        while let Some(bytes) = frames_rx.recv().await {
            if out.write_all(&bytes).await.is_err() || out.flush().await.is_err() {
                break;
            }
        }
    });
    let _ = frames.send(dash.enter_bytes()).await;
    let mut snaps = unit.subscribe();
    let mut snap = snaps.borrow_and_update().clone();
    let mut last_frame = Instant::now() - FRAME;
    let mut esc_deadline: Option<Instant> = None;
    let mut quit = false;
    while !quit {
        let next_frame = last_frame + FRAME;
        tokio::select! {
            msg = read.wait() => match msg {
                Some(ChannelMsg::Data { data }) => {
                    let actions = dash.handle_input(&data, &snap);
                    quit = act(&unit, &mut dash, actions).await;
                    esc_deadline = dash.has_pending_input().then(|| Instant::now() + ESC_WAIT);
                }
                Some(ChannelMsg::Eof | ChannelMsg::Close) | None => break,
                Some(_) => {}
            },
            Some((cols, rows)) = resize.recv() => dash.resize(cols, rows),
            r = snaps.changed() => {
                if r.is_err() { break; }
                snap = snaps.borrow_and_update().clone();
            }
            _ = tokio::time::sleep_until(esc_deadline.unwrap_or(next_frame)), if esc_deadline.is_some() => {
                esc_deadline = None;
                let actions = dash.flush_pending(&snap);
                quit = act(&unit, &mut dash, actions).await;
            }
            // Wake for the frame clock only while a redraw is due.
            _ = tokio::time::sleep_until(next_frame), if dash.needs_redraw(&snap) => {}
        }
        if quit {
            break;
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
    }
    let _ = frames.send(dash.leave_bytes()).await;
    drop(frames);
    let _ = writer.await;
    let _ = write.exit_status(0).await;
    let _ = write.eof().await;
    let _ = write.close().await;
}

/// Hands each action to the unit; returns true on Quit.
async fn act(unit: &Arc<Unit>, dash: &mut Dashboard, actions: Vec<Action>) -> bool {
    for action in actions {
        match action {
            Action::Quit => return true,
            Action::Request(req) => match unit.request(req).await {
                Ok(msg) => dash.show_message(msg),
                Err(msg) => dash.show_message(msg),
            },
        }
    }
    false
}
