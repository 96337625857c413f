//! The job history: every job with its per-drive result, kept on the store
//! so the acknowledgement outlives a restart.
//!
//! Saved atomically after every state change that matters (start, end). A
//! job found running when unitd starts was cut off by a crash or power loss:
//! it is marked interrupted, never done.

use std::path::{Path, PathBuf};

use copyunit_model::{Job, JobState, Phase};
use serde::{Deserialize, Serialize};

/// Finished jobs kept, in memory and in the file; older ones are dropped.
pub const KEEP: usize = 500;

/// Drops the oldest finished jobs beyond [`KEEP`]; running jobs stay
/// whatever their age.
pub fn bound(jobs: &mut Vec<Job>) {
    let finished = jobs.iter().filter(|j| j.state.is_finished()).count();
    let mut drop = finished.saturating_sub(KEEP);
    jobs.retain(|j| {
        if drop > 0 && j.state.is_finished() {
            drop -= 1;
            false
        } else {
            true
        }
    });
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct HistoryFile {
    version: u32,
    next_id: u64,
    jobs: Vec<Job>,
}

pub struct History {
    path: PathBuf,
}

impl History {
    pub fn new(store_root: &Path) -> History {
        History {
            path: store_root.join(".copyunit").join("jobs.json"),
        }
    }

    /// Loads the history, turning jobs that were running into interrupted
    /// ones. Returns the jobs and the next free id.
    pub fn load(&self) -> (Vec<Job>, u64) {
        let file: HistoryFile = match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(
                    "job history {} unreadable ({e}): starting a new one",
                    self.path.display()
                );
                HistoryFile::default()
            }),
            Err(_) => HistoryFile::default(),
        };
        let mut jobs = file.jobs;
        let now = crate::unit::now();
        for job in jobs.iter_mut().filter(|j| j.state == JobState::Running) {
            job.state = JobState::Interrupted;
            job.finished = Some(now);
            job.error = Some("unitd stopped while this job ran (crash or power loss)".into());
            for t in job.targets.iter_mut().filter(|t| !t.phase.is_final()) {
                t.phase = Phase::Failed;
                t.error = Some("interrupted".into());
            }
        }
        bound(&mut jobs);
        let next = jobs
            .iter()
            .map(|j| j.id + 1)
            .max()
            .unwrap_or(1)
            .max(file.next_id);
        (jobs, next)
    }

    pub fn save(&self, jobs: &[Job], next_id: u64) {
        let mut jobs = jobs.to_vec();
        bound(&mut jobs);
        let file = HistoryFile {
            version: 1,
            next_id,
            jobs,
        };
        let result = serde_json::to_vec_pretty(&file)
            .map_err(std::io::Error::other)
            .and_then(|bytes| crate::store::write_atomic(&self.path, &bytes));
        if let Err(e) = result {
            tracing::error!("cannot save the job history {}: {e}", self.path.display());
        }
    }
}
