//! The HTTP/1.1 server layer: moves bytes, enforces [`Limits`], and calls a [`Handler`] once per request.
//!
//! Owns the listener, connection threads, request parsing, response framing, deadlines and graceful
//! shutdown. Must not know anything about the application: no routes, no authentication, no application error
//! bodies. The only bodies it writes itself are the fixed protocol-level refusals (400, 408, 413, 414, 431,
//! 500 for a panicking handler, 501, 503 over the connection cap, 505), each `{"error":"..."}`.
//!
//! Files: `server.rs` (listener, accept thread, connection cap, shutdown), `registry.rs` (open
//! connections, per-address shares, evicting idle keep-alive connections), `conn.rs` (keep-alive loop,
//! deadlines, access log), `request.rs` ([`Request`], head parsing, query helpers), `response.rs`
//! ([`Response`], wire encoding), `limits.rs` ([`Limits`]), `fd_limit.rs` (raising the open-file limit),
//! `error.rs` ([`HttpError`]), `handler.rs` ([`Handler`]), `shared.rs` (state the accept and connection
//! threads share), `poller.rs` (the event loop that watches plain-HTTP connections between requests and
//! answers what the handler answers at once), `worker.rs` (starting and joining connection threads), `tests.rs` (behaviour tests against a real listener on port 0).

mod conn;
mod error;
mod fd_limit;
mod handler;
mod limits;
mod poller;
mod registry;
mod request;
mod response;
mod server;
mod shared;
#[cfg(test)]
mod tests;
mod tls;
mod wire;
mod worker;

pub use error::{HttpError, PercentDecodeError};
pub use fd_limit::{raise_open_file_limit, FdLimit};
pub use handler::Handler;
pub use limits::Limits;
#[doc(hidden)]
pub use request::parse_head_for_fuzzing;
pub use request::{parse_query, percent_decode, percent_decode_query_component, Request};
pub use response::{reason_phrase, Response};
pub use server::{ServeReport, Server, ShutdownHandle};
pub use shared::ServerStats;
pub use tls::TlsState;
