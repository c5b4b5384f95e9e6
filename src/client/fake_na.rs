//! Test only: a fake NA on 127.0.0.1 port 0 that records each request and plays canned answers,
//! one connection per answer. It stands in for the server routes being written elsewhere; it
//! checks nothing, so the tests check what it recorded.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the fake waits for a connection or a byte before giving up (a test bug, not a hang).
const PATIENCE: Duration = Duration::from_secs(10);

/// One canned answer.
pub(crate) enum Answer {
    /// Status and JSON body text.
    Json(u16, String),
    /// Read the request, then never answer (until the client hangs up).
    Silent,
}

impl Answer {
    /// A JSON answer.
    pub(crate) fn json(status: u16, body: &str) -> Answer {
        Answer::Json(status, body.to_string())
    }
}

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    /// `GET`, `POST`.
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Recorded {
    /// A header's value.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// The running fake.
pub(crate) struct FakeNa {
    url: String,
    thread: JoinHandle<Vec<Recorded>>,
}

impl FakeNa {
    /// Starts serving `answers`, in order, one per connection.
    pub(crate) fn start(answers: Vec<Answer>) -> FakeNa {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        let thread =
            std::thread::Builder::new().name("fake-na".to_string()).spawn(move || serve(&listener, answers)).unwrap();
        FakeNa { url, thread }
    }

    /// The base URL.
    pub(crate) fn url(&self) -> String {
        self.url.clone()
    }

    /// Waits for the fake to finish and returns what it received.
    pub(crate) fn finish(self) -> Vec<Recorded> {
        self.thread.join().unwrap()
    }
}

fn serve(listener: &TcpListener, answers: Vec<Answer>) -> Vec<Recorded> {
    let mut seen = Vec::new();
    for answer in answers {
        let Some(mut stream) = accept(listener) else {
            break;
        };
        stream.set_nonblocking(false).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let Some(request) = read_request(&mut stream) else {
            break;
        };
        seen.push(request);
        match answer {
            Answer::Json(status, body) => {
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(body.as_bytes());
            }
            Answer::Silent => {
                let mut sink = [0u8; 64];
                while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
            }
        }
    }
    seen
}

fn accept(listener: &TcpListener) -> Option<TcpStream> {
    let until = Instant::now() + PATIENCE;
    while Instant::now() < until {
        match listener.accept() {
            Ok((stream, _)) => return Some(stream),
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    None
}

fn read_request(stream: &mut TcpStream) -> Option<Recorded> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize =
        headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Recorded { method, target, headers, body })
}
