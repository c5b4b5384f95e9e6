//! The connection state machine (`src/http/conn.rs`) and the event loop (`src/http/poller.rs`) end
//! to end: one real `gm::http::Server` on 127.0.0.1 for the whole run, and per input one client
//! connection that sends the bytes in fuzzer-chosen chunks, half-closes, and reads every response
//! until the server closes. Requests for paths under `/now` are answered at once on the event loop
//! (`Handler::handle_now`), the rest by a connection thread, so inputs mix the two and the hand-over.
//!
//! Input: byte 0 picks the limits (default or tiny), byte 1 is the length n of the chunk plan, the
//! next n bytes are chunk lengths, the rest is what the client sends.
//!
//! Properties: no panic on any server thread (libFuzzer's panic hook aborts the process), the server
//! closes the connection within a deadline once the client has finished, and everything it writes
//! is a sequence of HTTP/1.1 status lines with their heads.
#![no_main]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use gm::http::{Handler, Limits, Request, Response, Server};
use gm_fuzz::chunks;
use libfuzzer_sys::fuzz_target;

/// Longest wait for the server to finish answering one input; reaching it means the connection hung.
const CLIENT_DEADLINE: Duration = Duration::from_secs(20);

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let Some((&plan_len, rest)) = rest.split_first() else { return };
    let plan_len = usize::from(plan_len % 32).min(rest.len());
    let (plan, stream) = rest.split_at(plan_len);
    let addr = server(mode & 1 == 1);
    let Ok(mut client) = TcpStream::connect(addr) else { panic!("cannot connect to the fuzzed server at {addr}") };
    client.set_nodelay(true).expect("TCP_NODELAY on loopback");
    client.set_read_timeout(Some(CLIENT_DEADLINE)).expect("a read timeout");
    for chunk in chunks(stream, plan) {
        // The server may close early (a refusal); what it wrote is still read below.
        if client.write_all(chunk).is_err() {
            break;
        }
    }
    let _ = client.shutdown(Shutdown::Write);
    let mut answer = Vec::new();
    if let Err(err) = client.read_to_end(&mut answer) {
        assert!(
            !matches!(err.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
            "the server did not close the connection within {CLIENT_DEADLINE:?} after the client finished"
        );
    }
    if !answer.is_empty() {
        assert!(answer.starts_with(b"HTTP/1.1 "), "not a status line: {:?}", String::from_utf8_lossy(&answer));
    }
});

/// The server for default (`tiny == false`) or tiny limits, started on first use.
fn server(tiny: bool) -> SocketAddr {
    static DEFAULT: OnceLock<SocketAddr> = OnceLock::new();
    static TINY: OnceLock<SocketAddr> = OnceLock::new();
    let cell = if tiny { &TINY } else { &DEFAULT };
    *cell.get_or_init(|| start(limits(tiny)))
}

fn limits(tiny: bool) -> Limits {
    let short = Limits {
        head_timeout: Duration::from_secs(5),
        body_timeout: Duration::from_secs(5),
        keep_alive_idle: Duration::from_secs(5),
        write_timeout: Duration::from_secs(5),
        ..Limits::default()
    };
    if !tiny {
        return short;
    }
    Limits {
        max_head_bytes: 96,
        max_request_line_bytes: 40,
        max_headers: 4,
        max_body_bytes: 16,
        max_requests_per_connection: 3,
        ..short
    }
}

fn start(limits: Limits) -> SocketAddr {
    let server = Server::bind(([127, 0, 0, 1], 0).into(), limits).expect("bind 127.0.0.1:0");
    let addr = server.local_addr();
    let handler = Arc::new(Echo);
    std::thread::Builder::new()
        .name("fuzz-server".into())
        .spawn(move || server.run(handler))
        .expect("spawn the server thread");
    addr
}

/// [`echo`], answered at once for paths under `/now`.
struct Echo;

impl Handler for Echo {
    fn handle(&self, request: &Request) -> Response {
        echo(request)
    }

    fn handle_now(&self, request: &Request) -> Option<Response> {
        request.path.starts_with("/now").then(|| echo(request))
    }
}

/// Echoes parts of the request back, so response encoding sees client-chosen text too.
fn echo(request: &Request) -> Response {
    let mut response = Response::text(200, format!("{} {} {}\n", request.method, request.path, request.body.len()));
    if let Some(value) = request.header("x-echo") {
        response = response.with_header("X-Echo", value);
    }
    if request.header("x-close").is_some() {
        response = response.with_header("Connection", "close");
    }
    response
}
