//! S3-compatible object storage (AWS S3, MinIO, Ceph RGW, Garage, R2, …) as a backup destination:
//! [`S3Url`] (`s3://bucket/key`), [`Remote`] (one bucket at one endpoint, with its credentials)
//! and the requests backups need: bucket check, put, get (streamed), head, list, delete, and the
//! multipart upload steps [`upload`] drives.
//!
//! Requests are signed with SigV4 by `rusty-s3` (sans-IO, query-string signing) and sent with
//! ureq through the client's connector ([`crate::client::deadline_io`]): one deadline over every
//! byte, TLS with the host's roots. Failures are [`S3Error`]s whose kind says what to do
//! (unreachable, denied, no bucket, …). The secret key never leaves [`Credentials`]: it is not in
//! any URL, error, log line or `Debug` output (a presigned URL carries the key id and a signature,
//! so gm never shows one; errors name `s3://bucket/key`).
//!
//! Must not: decide where backups go or what they are called ([`crate::ops::destination`] and
//! [`crate::ops::backup`] do), or retry a request that is not idempotent at the S3 level.

pub(crate) mod upload;
pub(crate) mod xml;

use std::fmt;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusty_s3::{Bucket, Method, UrlStyle};

use crate::client::deadline_io;

/// How long a signed request stays valid (S3 accepts 1 s to 7 days). S3 checks it when the request
/// arrives, so gm needs only seconds; a presigned URL seen on the way (a plain-http endpoint, a
/// proxy log) can be replayed for this long, for the same method, object and signed headers
/// (`Content-MD5` pins an upload's bytes). 15 minutes leaves room for a skewed clock.
const SIGNATURE_LIFETIME_SECS: u64 = 900;

/// The most bytes gm reads of an S3 answer it parses (errors, lists, upload ids).
const MAX_XML_BYTES: u64 = 4 * 1024 * 1024;

/// `s3://bucket/key`: a bucket and an object key or key prefix (no leading or trailing `/`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct S3Url {
    /// The bucket.
    pub bucket: String,
    /// The key or prefix, without a leading or trailing `/` (empty: the whole bucket).
    pub key: String,
}

impl S3Url {
    /// Whether `text` is meant as an S3 URL (it starts with `s3://`).
    pub(crate) fn is_s3(text: &str) -> bool {
        text.starts_with("s3://")
    }

    /// Parses `s3://bucket[/key]`. The bucket must be a valid S3 bucket name; the key may not
    /// hold `..` segments, empty segments or control characters.
    pub(crate) fn parse(text: &str) -> Result<S3Url, String> {
        let rest = text.strip_prefix("s3://").ok_or_else(|| format!("{text:?} is not an s3://bucket/prefix URL"))?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && !bucket.starts_with(['-', '.'])
            && !bucket.ends_with(['-', '.']);
        if !bucket_ok {
            return Err(format!("{text:?}: {bucket:?} is not an S3 bucket name (3 to 63 of a-z, 0-9, '-' and '.')"));
        }
        let key = key.trim_matches('/');
        if key.split('/').any(|s| s == ".." || s == "." || (s.is_empty() && !key.is_empty()))
            || key.chars().any(char::is_control)
            || key.len() > 900
        {
            return Err(format!("{text:?}: the key {key:?} has an empty, '.' or '..' segment or a control character"));
        }
        Ok(S3Url { bucket: bucket.to_string(), key: key.to_string() })
    }

    /// The object `name` under this prefix.
    pub(crate) fn join(&self, name: &str) -> S3Url {
        let key = if self.key.is_empty() { name.to_string() } else { format!("{}/{name}", self.key) };
        S3Url { bucket: self.bucket.clone(), key }
    }

    /// The last segment of the key (the object's file name).
    pub(crate) fn name(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or_default()
    }

    /// Whether this URL is `prefix` or lies under it.
    pub(crate) fn is_under(&self, prefix: &S3Url) -> bool {
        self.bucket == prefix.bucket
            && (prefix.key.is_empty()
                || self.key == prefix.key
                || self.key.strip_prefix(prefix.key.as_str()).is_some_and(|r| r.starts_with('/')))
    }
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.key)
        }
    }
}

/// An access key, its secret and an optional session token, and where they came from. `Debug`
/// and every message show only the key id and the source.
#[derive(Clone)]
pub(crate) struct Credentials {
    key_id: String,
    secret: String,
    token: Option<String>,
    /// Where they were read from (`credentials_file /etc/gm/s3.env`, `environment`, …).
    pub source: String,
}

impl Credentials {
    /// Credentials read from `source`.
    pub(crate) fn new(key_id: String, secret: String, token: Option<String>, source: String) -> Credentials {
        Credentials { key_id, secret, token: token.filter(|t| !t.is_empty()), source }
    }

    /// The secret, to check that no output shows it.
    #[cfg(test)]
    pub(crate) fn secret(&self) -> &str {
        &self.secret
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("key_id", &self.key_id)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// What kind of failure an S3 request met, which decides the hint and whether to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3ErrorKind {
    /// No connection, no answer in time, a TLS failure.
    Unreachable,
    /// The credentials were refused (unknown key, bad signature, access denied, expired token).
    Denied,
    /// The bucket does not exist.
    NoBucket,
    /// The object does not exist.
    NoObject,
    /// The server failed or asked to slow down (5xx, 429): worth another try.
    Busy,
    /// Any other refusal (4xx) or an answer gm cannot read.
    Refused,
    /// The object was stored, but without the Object Lock retention the destination asks for.
    NotLocked,
    /// An object of that name is already there (gm never overwrites a backup).
    Exists,
    /// The object is larger than gm agreed to read.
    TooLarge,
}

/// A failed S3 request: what gm was doing, on which object, and what the server (or the network)
/// said. The facts are boxed so a `Result` carrying one stays small.
#[derive(Debug, Clone)]
pub struct S3Error {
    /// What kind of failure.
    pub kind: S3ErrorKind,
    facts: Box<Facts>,
}

#[derive(Debug, Clone)]
struct Facts {
    /// What was being done ("upload part 3 of", "list", …).
    action: String,
    /// The object or prefix, as `s3://bucket/key`.
    url: String,
    /// The endpoint, for messages about reaching it.
    endpoint: String,
    /// The server's code and message, or the transport failure.
    detail: String,
    /// Where the credentials came from (for the hint).
    credentials_source: String,
}

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            S3ErrorKind::Unreachable => {
                write!(
                    f,
                    "cannot {} {}: endpoint {} is unreachable: {}",
                    self.facts.action, self.facts.url, self.facts.endpoint, self.facts.detail
                )
            }
            _ => write!(
                f,
                "cannot {} {} (endpoint {}): {}",
                self.facts.action, self.facts.url, self.facts.endpoint, self.facts.detail
            ),
        }
    }
}

impl std::error::Error for S3Error {}

impl S3Error {
    /// What to do about it, for the CLI's `hint:` line.
    pub(crate) fn hint(&self) -> String {
        let credentials_source = &self.facts.credentials_source;
        match self.kind {
            S3ErrorKind::Unreachable => "check the endpoint ([[backup.destinations]] endpoint, or AWS_ENDPOINT_URL), \
                 DNS and the firewall between this host and the storage"
                .into(),
            S3ErrorKind::Denied => format!(
                "the storage refused the credentials from {credentials_source}: check the access key, the secret, \
                 the session token's expiry and the bucket policy (gm needs s3:PutObject, GetObject, ListBucket, \
                 DeleteObject, AbortMultipartUpload)"
            ),
            S3ErrorKind::NoBucket => {
                "create the bucket (with Object Lock enabled if the destination sets object_lock) or fix the \
                 bucket name in the URL"
                    .into()
            }
            S3ErrorKind::NoObject => "list the destination (gm managed prune --dry-run --dir s3://…) for the \
                 backups it holds"
                .into(),
            S3ErrorKind::Busy => {
                "the storage is failing or throttling; gm retried with backoff. Try again later".into()
            }
            S3ErrorKind::Refused => "the storage refused the request; its code and message are above".into(),
            S3ErrorKind::Exists => "a backup of that name is already in the bucket: two hosts (or two runs within the \
                 same second) write to the same prefix; give each NA its own prefix"
                .into(),
            S3ErrorKind::TooLarge => "raise [backup] max_unpacked_bytes only for a backup you trust".into(),
            S3ErrorKind::NotLocked => "Object Lock must be enabled on the bucket (on AWS, when the bucket is created, \
                 which also turns on versioning); check with the storage's get-object-lock-configuration, or drop \
                 [backup.destinations.object_lock] if this destination cannot lock"
                .into(),
        }
    }
}

/// Where a bucket lives and how to address it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// `https://s3.eu-central-1.amazonaws.com`, `http://127.0.0.1:9000`, …
    pub url: String,
    /// The signing region.
    pub region: String,
    /// Path-style addressing (`endpoint/bucket/key`) rather than virtual hosts (`bucket.endpoint/key`).
    pub path_style: bool,
}

/// The object facts a `HEAD` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectMeta {
    /// Size in bytes.
    pub size: u64,
    /// ETag without quotes.
    pub etag: String,
    /// `GOVERNANCE` or `COMPLIANCE` when the object is under Object Lock retention.
    pub lock_mode: Option<String>,
    /// The retention's end, as the server wrote it (RFC 3339).
    pub retain_until: Option<String>,
}

/// An object found by [`Remote::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    /// Its URL.
    pub url: S3Url,
    /// Size in bytes.
    pub size: u64,
    /// ETag without quotes.
    pub etag: String,
}

/// One bucket at one endpoint, with the credentials to use it.
pub(crate) struct Remote {
    bucket: Bucket,
    credentials: Credentials,
    endpoint: Endpoint,
    tls: Arc<rustls::ClientConfig>,
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("bucket", &self.bucket.name())
            .field("endpoint", &self.endpoint)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// One request: what to send, how long it may take, what it is for (in messages) and how many
/// times to try it.
#[derive(Clone, Copy)]
struct Request<'a> {
    method: Method,
    /// The object, or `None` for the bucket.
    key: Option<&'a str>,
    query: &'a [(&'a str, &'a str)],
    /// Sent and signed.
    headers: &'a [(&'a str, &'a str)],
    body: Option<&'a [u8]>,
    /// The deadline of one try, from its start.
    within: Duration,
    action: &'a str,
    attempts: u32,
}

impl<'a> Request<'a> {
    /// No query, headers or body; 30 s per try; 3 tries.
    fn new(method: Method, key: Option<&'a str>, action: &'a str) -> Request<'a> {
        Request {
            method,
            key,
            query: &[],
            headers: &[],
            body: None,
            within: Duration::from_secs(30),
            action,
            attempts: 3,
        }
    }
}

/// An answer: status, headers gm reads, and the body reader.
struct Answer {
    status: u16,
    etag: Option<String>,
    headers: ureq::http::HeaderMap,
    body: ureq::Body,
}

impl Remote {
    /// The bucket `bucket` at `endpoint`.
    pub(crate) fn new(endpoint: Endpoint, bucket: &str, credentials: Credentials) -> Result<Remote, String> {
        let url: url::Url =
            endpoint.url.parse().map_err(|e| format!("endpoint {:?} is not a URL: {e}", endpoint.url))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err(format!("endpoint {:?} must be an http:// or https:// URL with a host", endpoint.url));
        }
        if url.query().is_some() || !url.username().is_empty() || url.password().is_some() {
            return Err(format!(
                "endpoint {:?} may not hold a query or user info (credentials come from credentials_file, a systemd credential or AWS_ACCESS_KEY_ID)",
                endpoint.url
            ));
        }
        let style = if endpoint.path_style { UrlStyle::Path } else { UrlStyle::VirtualHost };
        let bucket = Bucket::new(url, style, bucket.to_string(), endpoint.region.clone())
            .map_err(|e| format!("bucket {bucket:?} at {:?}: {e} (try path_style = true)", endpoint.url))?;
        let tls =
            deadline_io::tls_config(&crate::client::Trust::HostRoots).map_err(|e| format!("cannot set up TLS: {e}"))?;
        Ok(Remote { bucket, credentials, endpoint, tls })
    }

    /// The bucket's name.
    pub(crate) fn bucket(&self) -> &str {
        self.bucket.name()
    }

    /// The endpoint URL (for messages).
    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint.url
    }

    pub(crate) fn url_of(&self, key: &str) -> S3Url {
        S3Url { bucket: self.bucket.name().to_string(), key: key.to_string() }
    }

    pub(crate) fn error(
        &self,
        kind: S3ErrorKind,
        action: impl Into<String>,
        key: &str,
        detail: impl Into<String>,
    ) -> S3Error {
        S3Error {
            kind,
            facts: Box::new(Facts {
                action: action.into(),
                url: self.url_of(key).to_string(),
                endpoint: self.endpoint.url.clone(),
                detail: detail.into(),
                credentials_source: self.credentials.source.clone(),
            }),
        }
    }

    /// A presigned URL for `method` on `key` (`None`: the bucket) with `query` and signed `headers`.
    fn sign(&self, method: Method, key: Option<&str>, query: &[(&str, &str)], headers: &[(&str, &str)]) -> String {
        let url = match key {
            Some(k) => self.bucket.object_url(k),
            None => self.bucket.base_url().clone(),
        };
        let mut query = query.to_vec();
        query.sort_unstable();
        let mut headers = headers.to_vec();
        headers.sort_unstable();
        rusty_s3::signing::sign(
            &jiff::Timestamp::now(),
            method,
            url,
            &self.credentials.key_id,
            &self.credentials.secret,
            self.credentials.token.as_deref(),
            self.bucket.region(),
            SIGNATURE_LIFETIME_SECS,
            query.into_iter(),
            headers.into_iter(),
        )
        .to_string()
    }

    fn agent(&self, deadline: Instant) -> ureq::Agent {
        deadline_io::agent_until(&self.tls, deadline, Duration::from_secs(10))
    }

    /// Sends one request and returns the answer, whatever its status.
    fn send(&self, r: &Request<'_>) -> Result<Answer, S3Error> {
        let Request { method, key, query, headers, body, within, action, .. } = *r;
        let url = self.sign(method, key, query, headers);
        let agent = self.agent(Instant::now() + within);
        let result = match (method, body) {
            (Method::Put, b) | (Method::Post, b) => {
                let mut req = if method == Method::Put { agent.put(&url) } else { agent.post(&url) };
                for (k, v) in headers {
                    req = req.header(*k, *v);
                }
                req.send(b.unwrap_or_default())
            }
            (m, _) => {
                let mut req = match m {
                    Method::Head => agent.head(&url),
                    Method::Delete => agent.delete(&url),
                    _ => agent.get(&url),
                };
                for (k, v) in headers {
                    req = req.header(*k, *v);
                }
                req.call()
            }
        };
        let response = result
            .map_err(|e| self.error(S3ErrorKind::Unreachable, action, key.unwrap_or_default(), transport_detail(&e)))?;
        let status = response.status().as_u16();
        let etag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().trim_matches('"').to_string());
        let (parts, body) = response.into_parts();
        Ok(Answer { status, etag, headers: parts.headers, body })
    }

    /// Turns a non-2xx answer into an [`S3Error`] (reading the server's code and message).
    fn check(&self, mut answer: Answer, action: &str, key: &str) -> Result<Answer, S3Error> {
        if (200..300).contains(&answer.status) {
            return Ok(answer);
        }
        let text = answer.body.with_config().limit(MAX_XML_BYTES).read_to_string().unwrap_or_default();
        let code = xml::first(&text, "Code").unwrap_or_default();
        let message = xml::first(&text, "Message").unwrap_or_default();
        let kind = match (answer.status, code.as_str()) {
            (_, "NoSuchBucket") => S3ErrorKind::NoBucket,
            (_, "NoSuchKey") => S3ErrorKind::NoObject,
            (
                _,
                "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "AccessDenied"
                | "ExpiredToken"
                | "InvalidToken"
                | "AuthorizationHeaderMalformed",
            )
            | (401 | 403, _) => S3ErrorKind::Denied,
            // A HEAD answer has no body: 404 on the bucket's HEAD is a missing bucket.
            (404, "") if key.is_empty() => S3ErrorKind::NoBucket,
            (404, _) => S3ErrorKind::NoObject,
            (429 | 500..=599, _) | (_, "SlowDown" | "RequestTimeout" | "InternalError") => S3ErrorKind::Busy,
            _ => S3ErrorKind::Refused,
        };
        let detail = match (code.is_empty(), message.is_empty()) {
            // A HEAD answer has no body: say what the status means.
            (true, _) => match answer.status {
                401 | 403 => format!("HTTP {} (access denied)", answer.status),
                404 if key.is_empty() => "HTTP 404 (no such bucket)".to_string(),
                404 => "HTTP 404 (no such object)".to_string(),
                s => format!("HTTP {s}"),
            },
            (false, true) => format!("HTTP {} {code}", answer.status),
            (false, false) => format!("HTTP {} {code}: {message}", answer.status),
        };
        Err(self.error(kind, action, key, detail))
    }

    /// Sends a request until it succeeds or fails for a reason another try will not fix:
    /// `r.attempts` tries, waiting 250 ms, 500 ms, 1 s, … between them.
    fn call(&self, r: Request<'_>) -> Result<Answer, S3Error> {
        let (attempts, action, key) = (r.attempts, r.action, r.key.unwrap_or_default());
        let mut wait = Duration::from_millis(250);
        let mut tried = 0;
        loop {
            tried += 1;
            let answer = self.send(&r).and_then(|a| self.check(a, action, key));
            match answer {
                Err(e) if tried < attempts && matches!(e.kind, S3ErrorKind::Unreachable | S3ErrorKind::Busy) => {
                    log::warn!(target: "gm::ops", "{e}; trying again in {} ms ({tried} of {attempts})", wait.as_millis());
                    std::thread::sleep(wait);
                    wait *= 2;
                }
                other => return other,
            }
        }
    }

    /// Checks that the bucket exists and the credentials may use it (`HEAD` on the bucket).
    pub(crate) fn check_bucket(&self) -> Result<(), S3Error> {
        self.call(Request { within: Duration::from_secs(20), ..Request::new(Method::Head, None, "use bucket") })
            .map(|_| ())
    }

    /// Uploads a small object in one request (with `Content-MD5`), returning its ETag.
    pub(crate) fn put(&self, key: &str, bytes: &[u8], extra: &[(&str, &str)]) -> Result<String, S3Error> {
        let md5 = content_md5(bytes);
        let mut headers = vec![("content-md5", md5.as_str())];
        headers.extend_from_slice(extra);
        let answer = self.call(Request {
            headers: &headers,
            body: Some(bytes),
            within: Duration::from_secs(60),
            attempts: 5,
            ..Request::new(Method::Put, Some(key), "upload")
        })?;
        Ok(answer.etag.unwrap_or_default())
    }

    /// The object's facts, or `None` when it does not exist.
    pub(crate) fn head(&self, key: &str) -> Result<Option<ObjectMeta>, S3Error> {
        match self.call(Request { within: Duration::from_secs(20), ..Request::new(Method::Head, Some(key), "look up") })
        {
            Ok(a) => {
                let header = |name: &str| a.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
                Ok(Some(ObjectMeta {
                    size: header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0),
                    etag: a.etag.clone().unwrap_or_default(),
                    lock_mode: header("x-amz-object-lock-mode"),
                    retain_until: header("x-amz-object-lock-retain-until-date"),
                }))
            }
            Err(e) if e.kind == S3ErrorKind::NoObject => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Streams the object into `out`, refusing more than `max_bytes`; returns the bytes written.
    pub(crate) fn get_into(&self, key: &str, out: &mut dyn Write, max_bytes: u64) -> Result<u64, S3Error> {
        // Long enough for a large archive on a slow link (at least 256 KiB/s), short enough that a
        // stalled transfer ends.
        let within = Duration::from_secs(300 + max_bytes.min(1 << 40) / (256 * 1024));
        let answer = self.call(Request { within, ..Request::new(Method::Get, Some(key), "download") })?;
        let mut reader = answer.body.into_reader();
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = reader.read(&mut buf).map_err(|e| {
                self.error(S3ErrorKind::Unreachable, "download", key, format!("the transfer broke off: {e}"))
            })?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
            if total > max_bytes {
                return Err(self.error(
                    S3ErrorKind::TooLarge,
                    "download",
                    key,
                    format!("the object is larger than the {max_bytes}-byte limit ([backup] max_unpacked_bytes)"),
                ));
            }
            out.write_all(&buf[..n])
                .map_err(|e| self.error(S3ErrorKind::Refused, "store the download of", key, e.to_string()))?;
        }
    }

    /// Every object under `prefix` (a key prefix, usually ending in `/`), all pages.
    pub(crate) fn list(&self, prefix: &str) -> Result<Vec<Listed>, S3Error> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..10_000 {
            let mut query = vec![("list-type", "2"), ("encoding-type", "url"), ("prefix", prefix)];
            if let Some(t) = token.as_deref() {
                query.push(("continuation-token", t));
            }
            let answer = self.call(Request {
                query: &query,
                within: Duration::from_secs(60),
                ..Request::new(Method::Get, None, "list")
            })?;
            let text = read_xml(answer, |e| self.error(S3ErrorKind::Unreachable, "list", prefix, e))?;
            let (page, next) = xml::list_page(&text);
            for item in page {
                let key = crate::percent::decode_strict(&item.key, crate::percent::Plus::IsSpace).map_err(|_| {
                    self.error(S3ErrorKind::Refused, "list", prefix, "a key in the answer is not UTF-8")
                })?;
                out.push(Listed { url: self.url_of(&key), size: item.size, etag: item.etag });
            }
            match next {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
        Err(self.error(S3ErrorKind::Refused, "list", prefix, "more than 10,000 pages"))
    }

    /// Deletes the object (a missing object is not an error: S3 answers 204 either way).
    pub(crate) fn delete(&self, key: &str) -> Result<(), S3Error> {
        self.call(Request::new(Method::Delete, Some(key), "delete")).map(|_| ())
    }

    /// Starts a multipart upload of `key` with `headers` (Object Lock, …); returns its upload id.
    pub(crate) fn create_multipart(&self, key: &str, headers: &[(&str, &str)]) -> Result<String, S3Error> {
        let action = "start the upload of";
        let answer = self.call(Request {
            query: &[("uploads", "")],
            headers,
            body: Some(&[]),
            ..Request::new(Method::Post, Some(key), action)
        })?;
        let text = read_xml(answer, |e| self.error(S3ErrorKind::Unreachable, action, key, e))?;
        xml::first(&text, "UploadId")
            .filter(|id| !id.is_empty())
            .ok_or_else(|| self.error(S3ErrorKind::Refused, action, key, "the answer holds no UploadId"))
    }

    /// Uploads part `number` (1-based) of an upload; returns its ETag. Retried: a part is idempotent.
    pub(crate) fn upload_part(&self, key: &str, upload_id: &str, number: u16, bytes: &[u8]) -> Result<String, S3Error> {
        let md5 = content_md5(bytes);
        let n = number.to_string();
        let action = format!("upload part {number} of");
        let within = Duration::from_secs(60 + bytes.len() as u64 / (128 * 1024));
        let answer = self.call(Request {
            query: &[("partNumber", &n), ("uploadId", upload_id)],
            headers: &[("content-md5", &md5)],
            body: Some(bytes),
            within,
            attempts: 5,
            ..Request::new(Method::Put, Some(key), &action)
        })?;
        answer.etag.filter(|e| !e.is_empty()).ok_or_else(|| self.error(S3ErrorKind::Refused, action, key, "no ETag"))
    }

    /// Completes an upload from its parts' ETags (part 1 first); returns the object's ETag.
    pub(crate) fn complete_multipart(&self, key: &str, upload_id: &str, etags: &[String]) -> Result<String, S3Error> {
        let mut body = String::from("<CompleteMultipartUpload>");
        for (i, etag) in etags.iter().enumerate() {
            body.push_str(&format!("<Part><PartNumber>{}</PartNumber><ETag>\"{etag}\"</ETag></Part>", i + 1));
        }
        body.push_str("</CompleteMultipartUpload>");
        let action = "complete the upload of";
        // Not retried: completing twice may fail the second time though the first succeeded.
        let answer = self.call(Request {
            query: &[("uploadId", upload_id)],
            body: Some(body.as_bytes()),
            within: Duration::from_secs(120),
            attempts: 1,
            ..Request::new(Method::Post, Some(key), action)
        })?;
        let header_etag = answer.etag.clone();
        let text = read_xml(answer, |e| self.error(S3ErrorKind::Unreachable, action, key, e))?;
        // S3 may answer 200 with an error in the body when the completion failed late.
        if let Some(code) = xml::first(&text, "Code").filter(|_| text.contains("<Error>")) {
            let message = xml::first(&text, "Message").unwrap_or_default();
            return Err(self.error(S3ErrorKind::Refused, action, key, format!("{code}: {message}")));
        }
        Ok(xml::first(&text, "ETag").map(|e| e.trim_matches('"').to_string()).or(header_etag).unwrap_or_default())
    }

    /// Aborts an upload, discarding its parts.
    pub(crate) fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), S3Error> {
        match self.call(Request {
            query: &[("uploadId", upload_id)],
            ..Request::new(Method::Delete, Some(key), "abort the upload of")
        }) {
            // Already aborted or completed: nothing is left to discard.
            Err(e) if e.kind == S3ErrorKind::NoObject => Ok(()),
            other => other.map(|_| ()),
        }
    }
}

/// Reads a (capped) XML answer body.
fn read_xml(answer: Answer, error: impl FnOnce(String) -> S3Error) -> Result<String, S3Error> {
    let mut body = answer.body;
    body.with_config().limit(MAX_XML_BYTES).read_to_string().map_err(|e| error(format!("unreadable answer: {e}")))
}

/// `Content-MD5`: the base64 MD5 of the body, which the server checks (and S3 requires for
/// uploads under Object Lock).
fn content_md5(bytes: &[u8]) -> String {
    use base64::Engine as _;
    use md5::Digest as _;
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(bytes))
}

/// A transport failure as one line: the phase and cause when gm's connector reported them.
fn transport_detail(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Other(inner) => match inner.downcast_ref::<deadline_io::PhaseFailure>() {
            Some(p) => p.to_string(),
            None => inner.to_string(),
        },
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_s3_urls_and_refuses_bad_ones() {
        let u = S3Url::parse("s3://gm-backups/acme/prod/").unwrap();
        assert_eq!((u.bucket.as_str(), u.key.as_str()), ("gm-backups", "acme/prod"));
        assert_eq!(u.to_string(), "s3://gm-backups/acme/prod");
        let o = u.join("gm-a.tar.gz.age");
        assert_eq!(o.to_string(), "s3://gm-backups/acme/prod/gm-a.tar.gz.age");
        assert_eq!(o.name(), "gm-a.tar.gz.age");
        assert!(o.is_under(&u) && !u.is_under(&o));
        assert!(!S3Url::parse("s3://gm-backups/acme/prodx").unwrap().is_under(&u));
        assert_eq!(S3Url::parse("s3://gm-backups").unwrap().join("x").key, "x");
        for bad in [
            "s3://",
            "s3://ab",
            "s3://Upper/x",
            "s3://b_b/x",
            "s3://-bucket/x",
            "s3://bkt/a/../b",
            "s3://bkt/a//b",
            "/tmp/x",
            "s3://bkt/a\nb",
        ] {
            assert!(S3Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials_never_show_the_secret() {
        let c = Credentials::new("AKID".into(), "s3cr3t-value".into(), Some("tok".into()), "environment".into());
        let shown = format!("{c:?}");
        assert!(shown.contains("AKID") && !shown.contains(c.secret()) && !shown.contains("tok"));
        let r = Remote::new(
            Endpoint { url: "http://127.0.0.1:9".into(), region: "us-east-1".into(), path_style: true },
            "gm-backups",
            c.clone(),
        )
        .unwrap();
        assert!(!format!("{r:?}").contains(c.secret()));
        let signed = r.sign(Method::Get, Some("k"), &[], &[]);
        assert!(!signed.contains(c.secret()) && signed.contains("X-Amz-Signature="));
    }

    #[test]
    fn refuses_endpoints_with_user_info_or_another_scheme() {
        let c = || Credentials::new("a".into(), "b".into(), None, "x".into());
        for bad in ["ftp://host", "http://user:pw@host", "http://host/?a=1", "not a url"] {
            let e = Endpoint { url: bad.into(), region: "r".into(), path_style: true };
            assert!(Remote::new(e, "bucket", c()).is_err(), "{bad}");
        }
    }

    #[test]
    fn unreachable_endpoints_fail_as_unreachable() {
        let c = Credentials::new("a".into(), "b".into(), None, "x".into());
        let r = Remote::new(
            Endpoint { url: "http://127.0.0.1:1".into(), region: "us-east-1".into(), path_style: true },
            "gm-backups",
            c,
        )
        .unwrap();
        let e = r.check_bucket().unwrap_err();
        assert_eq!(e.kind, S3ErrorKind::Unreachable, "{e}");
        assert!(e.to_string().contains("127.0.0.1:1") && e.to_string().contains("s3://gm-backups"), "{e}");
    }
}
