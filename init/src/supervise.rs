//! unitd under PID 1: start it, copy its output to the consoles, restart it when it dies,
//! stop it for power-off.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::say;

/// The unitd process and its restart schedule.
pub struct Unitd {
    program: String,
    args: Vec<String>,
    pid: Option<Pid>,
    failures: u32,
    next_start: Option<Instant>,
    started_at: Instant,
}

/// Copies a child's output to the consoles line by line.
fn forward(stream: impl Read + Send + 'static) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            match line {
                Ok(l) => crate::console::line(&l),
                Err(_) => break,
            }
        }
    });
}

impl Unitd {
    pub fn new(program: &str, args: Vec<String>) -> Unitd {
        Unitd {
            program: program.into(),
            args,
            pid: None,
            failures: 0,
            next_start: Some(Instant::now()),
            started_at: Instant::now(),
        }
    }

    pub fn pid(&self) -> Option<Pid> {
        self.pid
    }

    /// Starts unitd when it is due (first start, or after the back-off following an exit).
    pub fn tick(&mut self) {
        if self.pid.is_some() || self.next_start.is_none_or(|t| Instant::now() < t) {
            return;
        }
        self.next_start = None;
        let spawned = Command::new(&self.program)
            .args(&self.args)
            .env_clear()
            .env("PATH", "/bin:/sbin")
            .env("HOME", "/root")
            .env("TERM", "linux")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        match spawned {
            Ok(mut child) => {
                if let Some(out) = child.stdout.take() {
                    forward(out);
                }
                if let Some(err) = child.stderr.take() {
                    forward(err);
                }
                self.pid = Some(Pid::from_raw(child.id() as i32));
                self.started_at = Instant::now();
                say!("unitd started (pid {})", child.id());
                // PID 1 reaps every child itself (see `exited`); the Child handle is not waited on.
                drop(child);
            }
            Err(e) => {
                say!("cannot start {}: {e}", self.program);
                self.schedule_restart();
            }
        }
    }

    fn schedule_restart(&mut self) {
        self.failures += 1;
        let delay = Duration::from_secs(1u64 << self.failures.min(5));
        say!("restarting unitd in {} s", delay.as_secs());
        self.next_start = Some(Instant::now() + delay);
    }

    /// Called for every reaped child; restarts unitd if it was unitd.
    pub fn exited(&mut self, status: WaitStatus) {
        if status.pid() != self.pid {
            return;
        }
        self.pid = None;
        // A run of a minute or more was healthy: start the back-off again from the bottom.
        if self.started_at.elapsed() > Duration::from_secs(60) {
            self.failures = 0;
        }
        say!("unitd ended: {status:?}");
        self.schedule_restart();
    }

    /// Asks unitd to stop (SIGTERM), waits up to `grace`, then kills it.
    pub fn stop(&mut self, grace: Duration) {
        self.next_start = None;
        let Some(pid) = self.pid.take() else { return };
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => std::thread::sleep(Duration::from_millis(50)),
                _ => return,
            }
        }
        say!(
            "unitd did not stop within {} s: killing it",
            grace.as_secs()
        );
        let _ = kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
    }
}

/// Reaps every exited child; returns their statuses.
pub fn reap() -> Vec<WaitStatus> {
    let mut out = Vec::new();
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return out,
            Ok(s) => out.push(s),
        }
    }
}

/// True when something listens on TCP `port` (from /proc/net/tcp and tcp6).
pub fn listening(port: u16) -> bool {
    let want = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|f| {
        std::fs::read_to_string(f).is_ok_and(|t| {
            t.lines().skip(1).any(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.len() > 3 && cols[1].ends_with(&want) && cols[3] == "0A"
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_a_listening_port() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        assert!(listening(port));
        drop(l);
        assert!(!listening(port));
    }
}
