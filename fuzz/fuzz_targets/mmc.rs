//! MMC reply decoding: a drive whose every answer comes from the input
//! (status, sense, data of any length), probed, asked each query unitd
//! makes, and read as a disc (the rip / disc-to-disc source).
//!
//! Each command takes from the input: one status byte (mostly GOOD; else
//! CHECK CONDITION with a length-prefixed sense, BUSY or another status),
//! then for a data-in command a 16-bit length and that many data bytes.
//! When the input runs out the drive "disappears" (a transport error).
#![no_main]

use std::io::Read;
use std::time::Duration;

use copyunit_fuzz::Cursor;
use copyunit_optical::burn::Timing;
use copyunit_optical::mmc::TrackRef;
use copyunit_optical::{
    DataDir, DiscReader, Error, Mmc, Reply, RipOptions, Sense, Status, Transport,
};
use libfuzzer_sys::fuzz_target;

struct FuzzDrive<'a> {
    input: Cursor<'a>,
}

impl Transport for FuzzDrive<'_> {
    fn device(&self) -> &str {
        "sr0"
    }

    fn execute(
        &mut self,
        name: &'static str,
        _cdb: &[u8],
        data: DataDir<'_>,
        _timeout: Duration,
    ) -> copyunit_optical::Result<Reply> {
        if self.input.is_empty() {
            return Err(Error::Io {
                device: "sr0".into(),
                command: name,
                source: std::io::Error::other("fuzz input ended"),
            });
        }
        let status = match self.input.u8() {
            0..=0xbf => Status::Good,
            0xc0..=0xef => {
                let n = usize::from(self.input.u8());
                Status::CheckCondition(Sense::parse(self.input.bytes(n)))
            }
            0xf0..=0xf7 => Status::Busy,
            other => Status::Other(other),
        };
        let transferred = match data {
            DataDir::FromDevice(buf) => {
                let n = usize::from(self.input.u16()).min(buf.len());
                let got = self.input.bytes(n);
                buf[..got.len()].copy_from_slice(got);
                got.len()
            }
            DataDir::ToDevice(buf) => buf.len(),
            DataDir::None => 0,
        };
        Ok(Reply {
            status,
            transferred,
        })
    }
}

fuzz_target!(|data: &[u8]| {
    let mut drive = FuzzDrive {
        input: Cursor::new(data),
    };
    let _ = copyunit_optical::probe(&mut drive);
    let _ = copyunit_optical::media_event(&mut drive);
    {
        let mut mmc = Mmc::new(&mut drive);
        let _ = mmc.request_sense();
        let _ = mmc.read_disc_information();
        let _ = mmc.read_track_information(TrackRef::Invisible);
        let _ = mmc.read_track_information(TrackRef::Number(1));
        let _ = mmc.read_format_capacities();
        let _ = mmc.read_buffer_capacity();
        if let Ok(page) = mmc.mode_sense(0x05) {
            let _ = copyunit_optical::mmc::WriteParams::from_page(&page);
        }
    }
    let opts = RipOptions {
        retries: 1,
        retry_delay: Duration::ZERO,
        zero_fill: true,
        iso_size: true,
        timing: Timing::immediate(),
    };
    if let Ok(mut reader) = DiscReader::open(&mut drive, opts) {
        let _ = reader.size();
        let mut buf = vec![0u8; 64 * 1024];
        let _ = reader.read(&mut buf);
    }
});
