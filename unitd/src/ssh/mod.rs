//! SSH transport: the accept loop and limits ([`server`]), who may log in
//! ([`auth`]), the host key ([`hostkey`]), routing of each connection's
//! channels to the three doors ([`session`]) through pumps that never hold
//! up the connection ([`channel`]), and rate-limited client-caused log lines
//! ([`logs`]). Only this module and the two doors that hold a channel
//! (`sftp`, `dashboard`) know russh.

pub mod auth;
pub mod authorized_keys;
pub mod channel;
pub mod hostkey;
pub mod logs;
pub mod server;
pub mod session;
