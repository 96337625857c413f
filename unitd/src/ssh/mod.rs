//! SSH transport: the accept loop and limits ([`server`]), who may log in
//! ([`auth`]), the host key ([`hostkey`]), and routing of each connection's
//! channels to the three doors ([`session`]). Only this module and the two
//! doors that hold a channel (`sftp`, `dashboard`) know russh.

pub mod auth;
pub mod authorized_keys;
pub mod hostkey;
pub mod server;
pub mod session;
