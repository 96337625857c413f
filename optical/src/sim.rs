//! A simulated MMC drive: a [`Transport`] that keeps a disc in memory.
//!
//! No emulator here can burn, so every burn sequence is tested against this
//! drive. It implements the commands `mmc` sends with the media state
//! machine of MMC-5 as libburn's cookbook describes it: blank -> appendable
//! -> complete for write-once media, formatted/unformatted for overwrite
//! media, erasable media, capacity limits, a drive buffer that answers
//! "long write in progress" when full, medium-changed unit attentions, an
//! open tray, and injectable [`Fault`]s. It records every command it
//! receives so tests can assert the sequence, and exposes the disc.
//!
//! Time does not exist here: long operations (blank, format) progress by
//! one step per polling command, and the drive buffer drains a fixed number
//! of blocks per command. Nothing sleeps.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::mmc::{BLOCK, DiscStatus, Media, WriteParams, WriteType, close};
use crate::sense::Sense;
use crate::transport::{DataDir, Reply, Status, Transport};

/// What the simulated drive can do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriveConfig {
    pub vendor: String,
    pub product: String,
    pub writes_cd: bool,
    pub writes_dvd: bool,
    pub reads_bd: bool,
    pub writes_bd: bool,
    /// Offers CD Mastering (Session At Once).
    pub sao: bool,
    /// SAO actually works (a drive may advertise it and still refuse).
    pub sao_works: bool,
    /// Drive buffer, in blocks.
    pub buffer_blocks: u32,
    /// Blocks the drive moves from buffer to disc per command received.
    pub drain_per_command: u32,
    /// Polls a blank or (non-background) format takes.
    pub long_op_polls: u32,
    /// Commands answered "becoming ready" after a disc is loaded.
    pub spin_up_commands: u32,
}

impl DriveConfig {
    /// A CD/DVD/BD burner.
    pub fn burner() -> DriveConfig {
        DriveConfig {
            vendor: "COPYUNIT".into(),
            product: "SIM BD-RE BURNER".into(),
            writes_cd: true,
            writes_dvd: true,
            reads_bd: true,
            writes_bd: true,
            sao: true,
            sao_works: true,
            buffer_blocks: 1024,
            drain_per_command: 1024,
            long_op_polls: 4,
            spin_up_commands: 0,
        }
    }

    /// A DVD-ROM drive: the source disc drive.
    pub fn reader() -> DriveConfig {
        DriveConfig {
            product: "SIM DVD-ROM".into(),
            writes_cd: false,
            writes_dvd: false,
            reads_bd: false,
            writes_bd: false,
            sao: false,
            ..DriveConfig::burner()
        }
    }

    fn writes(&self, m: Media) -> bool {
        match m {
            Media::CdR | Media::CdRw => self.writes_cd,
            Media::BdR | Media::BdRRandom | Media::BdRe => self.writes_bd,
            m if m.is_read_only() => false,
            _ => self.writes_dvd,
        }
    }

    fn reads(&self, m: Media) -> bool {
        !matches!(
            m,
            Media::BdRom | Media::BdR | Media::BdRRandom | Media::BdRe
        ) || self.reads_bd
    }

    fn profiles(&self) -> Vec<Media> {
        let mut p = vec![];
        if self.writes_bd {
            p.extend([Media::BdRe, Media::BdR]);
        }
        if self.reads_bd {
            p.push(Media::BdRom);
        }
        if self.writes_dvd {
            p.extend([
                Media::DvdPlusR,
                Media::DvdPlusRw,
                Media::DvdRwSequential,
                Media::DvdRwRestricted,
                Media::DvdRam,
                Media::DvdR,
            ]);
        }
        p.push(Media::DvdRom);
        if self.writes_cd {
            p.extend([Media::CdRw, Media::CdR]);
        }
        p.push(Media::CdRom);
        p
    }
}

/// A fault to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A WRITE reaching this LBA fails with 03/0C/00 (blocks before it land).
    WriteError { lba: u32 },
    /// The disc is pulled out (tray opens) when a WRITE reaches this LBA.
    RemoveMediaAt { lba: u32 },
    /// Power is lost when a WRITE reaches this LBA: every command fails at
    /// the transport level until [`SimDrive::power_on`].
    PowerLossAt { lba: u32 },
    /// READ covering this LBA fails `times` times with 03/11/00
    /// (`u32::MAX`: always).
    ReadError { lba: u32, times: u32 },
    /// The block at this LBA lands with one byte flipped, silently.
    SilentCorruption { lba: u32 },
}

/// A track on a sequential disc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimTrack {
    pub number: u16,
    pub session: u16,
    pub start: u32,
    pub blocks: u32,
    /// Reserved size (RESERVE TRACK), if any.
    pub reserved: Option<u32>,
    pub open: bool,
}

/// A disc, as the simulated drive holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimDisc {
    pub media: Media,
    pub capacity_blocks: u32,
    /// Sequential media: blank / appendable / complete.
    pub status: DiscStatus,
    /// Overwrite media: formatted.
    pub formatted: bool,
    /// DVD+RW background format state (0..=3).
    pub bg_format: u8,
    /// Closed sessions.
    pub sessions: u16,
    pub session_open: bool,
    pub tracks: Vec<SimTrack>,
    /// Next writable address (sequential media).
    pub nwa: u32,
    /// Written blocks; absent blocks read as zeros.
    blocks: BTreeMap<u32, Vec<u8>>,
    /// Readable size of a pressed disc, in blocks.
    pressed_blocks: u32,
}

impl SimDisc {
    /// A blank recordable disc (or unformatted overwrite disc).
    pub fn blank(media: Media, capacity_blocks: u32) -> SimDisc {
        SimDisc {
            media,
            capacity_blocks,
            status: DiscStatus::Blank,
            formatted: false,
            bg_format: 0,
            sessions: 0,
            session_open: false,
            tracks: vec![],
            nwa: 0,
            blocks: BTreeMap::new(),
            pressed_blocks: 0,
        }
    }

    /// A formatted overwrite disc (DVD+RW, DVD-RAM, BD-RE, DVD-RW RO).
    pub fn formatted(media: Media, capacity_blocks: u32) -> SimDisc {
        SimDisc {
            formatted: true,
            bg_format: 3,
            status: DiscStatus::Other,
            ..SimDisc::blank(media, capacity_blocks)
        }
    }

    /// A pressed disc (CD-ROM, DVD-ROM, BD-ROM) holding `data`, padded to
    /// whole blocks.
    pub fn pressed(media: Media, data: &[u8]) -> SimDisc {
        let mut d = SimDisc::blank(media, 0);
        d.store(0, data);
        let n = block_count(data.len());
        d.capacity_blocks = n;
        d.pressed_blocks = n;
        d.status = DiscStatus::Complete;
        d.sessions = 1;
        d.tracks.push(SimTrack {
            number: 1,
            session: 1,
            start: 0,
            blocks: n,
            reserved: None,
            open: false,
        });
        d
    }

    /// A recordable disc finalized with one session holding `data`.
    pub fn finalized(media: Media, capacity_blocks: u32, data: &[u8]) -> SimDisc {
        let mut d = SimDisc::pressed(media, data);
        d.capacity_blocks = capacity_blocks;
        d.pressed_blocks = 0;
        d.nwa = block_count(data.len());
        d
    }

    pub fn is_erasable(&self) -> bool {
        matches!(
            self.media,
            Media::CdRw
                | Media::DvdRwSequential
                | Media::DvdRwRestricted
                | Media::DvdPlusRw
                | Media::DvdRam
                | Media::BdRe
        )
    }

    /// Bytes of `blocks` blocks from `lba` (unwritten blocks are zeros).
    pub fn read(&self, lba: u32, blocks: u32) -> Vec<u8> {
        let mut out = vec![0u8; blocks as usize * BLOCK];
        for (i, chunk) in out.chunks_exact_mut(BLOCK).enumerate() {
            if let Some(b) = self.blocks.get(&(lba + i as u32)) {
                chunk.copy_from_slice(b);
            }
        }
        out
    }

    /// Number of blocks ever written.
    pub fn written_blocks(&self) -> usize {
        self.blocks.len()
    }

    fn store(&mut self, lba: u32, data: &[u8]) {
        for (i, chunk) in data.chunks(BLOCK).enumerate() {
            let mut b = chunk.to_vec();
            b.resize(BLOCK, 0);
            self.blocks.insert(lba + i as u32, b);
        }
    }

    /// End of the recorded area (first LBA after it).
    fn recorded_end(&self) -> u32 {
        if self.pressed_blocks > 0 {
            return self.pressed_blocks;
        }
        if self.media.is_overwrite() {
            return if self.formatted {
                self.capacity_blocks
            } else {
                0
            };
        }
        self.tracks
            .iter()
            .map(|t| t.start + t.blocks)
            .max()
            .unwrap_or(0)
    }

    fn is_sequential(&self) -> bool {
        !self.media.is_overwrite() && !self.media.is_read_only()
    }

    fn wipe(&mut self) {
        self.blocks.clear();
        self.tracks.clear();
        self.sessions = 0;
        self.session_open = false;
        self.nwa = 0;
        self.status = DiscStatus::Blank;
    }

    /// Close the open track (if any).
    fn close_track(&mut self) {
        for t in self.tracks.iter_mut().filter(|t| t.open) {
            t.open = false;
        }
    }

    /// Close the open session: appendable if `keep_open`, else complete.
    fn close_session(&mut self, keep_open: bool) {
        self.close_track();
        if self.session_open {
            self.sessions += 1;
            self.session_open = false;
            if self.media.is_cd() && keep_open {
                // Lead-out and next lead-in (cookbook: 11400 after the first
                // session, 6900 after further ones).
                let gap = if self.sessions == 1 { 11_400 } else { 6_900 };
                self.nwa = self.nwa.saturating_add(gap).min(self.capacity_blocks);
            }
        }
        if self.status != DiscStatus::Blank || !self.tracks.is_empty() {
            self.status = if keep_open {
                DiscStatus::Appendable
            } else {
                DiscStatus::Complete
            };
        }
    }
}

fn block_count(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(BLOCK)).unwrap_or(u32::MAX)
}

/// One command as the simulated drive received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub name: &'static str,
    pub cdb: Vec<u8>,
    /// A short description of state-changing commands (see
    /// [`SimDrive::actions`]); None for queries.
    pub action: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LongOp {
    Blank,
    Format { media: Media },
}

/// Where a Session-At-Once write stands.
#[derive(Debug, Clone, Copy)]
struct Sao {
    next: i64,
    end: u32,
}

/// The simulated drive.
#[derive(Debug)]
pub struct SimDrive {
    name: String,
    config: DriveConfig,
    disc: Option<SimDisc>,
    tray_open: bool,
    prevent: bool,
    powered: bool,
    unit_attention: Option<Sense>,
    faults: Vec<Fault>,
    log: Vec<Logged>,
    params: Option<WriteParams>,
    sao: Option<Sao>,
    buffer_used: u32,
    long_op: Option<(LongOp, u32, u32)>,
    spin_up: u32,
    /// Pending GET EVENT STATUS NOTIFICATION media event code.
    media_event: u8,
}

const fn s(key: u8, asc: u8, ascq: u8) -> Sense {
    Sense::new(key, asc, ascq)
}

const NOT_READY_NO_DISC: Sense = s(2, 0x3a, 0x01);
const NO_DISC_TRAY_OPEN: Sense = s(2, 0x3a, 0x02);
const LONG_WRITE: Sense = s(2, 0x04, 0x08);
const INVALID_OPCODE: Sense = s(5, 0x20, 0);
const INVALID_FIELD: Sense = s(5, 0x24, 0);
const INVALID_PARAM: Sense = s(5, 0x26, 0);
const SEQUENCE: Sense = s(5, 0x2c, 0);
const CANNOT_WRITE: Sense = s(5, 0x30, 0x05);
const INCOMPATIBLE: Sense = s(5, 0x30, 0x00);
const NOT_FORMATTED: Sense = s(2, 0x30, 0x10);
const ILLEGAL_MODE: Sense = s(5, 0x64, 0);
const REMOVAL_PREVENTED: Sense = s(5, 0x53, 0x02);
const OUT_OF_RANGE: Sense = s(5, 0x21, 0);
const MEDIUM_CHANGED: Sense = s(6, 0x28, 0);
const POWER_ON: Sense = s(6, 0x29, 0);

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Makes `data` (whole 2048-byte blocks, at least 17) an ISO 9660 volume
/// of its own length as far as a rip can tell: a primary volume
/// descriptor at LBA 16 stating the volume size (see `rip::iso_volume_blocks`).
/// For test discs and images.
pub fn mark_iso_volume(data: &mut [u8]) {
    let blocks = u32::try_from(data.len() / BLOCK).unwrap_or(u32::MAX);
    let pvd = &mut data[16 * BLOCK..17 * BLOCK];
    pvd[0] = 1;
    pvd[1..6].copy_from_slice(b"CD001");
    pvd[80..84].copy_from_slice(&blocks.to_le_bytes());
    pvd[84..88].copy_from_slice(&blocks.to_be_bytes());
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl SimDrive {
    /// An empty burner named e.g. "sr1", tray closed.
    pub fn new(name: &str) -> SimDrive {
        SimDrive::with_config(name, DriveConfig::burner())
    }

    pub fn with_config(name: &str, config: DriveConfig) -> SimDrive {
        SimDrive {
            name: name.to_string(),
            config,
            disc: None,
            tray_open: false,
            prevent: false,
            powered: true,
            unit_attention: None,
            faults: vec![],
            log: vec![],
            params: None,
            sao: None,
            buffer_used: 0,
            long_op: None,
            spin_up: 0,
            media_event: 0,
        }
    }

    /// A burner with `disc` already inserted (no pending unit attention).
    pub fn with_disc(name: &str, disc: SimDisc) -> SimDrive {
        let mut d = SimDrive::new(name);
        d.disc = Some(disc);
        d
    }

    pub fn config_mut(&mut self) -> &mut DriveConfig {
        &mut self.config
    }

    /// Put a disc in and close the tray: the next command sees 06/28.
    pub fn insert(&mut self, disc: SimDisc) {
        self.disc = Some(disc);
        self.tray_open = false;
        self.params = None;
        self.sao = None;
        self.unit_attention = Some(MEDIUM_CHANGED);
        self.spin_up = self.config.spin_up_commands;
        self.media_event = 2;
    }

    /// Take the disc out (tray left open).
    pub fn take_disc(&mut self) -> Option<SimDisc> {
        self.tray_open = true;
        if self.disc.is_some() {
            self.media_event = 3;
        }
        self.disc.take()
    }

    /// The disc, whether the tray is open or closed.
    pub fn disc(&self) -> Option<&SimDisc> {
        self.disc.as_ref()
    }

    pub fn disc_mut(&mut self) -> Option<&mut SimDisc> {
        self.disc.as_mut()
    }

    pub fn tray_open(&self) -> bool {
        self.tray_open
    }

    pub fn removal_prevented(&self) -> bool {
        self.prevent
    }

    pub fn add_fault(&mut self, fault: Fault) {
        self.faults.push(fault);
    }

    /// Power back on after [`Fault::PowerLossAt`]: 06/29 pending.
    pub fn power_on(&mut self) {
        self.powered = true;
        self.buffer_used = 0;
        self.params = None;
        self.sao = None;
        self.unit_attention = Some(POWER_ON);
    }

    pub fn log(&self) -> &[Logged] {
        &self.log
    }

    pub fn clear_log(&mut self) {
        self.log.clear();
    }

    /// Names of all commands received, in order.
    pub fn commands(&self) -> Vec<&'static str> {
        self.log.iter().map(|l| l.name).collect()
    }

    /// State-changing commands in order, repeats of the same action (e.g. a
    /// run of WRITEs) collapsed into one: what a burn sequence test asserts.
    pub fn actions(&self) -> Vec<String> {
        let mut out: Vec<String> = vec![];
        for a in self.log.iter().filter_map(|l| l.action.as_ref()) {
            if out.last() != Some(a) {
                out.push(a.clone());
            }
        }
        out
    }

    fn present(&self) -> Option<&SimDisc> {
        if self.tray_open {
            None
        } else {
            self.disc.as_ref()
        }
    }

    fn no_disc_sense(&self) -> Sense {
        if self.tray_open {
            NO_DISC_TRAY_OPEN
        } else {
            NOT_READY_NO_DISC
        }
    }

    /// Current media as the drive reports it: a drive that cannot write a
    /// recordable disc reports the ROM profile of its family.
    fn current_media(&self) -> Media {
        match self.present() {
            None => Media::None,
            Some(d) if self.config.writes(d.media) || d.media.is_read_only() => d.media,
            Some(d) if d.media.is_cd() => Media::CdRom,
            Some(d) if matches!(d.media, Media::BdR | Media::BdRRandom | Media::BdRe) => {
                Media::BdRom
            }
            Some(_) => Media::DvdRom,
        }
    }

    fn long_op_sense(&self) -> Option<Sense> {
        let (op, left, total) = self.long_op?;
        let done = u64::from(total - left) * 65536 / u64::from(total.max(1));
        let ascq = if matches!(op, LongOp::Format { .. }) {
            0x04
        } else {
            0x07
        };
        Some(s(2, 0x04, ascq).with_progress(u16::try_from(done).unwrap_or(u16::MAX)))
    }

    /// One polling step of a long operation; true when it just finished.
    fn step_long_op(&mut self) {
        let Some((op, left, total)) = self.long_op else {
            return;
        };
        if left > 1 {
            self.long_op = Some((op, left - 1, total));
            return;
        }
        self.long_op = None;
        if let Some(d) = self.disc.as_mut() {
            match op {
                LongOp::Blank => {
                    d.wipe();
                    if d.media == Media::DvdRwRestricted {
                        d.media = Media::DvdRwSequential;
                        d.formatted = false;
                    }
                }
                LongOp::Format { media } => {
                    d.wipe();
                    d.media = media;
                    d.formatted = true;
                    d.bg_format = 3;
                    d.status = DiscStatus::Other;
                }
            }
        }
    }

    fn drain(&mut self) {
        self.buffer_used = self
            .buffer_used
            .saturating_sub(self.config.drain_per_command);
    }

    fn handle(
        &mut self,
        cdb: &[u8],
        data: DataDir<'_>,
    ) -> (std::result::Result<usize, Sense>, Option<String>) {
        let op = cdb[0];
        self.drain();
        // Commands that work whatever the state of the medium.
        match op {
            0x12 => return (Ok(self.inquiry(data)), None),
            0x03 => {
                self.step_long_op();
                let sense = self
                    .long_op_sense()
                    .or_else(|| self.unit_attention.take())
                    .unwrap_or(s(0, 0, 0));
                return (Ok(copy_out(data, &sense.to_fixed())), None);
            }
            0x46 => return (Ok(self.get_configuration(data)), None),
            0x4a => {
                let mut b = [0u8; 8];
                b[1] = 6;
                b[2] = 4;
                b[3] = 0x10;
                b[4] = std::mem::take(&mut self.media_event);
                b[5] = u8::from(self.tray_open) | if self.present().is_some() { 0x02 } else { 0 };
                return (Ok(copy_out(data, &b)), None);
            }
            0x1e => {
                self.prevent = cdb[4] & 1 != 0;
                let a = if self.prevent {
                    "PREVENT REMOVAL"
                } else {
                    "ALLOW REMOVAL"
                };
                return (Ok(0), Some(a.into()));
            }
            0x1b => return self.start_stop(cdb),
            _ => {}
        }
        if let Some(sense) = self.long_op_sense() {
            if op == 0x00 {
                self.step_long_op();
                return match self.long_op_sense() {
                    Some(s) => (Err(s), None),
                    None => (Ok(0), None),
                };
            }
            if op != 0x5c {
                return (Err(sense), None);
            }
        }
        if let Some(ua) = self.unit_attention.take() {
            return (Err(ua), None);
        }
        if self.spin_up > 0 && self.present().is_some() {
            self.spin_up -= 1;
            return (Err(s(2, 0x04, 0x01)), None);
        }
        if op == 0x5c {
            let mut b = [0u8; 12];
            b[1] = 10;
            b[4..8].copy_from_slice(&(self.config.buffer_blocks * BLOCK as u32).to_be_bytes());
            let free = self.config.buffer_blocks.saturating_sub(self.buffer_used);
            b[8..12].copy_from_slice(&(free * BLOCK as u32).to_be_bytes());
            return (Ok(copy_out(data, &b)), None);
        }
        if op == 0x5a {
            return (Ok(self.mode_sense(cdb, data)), None);
        }
        if op == 0x55 {
            return self.mode_select(data);
        }
        if self.present().is_none() {
            return (Err(self.no_disc_sense()), None);
        }
        if !self
            .config
            .reads(self.present().map_or(Media::None, |d| d.media))
        {
            return (Err(s(2, 0x30, 0x00)), None);
        }
        match op {
            0x00 => (Ok(0), None),
            0x51 => (Ok(self.disc_info(data)), None),
            0x52 => (self.track_info(cdb, data), None),
            0x25 => (Ok(self.read_capacity(data)), None),
            0x23 => (Ok(self.format_capacities(data)), None),
            0x28 => (self.read10(cdb, data), None),
            0x2a => self.write10(cdb, data),
            0x5d => self.send_cue_sheet(data),
            0x53 => self.reserve_track(cdb),
            0x35 => self.sync_cache(),
            0x5b => self.close(cdb),
            0x04 => self.format_unit(cdb, data),
            0xa1 => self.blank(cdb),
            _ => (Err(INVALID_OPCODE), None),
        }
    }

    fn inquiry(&self, data: DataDir<'_>) -> usize {
        let mut b = [b' '; 36];
        b[0] = 0x05;
        b[1] = 0x80;
        b[2] = 0x05;
        b[3] = 0x32;
        b[4] = 31;
        b[5..8].fill(0);
        let put = |b: &mut [u8], at: usize, len: usize, s: &str| {
            for (i, c) in s.bytes().take(len).enumerate() {
                b[at + i] = c;
            }
        };
        put(&mut b, 8, 8, &self.config.vendor);
        put(&mut b, 16, 16, &self.config.product);
        put(&mut b, 32, 4, "1.00");
        copy_out(data, &b)
    }

    fn get_configuration(&self, data: DataDir<'_>) -> usize {
        let current = self.current_media();
        let mut feats: Vec<u8> = vec![];
        let mut add = |code: u16, cur: bool, body: &[u8]| {
            feats.extend_from_slice(&code.to_be_bytes());
            feats.push(0x03 | u8::from(cur));
            feats.push(u8::try_from(body.len()).unwrap_or(0));
            feats.extend_from_slice(body);
        };
        let mut list = vec![];
        for p in self.config.profiles() {
            list.extend_from_slice(&p.profile().to_be_bytes());
            list.push(u8::from(p == current));
            list.push(0);
        }
        add(0x0000, true, &list);
        add(0x0001, true, &[0, 0, 0, 2, 0, 0, 0, 0]);
        if self.config.writes_cd {
            add(0x002d, current.is_cd(), &[0x40, 0, 0, 0]);
            if self.config.sao {
                add(0x002e, current.is_cd(), &[0x20 | 0x40, 0, 0, 0]);
            }
        }
        if self.config.writes_dvd {
            add(0x0021, true, &[0, 1, 0, 1, 16, 0, 0, 0]);
            add(0x0023, true, &[0, 0, 0, 0]);
            add(0x002a, current == Media::DvdPlusRw, &[1, 0, 0, 0]);
            add(0x002b, current == Media::DvdPlusR, &[1, 0, 0, 0]);
            add(
                0x002f,
                matches!(current, Media::DvdR | Media::DvdRwSequential),
                &[0x42, 0, 0, 0],
            );
        }
        if self.config.writes_bd {
            add(
                0x0041,
                matches!(current, Media::BdR | Media::BdRe),
                &[0, 0, 0, 0],
            );
        }
        let mut b = vec![0u8; 8];
        b[0..4].copy_from_slice(&u32::try_from(feats.len() + 4).unwrap_or(0).to_be_bytes());
        b[6..8].copy_from_slice(&current.profile().to_be_bytes());
        b.extend_from_slice(&feats);
        copy_out(data, &b)
    }

    fn start_stop(&mut self, cdb: &[u8]) -> (std::result::Result<usize, Sense>, Option<String>) {
        let loej = cdb[4] & 0x02 != 0;
        let start = cdb[4] & 0x01 != 0;
        if !loej {
            return (Ok(0), None);
        }
        if start {
            let was_open = self.tray_open;
            self.tray_open = false;
            if was_open && self.disc.is_some() {
                self.unit_attention = Some(MEDIUM_CHANGED);
                self.spin_up = self.config.spin_up_commands;
                self.media_event = 2;
            }
            (Ok(0), Some("LOAD".into()))
        } else if self.prevent {
            (Err(REMOVAL_PREVENTED), Some("EJECT refused".into()))
        } else {
            self.tray_open = true;
            if self.disc.is_some() {
                self.media_event = 3;
            }
            (Ok(0), Some("EJECT".into()))
        }
    }

    fn mode_sense(&self, cdb: &[u8], data: DataDir<'_>) -> usize {
        if cdb[2] & 0x3f != 0x05 {
            return copy_out(data, &[0, 6, 0, 0, 0, 0, 0, 0]);
        }
        let page = self
            .params
            .unwrap_or(WriteParams {
                write_type: WriteType::Tao,
                buffer_underrun_free: false,
                multi_session: false,
                track_mode: 4,
                data_block_type: 8,
                dvd_incremental: false,
            })
            .page();
        let mut b = vec![0u8; 8];
        b[0..2].copy_from_slice(&u16::try_from(6 + page.len()).unwrap_or(0).to_be_bytes());
        b.extend_from_slice(&page);
        copy_out(data, &b)
    }

    fn mode_select(
        &mut self,
        data: DataDir<'_>,
    ) -> (std::result::Result<usize, Sense>, Option<String>) {
        let DataDir::ToDevice(b) = data else {
            return (Err(INVALID_FIELD), None);
        };
        if b.len() < 8 {
            return (Err(s(5, 0x1a, 0)), None);
        }
        let start = 8 + usize::from(be16(b, 6));
        let Some(p) = b.get(start..).and_then(WriteParams::from_page) else {
            return (Err(INVALID_PARAM), Some("MODE SELECT (bad page)".into()));
        };
        let media = self.current_media();
        let ok = match p.write_type {
            WriteType::Sao if media.is_cd() => self.config.sao && self.config.sao_works,
            WriteType::Sao => matches!(media, Media::DvdR | Media::DvdRwSequential | Media::DvdRDl),
            WriteType::Tao => media.is_cd() || media == Media::None,
            WriteType::Incremental => {
                matches!(media, Media::DvdR | Media::DvdRwSequential | Media::DvdRDl)
            }
        };
        let action = format!(
            "MODE SELECT write {:?}{}",
            p.write_type,
            if p.multi_session { " multi" } else { "" }
        );
        if !ok {
            return (Err(INVALID_PARAM), Some(action));
        }
        self.params = Some(p);
        self.sao = None;
        (Ok(0), Some(action))
    }

    fn disc_info(&self, data: DataDir<'_>) -> usize {
        let Some(d) = self.present() else { return 0 };
        let mut b = [0u8; 34];
        b[1] = 32;
        let status = match (d.media.is_overwrite(), d.status) {
            (true, _) if d.formatted => 3,
            (true, _) => 0,
            (false, DiscStatus::Blank) => 0,
            (false, DiscStatus::Appendable) => 1,
            (false, DiscStatus::Complete) => 2,
            (false, DiscStatus::Other) => 3,
        };
        let last_state = match d.status {
            DiscStatus::Blank => 0,
            DiscStatus::Complete => 3,
            _ if d.session_open => 1,
            _ => 0,
        };
        b[2] = status | (last_state << 2) | if d.is_erasable() { 0x10 } else { 0 };
        b[3] = 1;
        let sessions = d.sessions + u16::from(d.status != DiscStatus::Complete);
        let last_track = d.tracks.last().map_or(1, |t| {
            if d.status == DiscStatus::Complete || t.open {
                t.number
            } else {
                t.number + 1
            }
        });
        let first_in_last = d
            .tracks
            .iter()
            .find(|t| t.session == sessions)
            .map_or(last_track, |t| t.number);
        b[4] = sessions as u8;
        b[9] = (sessions >> 8) as u8;
        b[5] = first_in_last as u8;
        b[10] = (first_in_last >> 8) as u8;
        b[6] = last_track as u8;
        b[11] = (last_track >> 8) as u8;
        b[7] = if d.media == Media::DvdPlusRw {
            d.bg_format & 3
        } else {
            0
        };
        copy_out(data, &b)
    }

    /// The track the invisible track number (FFh) means: the open track or
    /// a new one at the NWA.
    fn next_track(d: &SimDisc) -> SimTrack {
        if let Some(t) = d.tracks.iter().find(|t| t.open) {
            return *t;
        }
        SimTrack {
            number: d.tracks.last().map_or(1, |t| t.number + 1),
            session: d.sessions + 1,
            start: d.nwa,
            blocks: 0,
            reserved: None,
            open: true,
        }
    }

    fn track_info(&self, cdb: &[u8], data: DataDir<'_>) -> std::result::Result<usize, Sense> {
        let Some(d) = self.present() else {
            return Err(self.no_disc_sense());
        };
        let number = be32(cdb, 2);
        let mut b = [0u8; 36];
        b[1] = 34;
        let (t, nwa, free) = if d.media.is_overwrite() || d.media.is_read_only() {
            let size = if d.media.is_read_only() {
                d.pressed_blocks
            } else {
                d.capacity_blocks
            };
            let t = SimTrack {
                number: 1,
                session: 1,
                start: 0,
                blocks: size,
                reserved: None,
                open: false,
            };
            (
                t,
                None,
                if d.media.is_overwrite() && d.formatted {
                    size
                } else {
                    0
                },
            )
        } else {
            let by_lba = cdb[1] & 0x03 == 0;
            let existing = if by_lba {
                d.tracks
                    .iter()
                    .find(|t| number >= t.start && number < t.start + t.blocks.max(1))
                    .copied()
            } else if number == 0xff {
                None
            } else {
                d.tracks
                    .iter()
                    .find(|t| u32::from(t.number) == number)
                    .copied()
            };
            match existing {
                Some(t) if !t.open => (t, None, 0),
                _ if d.status == DiscStatus::Complete => match d.tracks.last() {
                    Some(t) => (*t, None, 0),
                    None => return Err(INVALID_FIELD),
                },
                _ => {
                    let t = Self::next_track(d);
                    if !by_lba && number != 0xff && u32::from(t.number) != number {
                        return Err(INVALID_FIELD);
                    }
                    let limit = t.reserved.map_or(d.capacity_blocks, |r| t.start + r);
                    (t, Some(d.nwa), limit.saturating_sub(d.nwa))
                }
            }
        };
        b[2] = t.number as u8;
        b[3] = t.session as u8;
        b[5] = if d.media.is_cd() { 4 } else { 5 };
        b[6] =
            0x01 | if t.blocks == 0 && nwa.is_some() {
                0x40
            } else {
                0
            } | if t.reserved.is_some() { 0x80 } else { 0 };
        b[7] = u8::from(nwa.is_some()) | if t.blocks > 0 { 0x02 } else { 0 };
        b[8..12].copy_from_slice(&t.start.to_be_bytes());
        b[12..16].copy_from_slice(&nwa.unwrap_or(0).to_be_bytes());
        b[16..20].copy_from_slice(&free.to_be_bytes());
        let size = if nwa.is_some() {
            t.reserved.unwrap_or(t.blocks + free)
        } else {
            t.blocks
        };
        b[24..28].copy_from_slice(&size.to_be_bytes());
        b[28..32].copy_from_slice(&(t.start + t.blocks).saturating_sub(1).to_be_bytes());
        b[32] = (t.number >> 8) as u8;
        b[33] = (t.session >> 8) as u8;
        Ok(copy_out(data, &b))
    }

    fn read_capacity(&self, data: DataDir<'_>) -> usize {
        let end = self.present().map_or(0, SimDisc::recorded_end);
        let mut b = [0u8; 8];
        b[0..4].copy_from_slice(&end.saturating_sub(1).to_be_bytes());
        b[4..8].copy_from_slice(&(BLOCK as u32).to_be_bytes());
        copy_out(data, &b)
    }

    fn format_capacities(&self, data: DataDir<'_>) -> usize {
        let Some(d) = self.present() else { return 0 };
        let types: &[u8] = match d.media {
            Media::DvdPlusRw => &[0x26],
            Media::DvdRam => &[0x00],
            Media::BdRe => &[0x00, 0x30],
            Media::DvdRwSequential | Media::DvdRwRestricted => &[0x00, 0x15],
            _ => &[],
        };
        let mut b = vec![0u8; 4];
        b[3] = u8::try_from(8 * (1 + types.len())).unwrap_or(0);
        let formatted = d.media.is_overwrite() && d.formatted;
        b.extend_from_slice(&d.capacity_blocks.to_be_bytes());
        b.push(if formatted { 2 } else { 1 });
        b.extend_from_slice(&[0, 0x08, 0x00]);
        for t in types {
            b.extend_from_slice(&d.capacity_blocks.to_be_bytes());
            b.push(t << 2);
            b.extend_from_slice(&[0, 0, 0]);
        }
        copy_out(data, &b)
    }

    fn read10(&mut self, cdb: &[u8], data: DataDir<'_>) -> std::result::Result<usize, Sense> {
        let lba = be32(cdb, 2);
        let n = u32::from(be16(cdb, 7));
        let Some(d) = self.present() else {
            return Err(self.no_disc_sense());
        };
        let end = d.recorded_end();
        if lba.saturating_add(n) > end {
            return Err(OUT_OF_RANGE.with_information(u64::from(lba.max(end))));
        }
        for f in self.faults.iter_mut() {
            if let Fault::ReadError { lba: bad, times } = f
                && *bad >= lba
                && *bad < lba + n
                && *times > 0
            {
                if *times != u32::MAX {
                    *times -= 1;
                }
                return Err(s(3, 0x11, 0).with_information(u64::from(*bad)));
            }
        }
        let bytes = self
            .disc
            .as_ref()
            .map(|d| d.read(lba, n))
            .unwrap_or_default();
        Ok(copy_out(data, &bytes))
    }

    fn write10(
        &mut self,
        cdb: &[u8],
        data: DataDir<'_>,
    ) -> (std::result::Result<usize, Sense>, Option<String>) {
        let action = Some("WRITE(10)".to_string());
        let lba = be32(cdb, 2) as i32;
        let n = u32::from(be16(cdb, 7));
        let DataDir::ToDevice(bytes) = data else {
            return (Err(INVALID_FIELD), action);
        };
        if bytes.len() != n as usize * BLOCK {
            return (Err(INVALID_FIELD), action);
        }
        let media = self.current_media();
        if !self.config.writes(media) {
            return (Err(CANNOT_WRITE), action);
        }
        if self.buffer_used + n > self.config.buffer_blocks {
            return (Err(LONG_WRITE), action);
        }
        let params = self.params;
        let mut sao = self.sao;
        let Some(d) = self.disc.as_mut() else {
            return (Err(NOT_READY_NO_DISC), action);
        };
        // Where the data goes on the disc, after the address checks.
        let (first, count, skip) = if d.media.is_overwrite() {
            if !d.formatted {
                return (Err(NOT_FORMATTED), action);
            }
            if d.media == Media::DvdRwRestricted && (lba % 16 != 0 || n % 16 != 0) {
                return (Err(s(5, 0x21, 0x02).with_information(lba as u64)), action);
            }
            if lba < 0 || lba as u32 + n > d.capacity_blocks {
                return (Err(OUT_OF_RANGE.with_information(lba as u64)), action);
            }
            (lba as u32, n, 0)
        } else {
            if d.status == DiscStatus::Complete {
                return (Err(s(5, 0x21, 0x02).with_information(lba as u64)), action);
            }
            let needs_params = d.media.is_cd()
                || matches!(
                    d.media,
                    Media::DvdR | Media::DvdRwSequential | Media::DvdRDl
                );
            if !needs_params {
                // DVD+R and BD-R take no write parameters page.
                return self.write_sequential(lba, n, bytes, action);
            }
            let Some(p) = params else {
                return (Err(ILLEGAL_MODE), action);
            };
            if d.media.is_cd() && p.write_type == WriteType::Sao {
                let Some(state) = sao.as_mut() else {
                    return (Err(SEQUENCE), action);
                };
                if i64::from(lba) != state.next {
                    return (Err(s(5, 0x21, 0x02).with_information(lba as u64)), action);
                }
                if i64::from(lba) + i64::from(n) > i64::from(state.end) {
                    return (Err(OUT_OF_RANGE.with_information(lba as u64)), action);
                }
                state.next += i64::from(n);
                self.sao = sao;
                // The pregap (negative LBAs) is not user data.
                let skip = u32::try_from((-i64::from(lba)).max(0)).unwrap_or(0).min(n);
                (lba.max(0) as u32, n - skip, skip)
            } else {
                if d.media.is_cd() && p.write_type != WriteType::Tao {
                    return (Err(ILLEGAL_MODE), action);
                }
                if !d.media.is_cd()
                    && p.write_type == WriteType::Sao
                    && !d.tracks.iter().any(|t| t.open && t.reserved.is_some())
                {
                    return (Err(SEQUENCE), action);
                }
                return self.write_sequential(lba, n, bytes, action);
            }
        };
        self.land(first, count, &bytes[skip as usize * BLOCK..], action)
    }

    /// A write at the NWA of a sequential disc.
    fn write_sequential(
        &mut self,
        lba: i32,
        n: u32,
        bytes: &[u8],
        action: Option<String>,
    ) -> (std::result::Result<usize, Sense>, Option<String>) {
        let Some(d) = self.disc.as_mut() else {
            return (Err(NOT_READY_NO_DISC), action);
        };
        if lba < 0 || lba as u32 != d.nwa {
            return (Err(s(5, 0x21, 0x02).with_information(lba as u64)), action);
        }
        let t = Self::next_track(d);
        let limit = t.reserved.map_or(d.capacity_blocks, |r| t.start + r);
        if d.nwa + n > limit {
            return (Err(OUT_OF_RANGE.with_information(u64::from(limit))), action);
        }
        self.land(lba as u32, n, bytes, action)
    }

    /// Put blocks on the disc one by one, applying faults on the way.
    fn land(
        &mut self,
        first: u32,
        n: u32,
        bytes: &[u8],
        action: Option<String>,
    ) -> (std::result::Result<usize, Sense>, Option<String>) {
        for i in 0..n {
            let lba = first + i;
            let fault = self.faults.iter().position(|f| match f {
                Fault::WriteError { lba: l }
                | Fault::RemoveMediaAt { lba: l }
                | Fault::PowerLossAt { lba: l } => *l == lba,
                Fault::ReadError { .. } | Fault::SilentCorruption { .. } => false,
            });
            if let Some(idx) = fault {
                let f = self.faults.remove(idx);
                return match f {
                    Fault::WriteError { .. } => {
                        (Err(s(3, 0x0c, 0).with_information(u64::from(lba))), action)
                    }
                    Fault::RemoveMediaAt { .. } => {
                        self.tray_open = true;
                        self.media_event = 3;
                        (Err(NO_DISC_TRAY_OPEN), action)
                    }
                    _ => {
                        self.powered = false;
                        (Err(s(4, 0, 0)), Some("POWER LOSS".into()))
                    }
                };
            }
            let corrupt = self.faults.contains(&Fault::SilentCorruption { lba });
            let Some(d) = self.disc.as_mut() else {
                return (Err(NOT_READY_NO_DISC), action);
            };
            let mut block = bytes[i as usize * BLOCK..(i as usize + 1) * BLOCK].to_vec();
            if corrupt {
                block[0] ^= 0xff;
            }
            d.store(lba, &block);
            if d.is_sequential() {
                if !d.tracks.iter().any(|t| t.open) {
                    d.tracks.push(Self::next_track(d));
                }
                if let Some(t) = d.tracks.iter_mut().find(|t| t.open) {
                    t.blocks = t.blocks.max(lba + 1 - t.start);
                }
                d.nwa = lba + 1;
                d.session_open = true;
                d.status = DiscStatus::Appendable;
            }
        }
        self.buffer_used += n;
        (Ok(n as usize * BLOCK), action)
    }

    fn send_cue_sheet(
        &mut self,
        data: DataDir<'_>,
    ) -> (std::result::Result<usize, Sense>, Option<String>) {
        let action = Some("SEND CUE SHEET".to_string());
        let DataDir::ToDevice(b) = data else {
            return (Err(INVALID_FIELD), action);
        };
        let is_sao = self.params.is_some_and(|p| p.write_type == WriteType::Sao);
        let blank = self
            .present()
            .is_some_and(|d| d.status == DiscStatus::Blank && d.media.is_cd());
        if !is_sao || !blank {
            return (Err(SEQUENCE), action);
        }
        let Some(lead_out) = b.chunks_exact(8).find(|e| e[1] == 0xaa) else {
            return (Err(INVALID_PARAM), action);
        };
        let frames = (i64::from(lead_out[5]) * 60 + i64::from(lead_out[6])) * 75
            + i64::from(lead_out[7])
            - 150;
        let cap = self.present().map_or(0, |d| d.capacity_blocks);
        if frames <= 0 || frames > i64::from(cap) {
            return (Err(s(5, 0x21, 0)), action);
        }
        self.sao = Some(Sao {
            next: -150,
            end: frames as u32,
        });
        (Ok(0), action)
    }

    fn reserve_track(&mut self, cdb: &[u8]) -> (std::result::Result<usize, Sense>, Option<String>) {
        let n = be32(cdb, 5);
        let action = Some(format!("RESERVE TRACK {n}"));
        let Some(d) = self.disc.as_mut() else {
            return (Err(NOT_READY_NO_DISC), action);
        };
        if !d.is_sequential()
            || d.media.is_cd()
            || d.tracks.iter().any(|t| t.open)
            || d.status == DiscStatus::Complete
        {
            return (Err(SEQUENCE), action);
        }
        if d.nwa + n > d.capacity_blocks {
            return (Err(s(5, 0x21, 0)), action);
        }
        let mut t = Self::next_track(d);
        t.reserved = Some(n);
        d.tracks.push(t);
        d.session_open = true;
        d.status = DiscStatus::Appendable;
        (Ok(0), action)
    }

    fn sync_cache(&mut self) -> (std::result::Result<usize, Sense>, Option<String>) {
        self.buffer_used = 0;
        let params = self.params;
        let sao = self.sao;
        if let Some(d) = self.disc.as_mut() {
            let keep = params.is_some_and(|p| p.multi_session);
            if let Some(state) = sao {
                if state.next == i64::from(state.end) {
                    d.close_session(keep);
                    self.sao = None;
                }
            } else if let Some(t) = d
                .tracks
                .iter()
                .find(|t| t.open && t.reserved.is_some())
                .copied()
            {
                // DVD-R DAO: the reserved track fully written closes itself.
                if t.reserved == Some(t.blocks)
                    && params.is_some_and(|p| p.write_type == WriteType::Sao)
                {
                    d.close_session(false);
                }
            }
        }
        (Ok(0), Some("SYNCHRONIZE CACHE".into()))
    }

    fn close(&mut self, cdb: &[u8]) -> (std::result::Result<usize, Sense>, Option<String>) {
        let function = cdb[2] & 0x07;
        let track = be16(cdb, 4);
        let action = Some(match function {
            close::TRACK => format!("CLOSE TRACK {track}"),
            close::SESSION => "CLOSE SESSION".to_string(),
            close::FINALIZE_DVD_PLUS_R | close::FINALIZE_BD_R => "FINALIZE".to_string(),
            f => format!("CLOSE function {f}"),
        });
        let keep = self.params.is_some_and(|p| p.multi_session);
        let Some(d) = self.disc.as_mut() else {
            return (Err(NOT_READY_NO_DISC), action);
        };
        if d.media.is_overwrite() {
            if d.media == Media::DvdPlusRw && function == close::SESSION && d.bg_format == 2 {
                d.bg_format = 1;
            }
            return (Ok(0), action);
        }
        if d.status == DiscStatus::Complete {
            return (Err(s(5, 0x72, 0x03)), action);
        }
        let plus = matches!(d.media, Media::DvdPlusR | Media::DvdPlusRDl | Media::BdR);
        match function {
            close::TRACK => {
                if !d
                    .tracks
                    .iter()
                    .any(|t| t.open && u32::from(t.number) == u32::from(track))
                    && track != 0xff
                {
                    return (Err(INVALID_FIELD), action);
                }
                d.close_track();
            }
            close::SESSION => d.close_session(plus || keep),
            close::FINALIZE_DVD_PLUS_R if matches!(d.media, Media::DvdPlusR) => {
                d.close_session(false)
            }
            close::FINALIZE_BD_R if matches!(d.media, Media::BdR | Media::DvdPlusRDl) => {
                d.close_session(false)
            }
            _ => return (Err(INVALID_FIELD), action),
        }
        (Ok(0), action)
    }

    fn format_unit(
        &mut self,
        cdb: &[u8],
        data: DataDir<'_>,
    ) -> (std::result::Result<usize, Sense>, Option<String>) {
        let DataDir::ToDevice(b) = data else {
            return (Err(INVALID_FIELD), Some("FORMAT UNIT".into()));
        };
        if cdb[1] & 0x10 == 0 || b.len() < 12 {
            return (Err(INVALID_FIELD), Some("FORMAT UNIT".into()));
        }
        let immed = b[1] & 0x02 != 0;
        let format_type = b[8] >> 2;
        let action = Some(format!("FORMAT UNIT type {format_type:02x}"));
        let Some(d) = self.disc.as_mut() else {
            return (Err(NOT_READY_NO_DISC), action);
        };
        let target = match (d.media, format_type) {
            (Media::DvdPlusRw, 0x26) => Media::DvdPlusRw,
            (Media::DvdRam, 0x00 | 0x01) => Media::DvdRam,
            (Media::BdRe, 0x00 | 0x30 | 0x31) => Media::BdRe,
            (Media::DvdRwSequential | Media::DvdRwRestricted, 0x00 | 0x10 | 0x15) => {
                Media::DvdRwRestricted
            }
            (m, _) if !m.is_overwrite() && m != Media::DvdRwSequential => {
                return (Err(INCOMPATIBLE), action);
            }
            _ => return (Err(INVALID_PARAM), action),
        };
        if target == Media::DvdPlusRw {
            // Background formatting: writable at once ("de-icing").
            d.wipe();
            d.formatted = true;
            d.bg_format = 2;
            d.status = DiscStatus::Other;
            return (Ok(0), action);
        }
        self.long_op = Some((
            LongOp::Format { media: target },
            self.config.long_op_polls.max(1),
            self.config.long_op_polls.max(1),
        ));
        if !immed {
            while self.long_op.is_some() {
                self.step_long_op();
            }
        }
        (Ok(0), action)
    }

    fn blank(&mut self, cdb: &[u8]) -> (std::result::Result<usize, Sense>, Option<String>) {
        let fast = cdb[1] & 0x07 == 1;
        let immed = cdb[1] & 0x10 != 0;
        let action = Some(if fast { "BLANK fast" } else { "BLANK full" }.to_string());
        let Some(d) = self.present() else {
            return (Err(self.no_disc_sense()), action);
        };
        if !matches!(
            d.media,
            Media::CdRw | Media::DvdRwSequential | Media::DvdRwRestricted
        ) {
            return (Err(INCOMPATIBLE), action);
        }
        if !self.config.writes(d.media) {
            return (Err(CANNOT_WRITE), action);
        }
        self.long_op = Some((
            LongOp::Blank,
            self.config.long_op_polls.max(1),
            self.config.long_op_polls.max(1),
        ));
        if !immed {
            while self.long_op.is_some() {
                self.step_long_op();
            }
        }
        (Ok(0), action)
    }
}

/// Copy `src` into a FromDevice buffer; returns the bytes transferred.
fn copy_out(data: DataDir<'_>, src: &[u8]) -> usize {
    match data {
        DataDir::FromDevice(buf) => {
            let n = buf.len().min(src.len());
            buf[..n].copy_from_slice(&src[..n]);
            n
        }
        _ => 0,
    }
}

impl Transport for SimDrive {
    fn device(&self) -> &str {
        &self.name
    }

    fn execute(
        &mut self,
        name: &'static str,
        cdb: &[u8],
        data: DataDir<'_>,
        _timeout: Duration,
    ) -> Result<Reply> {
        if !self.powered {
            self.log.push(Logged {
                name,
                cdb: cdb.to_vec(),
                action: None,
            });
            return Err(Error::Gone {
                device: self.name.clone(),
                command: name,
                host: 0x01,
                driver: 0,
            });
        }
        if cdb.is_empty() {
            return Ok(Reply {
                status: Status::CheckCondition(Some(INVALID_OPCODE)),
                transferred: 0,
            });
        }
        // Short CDBs read as zero-padded rather than panicking.
        let mut padded = [0u8; 16];
        let n = cdb.len().min(16);
        padded[..n].copy_from_slice(&cdb[..n]);
        let (result, action) = self.handle(&padded, data);
        self.log.push(Logged {
            name,
            cdb: cdb.to_vec(),
            action,
        });
        Ok(match result {
            Ok(transferred) => Reply {
                status: Status::Good,
                transferred,
            },
            Err(sense) => Reply {
                status: Status::CheckCondition(Some(sense)),
                transferred: 0,
            },
        })
    }
}
