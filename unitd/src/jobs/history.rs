//! The job history: every job with its per-drive result, kept on the store
//! so the acknowledgement outlives a restart.
//!
//! Saved atomically after every state change that matters (start, end). A
//! job found running when unitd starts was cut off by a crash or power loss:
//! it is marked interrupted, never done.

use std::path::{Path, PathBuf};

use copyunit_model::{Job, JobId, JobState, Phase};
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
        // Ids are counted up from 1; one at u64::MAX leaves no next id (the
        // file is not one unitd wrote): start a new history, as for an
        // unreadable file.
        let next = jobs
            .iter()
            .try_fold(file.next_id.max(1), |next, j| {
                j.id.checked_add(1).map(|after| next.max(after))
            })
            .filter(|&next| next < JobId::MAX);
        let Some(next) = next else {
            tracing::warn!(
                "job history {}: a job id has no successor: starting a new one",
                self.path.display()
            );
            return (Vec::new(), 1);
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use copyunit_model::JobTarget;

    fn history(name: &str, next_id: u64, jobs: Vec<Job>) -> History {
        let dir = std::env::temp_dir().join(format!("unitd-history-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join(".copyunit")).unwrap();
        let file = HistoryFile {
            version: 1,
            next_id,
            jobs,
        };
        let json = serde_json::to_vec(&file).unwrap();
        std::fs::write(dir.join(".copyunit/jobs.json"), json).unwrap();
        History::new(&dir)
    }

    fn job(id: JobId, state: JobState) -> Job {
        Job {
            id,
            state,
            targets: vec![JobTarget {
                drive: "sdb".into(),
                phase: Phase::Write,
                ..JobTarget::default()
            }],
            ..Job::default()
        }
    }

    #[test]
    fn running_jobs_load_as_interrupted_and_ids_go_on_after_the_last() {
        let h = history("running", 2, vec![job(7, JobState::Running)]);
        let (jobs, next) = h.load();
        assert_eq!(next, 8);
        assert_eq!(jobs[0].state, JobState::Interrupted);
        assert_eq!(jobs[0].targets[0].phase, Phase::Failed);
    }

    // Found writing the job_history fuzz target: `id + 1` overflowed (a panic
    // with overflow checks; without, next id 0 and duplicate ids).
    #[test]
    fn fuzz_job_history_with_the_largest_id_starts_a_new_history_not_a_panic() {
        let h = history("max-id", 1, vec![job(u64::MAX, JobState::Done)]);
        assert_eq!(h.load(), (Vec::new(), 1));
        // A next id with no successor is the same damage.
        let h = history("max-next", u64::MAX, vec![job(3, JobState::Done)]);
        assert_eq!(h.load(), (Vec::new(), 1));
    }
}
