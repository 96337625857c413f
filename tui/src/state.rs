//! The per-session UI state and the key map: what a key does to the state,
//! and which [`Request`] it produces. Drawing lives in `views`.
//!
//! The workflow follows the patent's order: choose an image (Enter in the
//! Images pane), choose targets (Space, `a`), confirm on a summary naming
//! every drive that will be erased (with verify on/off), start. Every action
//! that destroys or stops something goes through a confirmation dialog.

use std::collections::{BTreeSet, HashMap, VecDeque};

use copyunit_model::{Drive, Image, ImageState, Job, JobId, JobState, Request, Snapshot, format};

use ratatui::layout::{Position, Rect};
use ratatui::widgets::TableState;

use crate::input::{KeyCode, KeyEvent, Modifiers, MouseButton, MouseEvent, MouseKind};
use crate::text;

/// Every key, as the help overlay lists it: (keys, what they do). Kept
/// beside the key map below so the two change together.
pub const HELP: &[(&str, &str)] = &[
    ("Tab Shift-Tab h l Left Right", "next / previous pane"),
    ("Up Down  j k", "move the cursor"),
    ("PgUp PgDn", "move a page"),
    ("Home End  g G", "first / last row"),
    ("Enter (Images)", "choose the image to copy"),
    ("Space (Drives)", "select / unselect a target drive"),
    ("a (Drives)", "every writable block drive (again: none)"),
    ("Enter (Drives)", "review the copy and confirm"),
    ("v (confirm copy)", "verify after writing on / off"),
    ("c", "cancel the running job under the cursor"),
    ("d  Delete (Images)", "delete the image"),
    ("w (Drives)", "wipe the drive (f: full wipe on / off)"),
    ("r (Drives)", "read the drive into a new image"),
    ("A", "duplicator on/off: image to drives inserted"),
    ("y Enter / n Esc", "confirm / back out of a question"),
    ("Esc", "dismiss a notice / clear image and drives"),
    ("? F1", "this help"),
    ("Ctrl-L", "repaint the screen"),
    ("q  Ctrl-C", "leave the dashboard"),
];

/// What a key press asks of the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Hand this to the unit; the outcome shows up in later snapshots.
    Request(Request),
    /// The user asked to leave the dashboard (`q`, Ctrl-C).
    Quit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pane {
    Drives,
    Images,
    Jobs,
    Log,
}

impl Pane {
    const ORDER: [Pane; 4] = [Pane::Images, Pane::Drives, Pane::Jobs, Pane::Log];

    fn step(self, forward: bool) -> Pane {
        let i = Pane::ORDER.iter().position(|p| *p == self).unwrap_or(0);
        let n = Pane::ORDER.len();
        Pane::ORDER[if forward {
            (i + 1) % n
        } else {
            (i + n - 1) % n
        }]
    }
}

/// A cursor in a list that follows its item (by key) when the list changes.
#[derive(Debug, Clone, Default)]
pub struct Cursor {
    pub index: usize,
    key: Option<String>,
}

impl Cursor {
    /// Re-finds the item under the cursor in `keys`; returns its index.
    pub fn resolve(&mut self, keys: &[String]) -> Option<usize> {
        if keys.is_empty() {
            self.index = 0;
            return None;
        }
        if let Some(i) = self
            .key
            .as_ref()
            .and_then(|k| keys.iter().position(|x| x == k))
        {
            self.index = i;
        }
        self.index = self.index.min(keys.len() - 1);
        self.key = Some(keys[self.index].clone());
        Some(self.index)
    }

    fn moved(&mut self, keys: &[String], delta: isize) {
        if keys.is_empty() {
            return;
        }
        let max = keys.len() as isize - 1;
        self.index = (self.index as isize + delta).clamp(0, max) as usize;
        self.key = Some(keys[self.index].clone());
    }
}

/// A one-line text field (the new image name of a read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineEditor {
    pub text: Vec<char>,
    /// Position in `text` (0..=len).
    pub cursor: usize,
}

/// Names are stored as files: the store's limit, in bytes.
const MAX_NAME: usize = copyunit_model::names::MAX_NAME_LEN;

impl LineEditor {
    pub fn new(initial: &str) -> LineEditor {
        let text: Vec<char> = initial.chars().collect();
        LineEditor {
            cursor: text.len(),
            text,
        }
    }

    pub fn value(&self) -> String {
        self.text.iter().collect()
    }

    /// Applies an editing key; false if the key is not an editing key.
    fn edit(&mut self, key: KeyEvent) -> bool {
        let ctrl = key.mods.contains(Modifiers::CTRL);
        match key.code {
            KeyCode::Char('a') if ctrl => self.cursor = 0,
            KeyCode::Char('e') if ctrl => self.cursor = self.text.len(),
            KeyCode::Char('u') if ctrl => {
                self.text.drain(..self.cursor);
                self.cursor = 0;
            }
            KeyCode::Char('k') if ctrl => self.text.truncate(self.cursor),
            KeyCode::Char(_) if ctrl || key.mods.contains(Modifiers::ALT) => return false,
            KeyCode::Char(c) => {
                let bytes: usize = self.text.iter().map(|c| c.len_utf8()).sum();
                if bytes + c.len_utf8() <= MAX_NAME {
                    self.text.insert(self.cursor, c);
                    self.cursor += 1;
                }
            }
            KeyCode::Backspace if self.cursor > 0 => {
                self.cursor -= 1;
                self.text.remove(self.cursor);
            }
            KeyCode::Delete if self.cursor < self.text.len() => {
                self.text.remove(self.cursor);
            }
            KeyCode::Left => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Right => self.cursor = (self.cursor + 1).min(self.text.len()),
            KeyCode::Home => self.cursor = 0,
            KeyCode::End => self.cursor = self.text.len(),
            KeyCode::Backspace | KeyCode::Delete => {}
            _ => return false,
        }
        true
    }
}

/// A modal question; keys go to it until it closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dialog {
    ConfirmCopy {
        image: String,
        targets: Vec<String>,
        verify: bool,
    },
    ConfirmCancel {
        job: JobId,
    },
    ConfirmRemove {
        image: String,
    },
    ConfirmWipe {
        drive: String,
        full: bool,
    },
    /// Asks for the name of the image a read creates.
    ReadName {
        drive: String,
        editor: LineEditor,
        error: Option<String>,
    },
    ConfirmRead {
        drive: String,
        name: String,
    },
    /// Duplicator mode on with this image.
    ConfirmDuplicator {
        image: String,
        verify: bool,
    },
    /// Duplicator mode (now writing `image`) off.
    ConfirmStopDuplicator {
        image: String,
    },
}

/// A message that stays until acknowledged (Enter or Esc): a job finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub title: String,
    pub lines: Vec<String>,
    pub ok: bool,
}

/// Most notices kept; older ones are dropped unseen.
const MAX_NOTICES: usize = 8;

/// Everything one session's dashboard remembers between frames.
#[derive(Debug)]
pub struct Ui {
    pub view_only: bool,
    pub focus: Pane,
    pub drives: Cursor,
    pub images: Cursor,
    pub jobs: Cursor,
    /// Lines scrolled back from the newest event.
    pub log_scroll: usize,
    /// The image chosen for the next copy.
    pub image: Option<String>,
    /// Drives chosen as targets of the next copy.
    pub targets: BTreeSet<String>,
    pub verify: bool,
    pub dialog: Option<Dialog>,
    pub help: bool,
    pub notices: VecDeque<Notice>,
    /// A one-line message in the footer, cleared by the next key.
    pub status: Option<String>,
    /// Jobs in the last snapshot seen, and whether each was running; None
    /// before the first snapshot.
    seen_running: Option<HashMap<JobId, bool>>,
    /// Scroll positions of the tables, kept so rows do not jump between frames.
    pub tables: Tables,
    /// Where the last frame drew each pane's rows, for mouse clicks.
    pub hits: Vec<Hit>,
}

#[derive(Debug, Default)]
pub struct Tables {
    pub drives: TableState,
    pub images: TableState,
    pub jobs: TableState,
}

/// A pane's rows on screen: `items[i]` is the list index shown on row
/// `area.y + i` (None for rows that are not items, like a job's targets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub pane: Pane,
    pub area: Rect,
    pub items: Vec<Option<usize>>,
}

impl Ui {
    pub fn new(view_only: bool) -> Ui {
        Ui {
            view_only,
            focus: Pane::Images,
            drives: Cursor::default(),
            images: Cursor::default(),
            jobs: Cursor::default(),
            log_scroll: 0,
            image: None,
            targets: BTreeSet::new(),
            verify: true,
            dialog: None,
            help: false,
            notices: VecDeque::new(),
            status: None,
            seen_running: None,
            tables: Tables::default(),
            hits: Vec::new(),
        }
    }

    /// Takes in a new snapshot: notices for jobs that finished since the
    /// last one, and forgets choices that are no longer possible.
    pub fn observe(&mut self, snap: &Snapshot) {
        if let Some(seen) = &self.seen_running {
            // A job that finished since, or that came and went between two
            // snapshots (a fast one), is news; one seen finished is not.
            for job in &snap.jobs {
                if job.state.is_finished() && seen.get(&job.id).copied().unwrap_or(true) {
                    self.notices.push_back(finished_notice(job));
                }
            }
            while self.notices.len() > MAX_NOTICES {
                self.notices.pop_front();
            }
        }
        self.seen_running = Some(
            snap.jobs
                .iter()
                .map(|j| (j.id, !j.state.is_finished()))
                .collect(),
        );

        let before = self.targets.len();
        self.targets.retain(|t| {
            snap.drives
                .iter()
                .any(|d| &d.name == t && d.eligible && d.job.is_none())
        });
        if self.targets.len() < before {
            self.status =
                Some("a selected drive is gone or no longer eligible: selection updated".into());
        }
        if let Some(img) = &self.image
            && !snap.images.iter().any(|i| &i.name == img)
        {
            self.status = Some(format!("image {img} is no longer in the store"));
            self.image = None;
        }
    }

    /// Applies one key; returns what the caller must do.
    pub fn key(&mut self, key: KeyEvent, snap: &Snapshot) -> Vec<Action> {
        if key == KeyEvent::ctrl('c') {
            return vec![Action::Quit];
        }
        self.status = None;
        if self.help {
            if matches!(
                key.code,
                KeyCode::Esc | KeyCode::Enter | KeyCode::Char('?' | 'q') | KeyCode::F(1)
            ) {
                self.help = false;
            }
            return Vec::new();
        }
        if let Some(dialog) = self.dialog.take() {
            return self.dialog_key(dialog, key, snap);
        }
        if !self.notices.is_empty() && matches!(key.code, KeyCode::Enter | KeyCode::Esc) {
            self.notices.pop_front();
            return Vec::new();
        }
        self.normal_key(key, snap)
    }

    /// Applies a mouse report: the wheel scrolls the pane under it, a
    /// click focuses a pane and puts its cursor on the clicked row.
    pub fn mouse(&mut self, m: MouseEvent, snap: &Snapshot) {
        if self.help || self.dialog.is_some() || m.kind != MouseKind::Press {
            return;
        }
        let at = Position { x: m.x, y: m.y };
        let Some(hit) = self.hits.iter().find(|h| h.area.contains(at)).cloned() else {
            return;
        };
        self.status = None;
        self.focus = hit.pane;
        match m.button {
            MouseButton::WheelUp => self.move_cursor(snap, -3),
            MouseButton::WheelDown => self.move_cursor(snap, 3),
            MouseButton::Left => {
                let row = usize::from(m.y - hit.area.y);
                if let Some(Some(i)) = hit.items.get(row) {
                    let cursor = match hit.pane {
                        Pane::Drives => &mut self.drives,
                        Pane::Images => &mut self.images,
                        Pane::Jobs => &mut self.jobs,
                        Pane::Log => return,
                    };
                    cursor.index = *i;
                    cursor.key = None;
                }
            }
            _ => {}
        }
    }

    fn normal_key(&mut self, key: KeyEvent, snap: &Snapshot) -> Vec<Action> {
        let page = 10;
        match key.code {
            KeyCode::Char('q') => return vec![Action::Quit],
            KeyCode::Char('?') | KeyCode::F(1) => self.help = true,
            KeyCode::Tab | KeyCode::Char('l') | KeyCode::Right => {
                self.focus = self.focus.step(true)
            }
            KeyCode::BackTab | KeyCode::Char('h') | KeyCode::Left => {
                self.focus = self.focus.step(false)
            }
            KeyCode::Up | KeyCode::Char('k') => self.move_cursor(snap, -1),
            KeyCode::Down | KeyCode::Char('j') => self.move_cursor(snap, 1),
            KeyCode::PageUp => self.move_cursor(snap, -page),
            KeyCode::PageDown => self.move_cursor(snap, page),
            KeyCode::Home | KeyCode::Char('g') => self.move_cursor(snap, isize::MIN / 2),
            KeyCode::End | KeyCode::Char('G') => self.move_cursor(snap, isize::MAX / 2),
            KeyCode::Esc if self.image.is_some() || !self.targets.is_empty() => {
                self.image = None;
                self.targets.clear();
                self.status = Some("choice cleared".into());
            }
            KeyCode::Enter => return self.enter(snap),
            KeyCode::Char(' ') if self.focus == Pane::Drives => self.toggle_target(snap),
            KeyCode::Char('a') if self.focus == Pane::Drives => self.select_all(snap),
            KeyCode::Char('c') => self.ask_cancel(snap),
            KeyCode::Char('d') | KeyCode::Delete if self.focus == Pane::Images => {
                self.ask_remove(snap)
            }
            KeyCode::Char('w') if self.focus == Pane::Drives => self.ask_wipe(snap),
            KeyCode::Char('r') if self.focus == Pane::Drives => self.ask_read(snap),
            KeyCode::Char('A') => self.ask_duplicator(snap),
            KeyCode::Char(' ' | 'a' | 'w' | 'r') => {
                self.status = Some("that key works in the Drives pane (Tab to get there)".into())
            }
            KeyCode::Char('d') => {
                self.status = Some("that key works in the Images pane (Tab to get there)".into())
            }
            _ => {}
        }
        Vec::new()
    }

    fn refuse_view_only(&mut self) -> bool {
        if self.view_only {
            self.status = Some("view only: connect with ssh to copy, wipe, read or cancel".into());
        }
        self.view_only
    }

    fn move_cursor(&mut self, snap: &Snapshot, delta: isize) {
        match self.focus {
            Pane::Drives => self.drives.moved(&drive_keys(snap), delta),
            Pane::Images => self.images.moved(&image_keys(snap), delta),
            Pane::Jobs => self.jobs.moved(&job_keys(snap), delta),
            Pane::Log => {
                let max = snap.events.len().saturating_sub(1) as isize;
                // Up (negative) scrolls back in time.
                self.log_scroll = (self.log_scroll as isize - delta).clamp(0, max) as usize;
            }
        }
    }

    /// Enter: choose the image, or go on to the confirmation.
    fn enter(&mut self, snap: &Snapshot) -> Vec<Action> {
        match self.focus {
            Pane::Images => {
                let Some(img) = cursor_image(snap, &mut self.images) else {
                    self.status = Some("no image in the store: upload one with sftp first".into());
                    return Vec::new();
                };
                if self.refuse_view_only() {
                    return Vec::new();
                }
                if let ImageState::Corrupt(why) = &img.state {
                    self.status = Some(format!("image {} is flagged corrupt: {why}", img.name));
                    return Vec::new();
                }
                self.image = Some(img.name.clone());
                self.focus = Pane::Drives;
                self.status = Some(format!(
                    "image {} chosen: now select target drives (Space, a), then Enter",
                    img.name
                ));
            }
            Pane::Drives => {
                if self.refuse_view_only() {
                    return Vec::new();
                }
                let Some(image) = self.image.clone() else {
                    self.status = Some("choose an image first (Images pane, Enter)".into());
                    return Vec::new();
                };
                if self.targets.is_empty() {
                    // Enter on an eligible drive with nothing selected means that drive.
                    match cursor_drive(snap, &mut self.drives) {
                        Some(d) if d.eligible && d.job.is_none() => {
                            self.targets.insert(d.name.clone());
                        }
                        _ => {
                            self.status = Some(
                                "select target drives first (Space toggles, a selects all)".into(),
                            );
                            return Vec::new();
                        }
                    }
                }
                // Drive order on screen, so the summary reads like the pane.
                let targets = snap
                    .drives
                    .iter()
                    .filter(|d| self.targets.contains(&d.name))
                    .map(|d| d.name.clone())
                    .collect();
                self.dialog = Some(Dialog::ConfirmCopy {
                    image,
                    targets,
                    verify: self.verify,
                });
            }
            Pane::Jobs | Pane::Log => {}
        }
        Vec::new()
    }

    fn toggle_target(&mut self, snap: &Snapshot) {
        if self.refuse_view_only() {
            return;
        }
        let Some(d) = cursor_drive(snap, &mut self.drives) else {
            return;
        };
        if let Some(why) = not_selectable(d) {
            self.status = Some(format!("{} cannot be a target: {why}", d.name));
        } else if !self.targets.remove(&d.name) {
            self.targets.insert(d.name.clone());
        }
        // Space moves on, so a row of drives is picked with Space Space Space.
        self.drives.moved(&drive_keys(snap), 1);
    }

    fn select_all(&mut self, snap: &Snapshot) {
        if self.refuse_view_only() {
            return;
        }
        // What `copy IMAGE all` writes: every writable block drive (burners
        // are picked one by one).
        let eligible: BTreeSet<String> = copyunit_model::targets::all_targets(&snap.drives)
            .map(|d| d.name.clone())
            .collect();
        if eligible.is_empty() {
            self.status =
                Some("no drive is eligible as a target (burners: pick with Space)".into());
        } else if self.targets == eligible {
            self.targets.clear();
        } else {
            self.targets = eligible;
        }
    }

    fn ask_cancel(&mut self, snap: &Snapshot) {
        if self.refuse_view_only() {
            return;
        }
        let keys = job_keys(snap);
        let job = self
            .jobs
            .resolve(&keys)
            .and_then(|i| ordered_jobs(snap).get(i).copied());
        match job {
            Some(j) if j.state == JobState::Running => {
                self.dialog = Some(Dialog::ConfirmCancel { job: j.id })
            }
            Some(j) => self.status = Some(format!("job #{} has already finished", j.id)),
            None => self.status = Some("no job to cancel".into()),
        }
    }

    fn ask_remove(&mut self, snap: &Snapshot) {
        if self.refuse_view_only() {
            return;
        }
        if let Some(img) = cursor_image(snap, &mut self.images) {
            self.dialog = Some(Dialog::ConfirmRemove {
                image: img.name.clone(),
            });
        }
    }

    fn ask_wipe(&mut self, snap: &Snapshot) {
        if self.refuse_view_only() {
            return;
        }
        let Some(d) = cursor_drive(snap, &mut self.drives) else {
            return;
        };
        if let Some(why) = not_wipeable(d) {
            self.status = Some(format!("{} cannot be wiped: {why}", d.name));
            return;
        }
        self.dialog = Some(Dialog::ConfirmWipe {
            drive: d.name.clone(),
            full: false,
        });
    }

    fn ask_read(&mut self, snap: &Snapshot) {
        if self.refuse_view_only() {
            return;
        }
        let Some(d) = cursor_drive(snap, &mut self.drives) else {
            return;
        };
        if let Some(job) = d.job {
            self.status = Some(format!("{} is busy with job #{job}", d.name));
            return;
        }
        if d.size == 0 {
            self.status = Some(format!("{} has no media to read", d.name));
            return;
        }
        self.dialog = Some(Dialog::ReadName {
            drive: d.name.clone(),
            editor: LineEditor::new(&format!("{}.img", d.name)),
            error: None,
        });
    }

    /// `A`: duplicator mode on with the image under the cursor (Images
    /// pane) or the chosen one; when it is on, off.
    fn ask_duplicator(&mut self, snap: &Snapshot) {
        if self.refuse_view_only() {
            return;
        }
        if let Some(dup) = &snap.unit.duplicator {
            self.dialog = Some(Dialog::ConfirmStopDuplicator {
                image: dup.image.clone(),
            });
            return;
        }
        let image = if self.focus == Pane::Images {
            cursor_image(snap, &mut self.images).map(|i| i.name.clone())
        } else {
            self.image.clone()
        };
        let Some(img) = image.and_then(|name| snap.images.iter().find(|i| i.name == name)) else {
            self.status = Some("choose an image first (Images pane), then A".into());
            return;
        };
        if let ImageState::Corrupt(why) = &img.state {
            self.status = Some(format!("image {} is flagged corrupt: {why}", img.name));
            return;
        }
        self.dialog = Some(Dialog::ConfirmDuplicator {
            image: img.name.clone(),
            verify: self.verify,
        });
    }

    fn dialog_key(&mut self, dialog: Dialog, key: KeyEvent, snap: &Snapshot) -> Vec<Action> {
        let yes = matches!(key.code, KeyCode::Enter | KeyCode::Char('y' | 'Y'));
        let no = matches!(key.code, KeyCode::Esc | KeyCode::Char('n' | 'N' | 'q'));
        match dialog {
            Dialog::ReadName {
                drive,
                mut editor,
                error,
            } => match key.code {
                KeyCode::Esc => {}
                KeyCode::Enter => {
                    let name = editor.value().trim().to_string();
                    match check_image_name(&name, snap) {
                        Ok(()) => self.dialog = Some(Dialog::ConfirmRead { drive, name }),
                        Err(why) => {
                            self.dialog = Some(Dialog::ReadName {
                                drive,
                                editor,
                                error: Some(why),
                            })
                        }
                    }
                }
                _ => {
                    let error = if editor.edit(key) { None } else { error };
                    self.dialog = Some(Dialog::ReadName {
                        drive,
                        editor,
                        error,
                    });
                }
            },
            _ if no => {}
            Dialog::ConfirmCopy {
                image,
                targets,
                verify,
            } => {
                if key.code == KeyCode::Char('v') {
                    self.verify = !verify;
                    self.dialog = Some(Dialog::ConfirmCopy {
                        image,
                        targets,
                        verify: !verify,
                    });
                } else if yes {
                    if let Err(why) = check_copy(&image, &targets, snap) {
                        self.status = Some(format!("not started: {why}"));
                        return Vec::new();
                    }
                    self.image = None;
                    self.targets.clear();
                    self.focus = Pane::Jobs;
                    self.status = Some(format!("copy of {image} requested"));
                    return vec![Action::Request(Request::Copy {
                        image,
                        targets,
                        verify,
                    })];
                } else {
                    self.dialog = Some(Dialog::ConfirmCopy {
                        image,
                        targets,
                        verify,
                    });
                }
            }
            Dialog::ConfirmDuplicator { image, verify } => {
                if key.code == KeyCode::Char('v') {
                    self.verify = !verify;
                    self.dialog = Some(Dialog::ConfirmDuplicator {
                        image,
                        verify: !verify,
                    });
                } else if yes {
                    if !snap.images.iter().any(|i| i.name == image) {
                        self.status = Some(format!(
                            "not started: image {image} is no longer in the store"
                        ));
                        return Vec::new();
                    }
                    self.status = Some(format!("duplicator with {image} requested"));
                    return vec![Action::Request(Request::StartDuplicator { image, verify })];
                } else {
                    self.dialog = Some(Dialog::ConfirmDuplicator { image, verify });
                }
            }
            Dialog::ConfirmWipe { drive, full } => {
                if key.code == KeyCode::Char('f') {
                    self.dialog = Some(Dialog::ConfirmWipe { drive, full: !full });
                } else if yes {
                    self.status = Some(format!("wipe of {drive} requested"));
                    self.focus = Pane::Jobs;
                    return vec![Action::Request(Request::Wipe { drive, full })];
                } else {
                    self.dialog = Some(Dialog::ConfirmWipe { drive, full });
                }
            }
            d @ (Dialog::ConfirmCancel { .. }
            | Dialog::ConfirmRemove { .. }
            | Dialog::ConfirmRead { .. }
            | Dialog::ConfirmStopDuplicator { .. }) => {
                if !yes {
                    self.dialog = Some(d);
                    return Vec::new();
                }
                let request = match d {
                    Dialog::ConfirmCancel { job } => {
                        self.status = Some(format!("cancel of job #{job} requested"));
                        Request::Cancel { job }
                    }
                    Dialog::ConfirmRemove { image } => {
                        self.status = Some(format!("removal of {image} requested"));
                        Request::RemoveImage { name: image }
                    }
                    Dialog::ConfirmRead { drive, name } => {
                        self.status = Some(format!("read of {drive} into {name} requested"));
                        self.focus = Pane::Jobs;
                        Request::Read { drive, name }
                    }
                    Dialog::ConfirmStopDuplicator { .. } => {
                        self.status = Some("duplicator stop requested".into());
                        Request::StopDuplicator
                    }
                    _ => return Vec::new(),
                };
                return vec![Action::Request(request)];
            }
        }
        Vec::new()
    }
}

/// Why a drive cannot be chosen as a target (or wiped), if it cannot.
pub fn not_selectable(d: &Drive) -> Option<String> {
    if let Some(job) = d.job {
        return Some(format!("busy with job #{job}"));
    }
    if !d.eligible {
        return Some(d.reason.clone().unwrap_or_else(|| "not eligible".into()));
    }
    None
}

/// Why `w` cannot wipe this drive: a disc must be rewritable (a disc that
/// holds data is not a copy target, yet wiping is just what it needs).
fn not_wipeable(d: &Drive) -> Option<String> {
    if d.kind != copyunit_model::DriveKind::Optical {
        return not_selectable(d);
    }
    if let Some(job) = d.job {
        return Some(format!("busy with job #{job}"));
    }
    match &d.media {
        None => Some(format!("no disc in {}", d.name)),
        Some(m) if !m.erasable => Some(format!("the {} is not rewritable", m.media_type)),
        Some(_) => None,
    }
}

fn check_image_name(name: &str, snap: &Snapshot) -> Result<(), String> {
    if name.is_empty() {
        return Err("type a name for the new image".into());
    }
    // The store's own rule, so what is accepted here is accepted there.
    copyunit_model::names::check_image_name(name).map_err(|e| e.to_string())?;
    if snap.images.iter().any(|i| i.name == name) {
        return Err(format!("an image named {name} exists already"));
    }
    Ok(())
}

/// Re-checks a confirmed copy against the snapshot of the moment.
fn check_copy(image: &str, targets: &[String], snap: &Snapshot) -> Result<(), String> {
    let Some(img) = snap.images.iter().find(|i| i.name == image) else {
        return Err(format!("image {image} is no longer in the store"));
    };
    if targets.is_empty() {
        return Err("no target drive selected".into());
    }
    // The rule unitd and the burn preflight apply (a disc padded as burned).
    let need = copyunit_model::room::content_bytes(img);
    for t in targets {
        let Some(d) = snap.drives.iter().find(|d| &d.name == t) else {
            return Err(format!("drive {t} is gone"));
        };
        if let Some(why) = not_selectable(d) {
            return Err(format!("drive {t} cannot be a target: {why}"));
        }
        copyunit_model::room::fits(image, need, d).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn finished_notice(job: &Job) -> Notice {
    let ok = job.state == JobState::Done;
    let what = text::job_title(job);
    let mut lines = Vec::new();
    let took = job
        .finished
        .map(|f| format!(" in {}", format::duration(f.saturating_sub(job.created))))
        .unwrap_or_default();
    let verb = match job.state {
        JobState::Done if job.verify => "written and verified",
        JobState::Done => "written (not verified)",
        JobState::Failed => "failed",
        JobState::Cancelled => "cancelled",
        _ => "interrupted",
    };
    lines.push(format!("{verb}{took}"));
    for t in &job.targets {
        let result = match &t.error {
            Some(e) => format!("{}: {}: {e}", t.drive, text::phase(t.phase)),
            None => format!("{}: {}", t.drive, text::phase(t.phase)),
        };
        lines.push(result);
    }
    if let Some(e) = &job.error {
        lines.push(e.clone());
    }
    Notice {
        title: format!("Job {what} {}", text::job_state(job.state)),
        lines,
        ok,
    }
}

pub fn drive_keys(snap: &Snapshot) -> Vec<String> {
    snap.drives.iter().map(|d| d.name.clone()).collect()
}

/// Images, then uploads (which the cursor skips): only images are keys.
pub fn image_keys(snap: &Snapshot) -> Vec<String> {
    snap.images.iter().map(|i| i.name.clone()).collect()
}

/// Jobs as the Jobs pane lists them: running first (oldest first), then
/// finished ones, newest first.
pub fn ordered_jobs(snap: &Snapshot) -> Vec<&Job> {
    let mut running: Vec<&Job> = snap
        .jobs
        .iter()
        .filter(|j| !j.state.is_finished())
        .collect();
    running.sort_by_key(|j| j.id);
    let mut done: Vec<&Job> = snap.jobs.iter().filter(|j| j.state.is_finished()).collect();
    done.sort_by_key(|j| std::cmp::Reverse(j.id));
    running.extend(done);
    running
}

pub fn job_keys(snap: &Snapshot) -> Vec<String> {
    ordered_jobs(snap)
        .iter()
        .map(|j| j.id.to_string())
        .collect()
}

pub fn cursor_drive<'a>(snap: &'a Snapshot, c: &mut Cursor) -> Option<&'a Drive> {
    c.resolve(&drive_keys(snap))
        .and_then(|i| snap.drives.get(i))
}

pub fn cursor_image<'a>(snap: &'a Snapshot, c: &mut Cursor) -> Option<&'a Image> {
    c.resolve(&image_keys(snap))
        .and_then(|i| snap.images.get(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_editor_edits_like_readline() {
        let mut e = LineEditor::new("sdb.img");
        for k in [KeyCode::Backspace, KeyCode::Backspace, KeyCode::Backspace] {
            assert!(e.edit(KeyEvent::plain(k)));
        }
        for c in "iso".chars() {
            e.edit(KeyEvent::plain(KeyCode::Char(c)));
        }
        assert_eq!(e.value(), "sdb.iso");
        e.edit(KeyEvent::plain(KeyCode::Home));
        e.edit(KeyEvent::plain(KeyCode::Delete));
        e.edit(KeyEvent::plain(KeyCode::Char('S')));
        assert_eq!(e.value(), "Sdb.iso");
        e.edit(KeyEvent::plain(KeyCode::End));
        e.edit(KeyEvent::plain(KeyCode::Left));
        e.edit(KeyEvent::ctrl('k'));
        assert_eq!(e.value(), "Sdb.is");
        e.edit(KeyEvent::ctrl('u'));
        assert_eq!(e.value(), "");
        assert!(!e.edit(KeyEvent::plain(KeyCode::Up)));
    }

    #[test]
    fn cursor_follows_its_item() {
        let keys = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut c = Cursor::default();
        c.moved(&keys(&["a", "b", "c"]), 2);
        assert_eq!(c.resolve(&keys(&["a", "b", "c"])), Some(2));
        // "a" removed: the cursor stays on "c".
        assert_eq!(c.resolve(&keys(&["b", "c"])), Some(1));
        // "c" removed: the cursor clamps to the last item.
        assert_eq!(c.resolve(&keys(&["b"])), Some(0));
        assert_eq!(c.resolve(&[]), None);
    }
}
