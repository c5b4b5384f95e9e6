//! Test harness: a temp folder, a `Gm` command builder that runs the real binary and asserts on its
//! status, stdout and stderr, a `GmServer` that runs `gm serve --bind 127.0.0.1:0` and is killed and
//! reaped on drop, and a tiny raw HTTP/1.1 client (so malformed requests can be sent too).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The `gm` binary under test: cargo's build of this tree, or the one `GM_TEST_BIN` names.
/// `scripts/test-static.sh` points it at the static musl build (what install.sh ships), so the
/// suite also checks that build's own C (its `memcpy` and SQLite's allocator, `src/musl`).
pub fn gm_bin() -> &'static str {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| match std::env::var("GM_TEST_BIN") {
        Ok(bin) if !bin.is_empty() => match std::fs::canonicalize(&bin) {
            Ok(path) => path.to_string_lossy().into_owned(),
            Err(e) => panic!("GM_TEST_BIN={bin}: {e}"),
        },
        _ => env!("CARGO_BIN_EXE_gm").to_string(),
    })
}

/// A folder removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("gm-it-{}-{label}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `gm` invocation with a clean environment (only PATH and HOME survive).
#[must_use]
pub struct Gm {
    cmd: Command,
}

impl Gm {
    pub fn new(args: &[&str]) -> Gm {
        let mut cmd = Command::new(gm_bin());
        cmd.args(args).env_clear();
        for keep in ["PATH", "HOME"] {
            if let Ok(v) = std::env::var(keep) {
                cmd.env(keep, v);
            }
        }
        cmd.stdin(Stdio::null());
        Gm { cmd }
    }

    /// Like [`Gm::new`], but `gm` is exec'd by `sh -c` after `umask 022` (a login shell's
    /// default), so file modes are checked under a loose umask whatever the runner's.
    pub fn umask_022(args: &[&str]) -> Gm {
        Gm::new(args).under_umask_022()
    }

    /// This invocation (its arguments, environment and folder) exec'd by `sh -c` after `umask 022`.
    pub fn under_umask_022(self) -> Gm {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "umask 022; exec \"$0\" \"$@\"", gm_bin()]).args(self.cmd.get_args()).env_clear();
        for (k, v) in self.cmd.get_envs() {
            if let Some(v) = v {
                cmd.env(k, v);
            }
        }
        if let Some(dir) = self.cmd.get_current_dir() {
            cmd.current_dir(dir);
        }
        cmd.stdin(Stdio::null());
        Gm { cmd }
    }

    /// `gm managed restore --home HOME --backup ARCHIVE --identity IDENTITY --yes`, the plain restore.
    pub fn restore(home: &Path, archive: &Path, identity: &Path) -> Gm {
        Gm::restore_with(home, archive, identity, &[])
    }

    /// [`Gm::restore`] followed by `extra` arguments (`--json`, `--allow-unsigned`, …).
    pub fn restore_with(home: &Path, archive: &Path, identity: &Path, extra: &[&str]) -> Gm {
        Gm::managed("restore", home, ("--backup", archive), identity, &[&["--yes"], extra].concat())
    }

    /// `gm managed restore-drill --home HOME --backup ARCHIVE --identity IDENTITY EXTRA…`.
    pub fn drill(home: &Path, archive: &Path, identity: &Path, extra: &[&str]) -> Gm {
        Gm::managed("restore-drill", home, ("--backup", archive), identity, extra)
    }

    /// `gm managed restore-drill --home HOME --latest FOLDER --identity IDENTITY EXTRA…`.
    pub fn drill_latest(home: &Path, folder: &Path, identity: &Path, extra: &[&str]) -> Gm {
        Gm::managed("restore-drill", home, ("--latest", folder), identity, extra)
    }

    /// `gm managed verify ARCHIVE --identity IDENTITY EXTRA…` with `GM_HOME=HOME` (the home from the
    /// environment, as an operator's shell has it).
    pub fn verify(home: &Path, archive: &Path, identity: &Path, extra: &[&str]) -> Gm {
        let args = ["managed", "verify", path_str(archive), "--identity", path_str(identity)];
        Gm::new(&[&args[..], extra].concat()).env("GM_HOME", path_str(home))
    }

    /// `gm managed backup --home HOME --recipient RECIPIENT --dir FOLDER`.
    pub fn backup(home: &Path, recipient: &str, folder: &Path) -> Gm {
        let (h, f) = (path_str(home), path_str(folder));
        Gm::new(&["managed", "backup", "--home", h, "--recipient", recipient, "--dir", f])
    }

    /// `gm managed VERB --home HOME FLAG SOURCE --identity IDENTITY EXTRA…`.
    fn managed(verb: &str, home: &Path, (flag, source): (&str, &Path), identity: &Path, extra: &[&str]) -> Gm {
        let args =
            ["managed", verb, "--home", path_str(home), flag, path_str(source), "--identity", path_str(identity)];
        Gm::new(&[&args[..], extra].concat())
    }

    /// One more argument after the ones given.
    pub fn arg(mut self, a: &str) -> Gm {
        self.cmd.arg(a);
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Gm {
        self.cmd.env(k, v);
        self
    }

    pub fn cwd(mut self, dir: &Path) -> Gm {
        self.cmd.current_dir(dir);
        self
    }

    pub fn output(mut self) -> Output {
        self.cmd.output().unwrap()
    }

    /// Runs and asserts the exit status; returns (stdout, stderr).
    pub fn expect(self, status: i32) -> (String, String) {
        let out = self.output();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(status), "stdout:\n{stdout}\nstderr:\n{stderr}");
        (stdout, stderr)
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Creates a complete sandbox home (keys, signed genesis, gm.toml) without serving it.
/// A quickstart sandbox in `dir/home`, without the default scheduled jobs (so test servers run
/// none; tests/it/cron.rs checks the defaults on a sandbox of its own).
pub fn sandbox(dir: &TempDir) -> PathBuf {
    let home = dir.join("home");
    Gm::new(&["quickstart", "--home", home.to_str().unwrap(), "--no-serve"]).expect(0);
    let toml = std::fs::read_to_string(home.join("gm.toml")).unwrap();
    let without_jobs = toml.split("# Scheduled jobs").next().unwrap().to_string();
    std::fs::write(home.join("gm.toml"), without_jobs).unwrap();
    home
}

/// A [`sandbox`] whose database has its schema: `gm serve` started once, then killed (its WAL
/// stays, as after a crash).
pub fn home_with_schema(dir: &TempDir) -> PathBuf {
    let home = sandbox(dir);
    drop(GmServer::start(&home, &[]));
    home
}

/// Appends a `[server.limits]` table holding `limits` (TOML lines) to `home`'s gm.toml.
pub fn with_limits(home: &Path, limits: &str) {
    let path = home.join("gm.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("\n[server.limits]\n");
    text.push_str(limits);
    std::fs::write(path, text).unwrap();
}

/// A running `gm serve`, killed and reaped on drop.
pub struct GmServer {
    child: Child,
    pub addr: SocketAddr,
    stderr_log: PathBuf,
}

impl GmServer {
    /// Starts `gm serve --home HOME --bind 127.0.0.1:0 EXTRA…` and waits for its address.
    pub fn start(home: &Path, extra: &[&str]) -> GmServer {
        GmServer::start_with(home, extra, &[])
    }

    pub fn start_with(home: &Path, extra: &[&str], env: &[(&str, &str)]) -> GmServer {
        GmServer::start_in_shell(home, extra, env, "")
    }

    /// Like [`GmServer::start_with`], but `gm serve` is exec'd by `sh -c` after the shell runs
    /// `prelude` (such as `trap '' XFSZ`, inherited by gm as an ignored signal). `pid()` is gm's.
    pub fn start_in_shell(home: &Path, extra: &[&str], env: &[(&str, &str)], prelude: &str) -> GmServer {
        let stderr_log = home.join(format!("serve-{}.log", std::process::id()));
        let mut cmd = if prelude.is_empty() {
            Command::new(gm_bin())
        } else {
            let mut sh = Command::new("sh");
            sh.args(["-c", &format!("{prelude}; exec \"$0\" \"$@\""), gm_bin()]);
            sh
        };
        cmd.args(["serve", "--home", home.to_str().unwrap(), "--bind", "127.0.0.1:0"]).args(extra).env_clear();
        for (k, v) in env {
            cmd.env(k, v);
        }
        let log = std::fs::File::create(&stderr_log).unwrap();
        cmd.stdout(Stdio::piped()).stderr(Stdio::from(log)).stdin(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .or_else(|| line.trim().strip_prefix("listening on https://"))
            .unwrap_or_else(|| {
                panic!(
                    "unexpected startup line {line:?}; stderr: {}",
                    std::fs::read_to_string(&stderr_log).unwrap_or_default()
                )
            })
            .parse()
            .unwrap();
        GmServer { child, addr, stderr_log }
    }

    pub fn get(&self, path: &str) -> HttpResponse {
        request(self.addr, &format!("GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", self.addr))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// A crash: SIGKILL, no shutdown path (dropping the server sends SIGTERM).
    pub fn kill_nine(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> i32 {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "gm serve did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for GmServer {
    /// Stops the server as systemd would: SIGTERM, so its scheduler stops the jobs it runs in their
    /// own process groups (a SIGKILL left a running sandbox probe behind, which then recreated files
    /// in the test's removed folder), and SIGKILL only if it has not exited within 5 s.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while let Ok(None) = self.child.try_wait() {
                if Instant::now() >= deadline {
                    let _ = self.child.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = self.child.wait();
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Writes `raw` to a new connection and reads one response.
pub fn request(addr: SocketAddr, raw: &str) -> HttpResponse {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(raw.as_bytes()).unwrap();
    read_response(&mut stream).unwrap()
}

/// Reads one response (Content-Length framed) from `stream`.
pub fn read_response(stream: &mut TcpStream) -> Option<HttpResponse> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))).collect();
    let len: usize =
        headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-length")).map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(len);
    Some(HttpResponse { status, headers, body })
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The byte size of one `ulimit -f` block in `sh` (512 in dash and POSIX shells, 1024 in bash).
pub fn ulimit_block_bytes() -> u64 {
    let out = Command::new("sh").args(["-c", "ulimit -f 1; cat /proc/self/limits"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let line = text.lines().find(|l| l.starts_with("Max file size")).expect("/proc/self/limits lists the file size");
    line.split_whitespace().nth(3).unwrap().parse().unwrap()
}

/// Decrypts an age-encrypted `.tar.gz` (gm's backups and incident bundles) with `identity` and
/// unpacks it in memory: entry name to bytes.
pub fn open_archive(archive: &Path, identity: &age::x25519::Identity) -> std::collections::BTreeMap<String, Vec<u8>> {
    let file = std::fs::File::open(archive).unwrap();
    let decryptor = age::Decryptor::new(std::io::BufReader::new(file)).unwrap();
    let reader = decryptor.decrypt(std::iter::once(identity as &dyn age::Identity)).unwrap();
    let mut tar = tar::Archive::new(flate2::read::MultiGzDecoder::new(reader));
    let mut out = std::collections::BTreeMap::new();
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        out.insert(name, bytes);
    }
    out
}

/// A fresh age X25519 identity written to `dir/backup.key`: `(recipient "age1…", key file)`.
pub fn identity(dir: &TempDir) -> (String, PathBuf) {
    let id = age::x25519::Identity::generate();
    let path = dir.join("backup.key");
    std::fs::write(&path, format!("{}\n", age::secrecy::ExposeSecret::expose_secret(&id.to_string()))).unwrap();
    (id.to_public().to_string(), path)
}
