//! End-to-end tests: a real unitd driven by the real OpenSSH clients.
//! One test binary, one module per area.

mod auth;
mod commands;
mod copy;
mod dashboard;
mod duplicator;
mod optical;
mod sftp;
mod store;
