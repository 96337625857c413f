//! End-to-end tests: a real unitd driven by the real OpenSSH clients.
//! One test binary, one module per area.
#![forbid(unsafe_code)]

mod auth;
mod clients;
mod commands;
mod copy;
mod dashboard;
mod duplicator;
mod hostile;
mod keys;
mod optical;
mod sftp;
mod sftp_hardening;
mod store;
mod unit_core;
