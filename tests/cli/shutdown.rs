//! A service that runs a job drains it on SIGINT and SIGTERM: real signals
//! sent to real processes — the `web_service` example (HTTP ingest) and
//! `weir run --serve` — which must exit 0 with the results of everything
//! they took, the windows still open at the signal included.

use crate::support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::wait_until;

/// How long a process may take to drain and exit after the signal.
const EXIT_DEADLINE: Duration = Duration::from_secs(30);

/// The `web_service` example, built once per test run with this test's
/// profile, into this test's target directory and with the features this
/// test binary was built with (`cli`): after `cargo test --features cli`,
/// which builds the examples before it runs any test, that is a no-op.
fn web_service_example() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        // This test is <target>/<profile dir>/deps/shutdown-<hash>.
        let exe = std::env::current_exe().expect("the test's own path");
        let profile_dir = exe.parent().and_then(Path::parent).expect("a test binary in <target>/<profile>/deps");
        let target_dir = profile_dir.parent().expect("a profile directory in the target directory");
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev",
            Some(name) => name,
            None => panic!("cannot tell the profile of {}", exe.display()),
        };
        let built = profile_dir.join("examples").join(format!("web_service{}", std::env::consts::EXE_SUFFIX));
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--features", "cli", "--example", "web_service", "--profile", profile])
            .arg("--manifest-path")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .arg("--target-dir")
            .arg(target_dir)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "cargo build --example web_service failed: {status}");
        built
    })
}

/// A child process whose output lines arrive on channels; killed if the
/// test ends before it does.
struct Proc {
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
}

impl Proc {
    fn spawn(cmd: &mut Command) -> Proc {
        let mut child =
            cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("the process starts");
        let stdout = lines(child.stdout.take().expect("piped stdout"));
        let stderr = lines(child.stderr.take().expect("piped stderr"));
        Proc { child, stdout, stderr }
    }

    /// Sends `signal` (`INT`, `TERM`) with `kill`.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits for the process to exit; a hang is a failure.
    fn exit_status(&mut self) -> ExitStatus {
        let deadline = Instant::now() + EXIT_DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("the process can be waited for") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the process did not exit within {EXIT_DEADLINE:?} of the signal: it hangs"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The lines of a child's output, as they come.
fn lines(out: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The first line of `rx` containing `marker`, within 60 s (the process
/// may be starting on a loaded machine).
fn line_with(rx: &Receiver<String>, marker: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(marker) => return line,
            Ok(_) => {}
            Err(e) => panic!("no line with {marker:?} ({e})"),
        }
    }
}

/// Every line still to come (the process has exited).
fn rest(rx: &Receiver<String>) -> Vec<String> {
    rx.iter().collect()
}

/// The address in a line `... http://ADDR/ ...`.
pub(crate) fn address(line: &str) -> SocketAddr {
    let at = line.find("http://").expect("an http:// URL") + "http://".len();
    let addr = line[at..].split('/').next().expect("a host:port");
    addr.parse().unwrap_or_else(|e| panic!("bad address {addr:?} in {line:?}: {e}"))
}

/// One HTTP/1.1 request on a fresh connection: (status, JSON body).
fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).expect("the server accepts connections");
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("a read timeout");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("the request is sent");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("an answer");
    let status = resp.get(9..12).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("bad status line in {resp:?}"));
    let (_, body) = resp.split_once("\r\n\r\n").expect("headers, then a body");
    (status, serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: a body that is not JSON: {body:?}")))
}

const PAGES: [&str; 3] = ["home", "docs", "blog"];

/// View `i`: 600 views over 30 s of event time, in order.
fn view(i: usize) -> (&'static str, i64) {
    (PAGES[i % 3], i as i64 * 50)
}

/// Posts every view to the example's `/ingest`, resending what a 503 did
/// not take, until every one was answered as taken.
fn post_views(addr: SocketAddr, n: usize) {
    let mut i = 0;
    while i < n {
        let end = (i + 100).min(n);
        let body: String =
            (i..end).map(view).map(|(page, ts)| format!("{{\"page\":\"{page}\",\"ts\":{ts}}}\n")).collect();
        let (status, report) = request(addr, "POST", "/ingest", &body);
        match (status, report["retry_from_line"].as_u64()) {
            (200, _) => i = end,
            // Backpressured: lines before `k` were taken; resend the rest.
            (503, Some(k)) => {
                i += k as usize - 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => panic!("ingest answered {status}: {report}"),
        }
    }
}

/// `web_service --serve` takes views over HTTP, gets `signal`, and exits
/// 0 having written the count of every view it took: each window once,
/// the last one fired only because the job drained.
fn example_drains_on(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("results.jsonl");
    let mut p =
        Proc::spawn(Command::new(web_service_example()).args(["--serve", "127.0.0.1:0", "--output"]).arg(&output));
    let addr = address(&line_with(&p.stdout, "dashboard  http://"));

    const VIEWS: usize = 600;
    post_views(addr, VIEWS);
    // Every view was taken. The watermark (newest view - 1 s) is short of
    // the end of the last window [20 s, 30 s): it has not fired.
    let (status, latest) = request(addr, "GET", "/api/results", "");
    assert_eq!(status, 200);
    assert!(latest.as_array().unwrap().iter().all(|r| r["window"]["start"] != 20_000), "{latest}");

    p.signal(signal);
    let status = p.exit_status();
    let (stdout, stderr) = (rest(&p.stdout), rest(&p.stderr));
    assert!(status.success(), "{status}\nstdout: {stdout:#?}\nstderr: {stderr:#?}");
    let text =
        std::fs::read_to_string(&output).unwrap_or_else(|e| panic!("{}: {e}; stdout: {stdout:#?}", output.display()));
    let mut got: BTreeMap<(String, i64), u64> = BTreeMap::new();
    for line in text.lines() {
        let r: Value = serde_json::from_str(line).unwrap();
        let key = (r["key"].as_str().unwrap().to_string(), r["window"]["start"].as_i64().unwrap());
        assert_eq!(r["timing"], "OnTime", "{line}");
        assert!(got.insert(key, r["value"].as_u64().unwrap()).is_none(), "a window written twice: {line}");
    }
    let mut want: BTreeMap<(String, i64), u64> = BTreeMap::new();
    for (page, ts) in (0..VIEWS).map(view) {
        *want.entry((page.to_string(), ts / 10_000 * 10_000)).or_default() += 1;
    }
    assert_eq!(got, want, "one count per page and window, of every view taken");
    assert!(stdout.iter().any(|l| l.contains(&format!("drained: {VIEWS} views read"))), "{stdout:#?}");
}

#[test]
fn web_service_drains_the_job_on_sigint_and_exits_0() {
    example_drains_on("INT");
}

#[test]
fn web_service_drains_the_job_on_sigterm_and_exits_0() {
    example_drains_on("TERM");
}

/// Events the sources of the job at `addr` have read so far.
fn events_read(addr: SocketAddr) -> u64 {
    let (_, jobs) = request(addr, "GET", "/api/jobs", "");
    let id = jobs[0]["id"].as_str().expect("one job").to_string();
    let (_, job) = request(addr, "GET", &format!("/api/jobs/{id}"), "");
    job["actors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "Source")
        .map(|a| a["records_in"].as_u64().unwrap())
        .sum()
}

/// `weir run wl1 --serve` gets `signal` while its generator is far from
/// done, and exits 0 having counted every event it read into its output:
/// the CSV rows add up to the checksum, whose event count is the number
/// of events read.
fn weir_run_drains_on(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("rows.csv");
    let mut p = Proc::spawn(
        Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["run", "wl1", "--events", "1000000000", "--throttle", "20000", "--serve", "127.0.0.1:0", "--output"])
            .arg(&output),
    );
    let addr = address(&line_with(&p.stderr, "weir: dashboard at http://"));
    wait_until("the job to read 10,000 events", Duration::from_secs(60), || events_read(addr) >= 10_000);

    p.signal(signal);
    let status = p.exit_status();
    let (stdout, stderr) = (rest(&p.stdout), rest(&p.stderr));
    assert!(status.success(), "{status}\nstdout: {stdout:#?}\nstderr: {stderr:#?}");
    let stopped = stderr.iter().find(|l| l.contains("stopped by")).unwrap_or_else(|| panic!("{stderr:#?}"));
    assert!(stopped.contains(&format!("stopped by SIG{signal} after reading ")), "{stopped}");
    let read: u64 =
        stopped.split("after reading ").nth(1).and_then(|r| r.split(' ').next()).and_then(|n| n.parse().ok()).unwrap();
    let checksum: Vec<u64> = stdout.last().expect("a checksum line").split(' ').map(|n| n.parse().unwrap()).collect();
    let [rows, events, total, _digest] = checksum[..] else { panic!("not a checksum: {stdout:#?}") };

    let text = std::fs::read_to_string(&output).unwrap();
    let mut csv = text.lines();
    assert_eq!(csv.next(), Some("window_start,key,count,sum"));
    let (mut n, mut count, mut sum) = (0u64, 0u64, 0u64);
    for line in csv {
        let f: Vec<&str> = line.split(',').collect();
        n += 1;
        count += f[2].parse::<u64>().unwrap();
        sum = sum.wrapping_add(f[3].parse::<i64>().unwrap() as u64);
    }
    assert!((10_000..1_000_000_000).contains(&read), "{read}");
    assert_eq!((n, count, sum), (rows, events, total), "the file holds the rows of the checksum");
    assert_eq!(events, read, "every event read is counted in a window (none late, none lost)");
}

#[test]
fn weir_run_serve_drains_the_job_on_sigint_and_exits_0() {
    weir_run_drains_on("INT");
}

#[test]
fn weir_run_serve_drains_the_job_on_sigterm_and_exits_0() {
    weir_run_drains_on("TERM");
}
