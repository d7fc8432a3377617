//! The client side of `benches/load.sh`: tree generation, readiness timing, sequential
//! drain, single-poll latency and detection latency. Each sub-command prints one line of
//! JSON with its result on stdout. Without a sub-command (as `cargo bench` runs it) it does
//! nothing.
//!
//! The HTTP client is a minimal HTTP/1.1 keep-alive client over one `TcpStream` with
//! `TCP_NODELAY`, the same for the daemon and the bare server, so its own cost cancels
//! out of the ratios.
//!
//! Sub-commands (URLs are `http://127.0.0.1:PORT/...`):
//! - `gen DIR COUNT SIZE`: COUNT files of SIZE bytes in nested directories
//!   (`DIR/tNNN/dNNNNN/fNNNNNNN.dat`, 100 files per directory, 100 directories per top one);
//! - `ready URL T0_NS TIMEOUT_S`: polls URL (`/healthz`) until it answers `200`; prints the
//!   seconds since T0_NS (nanoseconds since the epoch, from `date +%s%N` just before the
//!   daemon was started);
//! - `indexed URL N TIMEOUT_S`: polls `/healthz` until `filesIndexed` ≥ N and nothing is
//!   pending; prints the seconds it waited;
//! - `drain URL [MAX]`: follows `Location` from URL while the answer is `200` with
//!   `Retry-After: 0` (the engine's drain), at most MAX calls; prints count and rate;
//! - `seq URL N`: N sequential round trips following `Location` (for the bare server);
//! - `latency TRIGGER_URL N`: N single polls with cursors spread uniformly over the
//!   indexed stamps (each answer a `200`); prints p50/p99 in microseconds;
//! - `cursors TRIGGER_URL N OUT`: writes `wrk` Lua with N paths whose polls answer `200`;
//! - `detect ROOT SUB TRIGGER_URL N INTERVAL_MS [MODE]`: writes N files under `ROOT/SUB`,
//!   INTERVAL_MS apart, while a poller follows the trigger as fast as it can; prints
//!   p50/p99 of the file's completion → first visibility, and whether any file was missed
//!   or repeated. MODE `rename` (the default): each is written as `.tmp` and renamed into
//!   place (timed from the rename); `close`: written and closed in place (timed from the
//!   close);
//! - `batch URL`: like `drain`, for the batch trigger (`/watches/NAME/batch?...`): follows
//!   `Location` while the answer is `200` with `Retry-After: 0`; prints files, calls and
//!   files per second;
//! - `hook WATCH_URL CALLBACK COUNT_URL N`: subscribes CALLBACK at WATCH_URL
//!   (`.../watches/NAME`), waits until the receiver's COUNT_URL (the bare server's
//!   `/count`) has grown by N, unsubscribes, and prints deliveries per second from the
//!   subscribe. With N = 0 it subscribes and unsubscribes at once: the position is kept,
//!   so the files indexed meanwhile are delivered on the next subscribe (the timed one);
//! - `pathbytes DIR`: the sum of the lengths of the relative paths of the files under DIR;
//! - `redbstats FILE`: where the bytes of a redb file go (redb's statistics of the whole
//!   file and of each table, read from a copy of FILE so the original is left as it is).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first().filter(|a| !a.starts_with("--")) else {
        eprintln!("loadclient: a helper of benches/load.sh; nothing to do");
        return;
    };
    let a = |i: usize| args.get(i).cloned().unwrap_or_default();
    let n = |i: usize| a(i).parse::<u64>().unwrap_or(0);
    let result = match cmd.as_str() {
        "gen" => gen(Path::new(&a(1)), n(2), n(3) as usize),
        "ready" => ready(&a(1), n(2), n(3)),
        "indexed" => indexed(&a(1), n(2), n(3)),
        "drain" => drain(&a(1), if n(2) == 0 { u64::MAX } else { n(2) }),
        "seq" => seq(&a(1), n(2)),
        "latency" => latency(&a(1), n(2)),
        "cursors" => cursors(&a(1), n(2), Path::new(&a(3))),
        "detect" => detect(Path::new(&a(1)), &a(2), &a(3), n(4), n(5), &a(6)),
        "batch" => batch(&a(1)),
        "hook" => hook(&a(1), &a(2), &a(3), n(4)),
        "pathbytes" => pathbytes(Path::new(&a(1))),
        "redbstats" => redbstats(Path::new(&a(1))),
        other => Err(format!("unknown sub-command {other}").into()),
    };
    if let Err(e) = result {
        eprintln!("loadclient {cmd}: {e}");
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------- a minimal HTTP client

struct Resp {
    status: u16,
    location: String,
    retry_after: String,
    body: Vec<u8>,
}

struct Client {
    host: String,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

/// Splits `http://host:port/path?q` into (`host:port`, `/path?q`).
fn split_url(url: &str) -> Res<(String, String)> {
    let rest = url.strip_prefix("http://").ok_or("only http:// URLs")?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Ok((host.to_string(), path.to_string()))
}

impl Client {
    fn connect(host: &str) -> Res<Client> {
        let stream = TcpStream::connect(host)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Client {
            host: host.to_string(),
            reader: BufReader::with_capacity(64 * 1024, stream.try_clone()?),
            writer: stream,
        })
    }

    fn get(&mut self, path: &str) -> Res<Resp> {
        self.request("GET", path, None)
    }

    fn request(&mut self, method: &str, path: &str, json: Option<&str>) -> Res<Resp> {
        let req = match json {
            None => format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.host),
            Some(b) => format!(
                "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
                self.host,
                b.len()
            ),
        };
        self.writer.write_all(req.as_bytes())?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {line:?}"))?;
        let mut len = 0usize;
        let mut location = String::new();
        let mut retry_after = String::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                let v = v.trim();
                match k.to_ascii_lowercase().as_str() {
                    "content-length" => len = v.parse()?,
                    "location" => location = v.to_string(),
                    "retry-after" => retry_after = v.to_string(),
                    "transfer-encoding" => return Err("chunked answers are not supported".into()),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; len];
        self.reader.read_exact(&mut body)?;
        Ok(Resp {
            status,
            location,
            retry_after,
            body,
        })
    }
}

fn client_for(url: &str) -> Res<(Client, String)> {
    let (host, path) = split_url(url)?;
    Ok((Client::connect(&host)?, path))
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

// ---------------------------------------------------------------- sub-commands

fn gen(dir: &Path, count: u64, size: usize) -> Res<()> {
    let t0 = Instant::now();
    let per_dir = 100u64;
    let leaves = count.div_ceil(per_dir);
    let threads = 4u64;
    let data: Arc<Vec<u8>> = Arc::new((0..size).map(|i| b'a' + (i % 26) as u8).collect());
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let dir = dir.to_path_buf();
            let data = data.clone();
            std::thread::spawn(move || -> Res<()> {
                let mut leaf = t;
                while leaf < leaves {
                    let d = dir
                        .join(format!("t{:03}", leaf / 100))
                        .join(format!("d{leaf:05}"));
                    std::fs::create_dir_all(&d)?;
                    let first = leaf * per_dir;
                    for i in first..(first + per_dir).min(count) {
                        std::fs::write(d.join(format!("f{i:07}.dat")), data.as_slice())?;
                    }
                    leaf += threads;
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join().map_err(|_| "a generator thread panicked")??;
    }
    println!(
        "{{\"files\":{count},\"size\":{size},\"dirs\":{leaves},\"s\":{:.3}}}",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

fn health(url: &str) -> Option<(u16, serde_json::Value)> {
    let (mut c, path) = client_for(url).ok()?;
    let r = c.get(&path).ok()?;
    Some((
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null),
    ))
}

fn ready(url: &str, t0_ns: u64, timeout_s: u64) -> Res<()> {
    let deadline = Instant::now() + Duration::from_secs(timeout_s);
    while Instant::now() < deadline {
        if let Some((200, _)) = health(url) {
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as u64;
            let s = now.saturating_sub(t0_ns) as f64 / 1e9;
            println!("{{\"ready_s\":{s:.4}}}");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Err("not ready in time".into())
}

fn indexed(url: &str, want: u64, timeout_s: u64) -> Res<()> {
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(timeout_s);
    while Instant::now() < deadline {
        if let Some((200, v)) = health(url) {
            let files = v["filesIndexed"].as_u64().unwrap_or(0);
            let pending = v["pending"].as_u64().unwrap_or(1);
            if files >= want && pending == 0 {
                println!(
                    "{{\"indexed\":{files},\"waited_s\":{:.3}}}",
                    t0.elapsed().as_secs_f64()
                );
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("fewer than {want} files indexed in time").into())
}

fn drain(url: &str, max: u64) -> Res<()> {
    let (mut c, mut path) = client_for(url)?;
    let t0 = Instant::now();
    let mut count = 0u64;
    let mut bytes = 0u64;
    let mut last_status = 0;
    while count < max {
        let r = c.get(&path)?;
        last_status = r.status;
        if r.status != 200 {
            break;
        }
        count += 1;
        bytes += r.body.len() as u64;
        path = split_url(&r.location)?.1;
        if r.retry_after != "0" {
            break;
        }
    }
    let s = t0.elapsed().as_secs_f64();
    println!(
        "{{\"count\":{count},\"s\":{s:.3},\"per_s\":{:.1},\"avg_body\":{},\"last_status\":{last_status}}}",
        count as f64 / s,
        bytes.checked_div(count).unwrap_or(0)
    );
    Ok(())
}

fn seq(url: &str, n: u64) -> Res<()> {
    let (mut c, mut path) = client_for(url)?;
    let t0 = Instant::now();
    for _ in 0..n {
        let r = c.get(&path)?;
        if !r.location.is_empty() {
            path = split_url(&r.location)?.1;
        }
    }
    let s = t0.elapsed().as_secs_f64();
    println!(
        "{{\"count\":{n},\"s\":{s:.3},\"per_s\":{:.1}}}",
        n as f64 / s
    );
    Ok(())
}

fn stamp_text(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000) as u32;
    chrono::DateTime::<chrono::Utc>::from_timestamp(secs, nanos)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
        .unwrap_or_default()
}

/// The range of stamps indexed: (first, last) in ns, found with polls only.
fn stamp_range(c: &mut Client, trigger: &str) -> Res<(i64, i64)> {
    let poll = |c: &mut Client, ns: i64| -> Res<Option<i64>> {
        let r = c.get(&format!("{trigger}?triggerState={}", stamp_text(ns)))?;
        if r.status != 200 {
            return Ok(None);
        }
        let v: serde_json::Value = serde_json::from_slice(&r.body)?;
        let at = v["indexedAt"].as_str().ok_or("no indexedAt")?;
        let t = chrono::DateTime::parse_from_rfc3339(at)?;
        Ok(t.timestamp_nanos_opt())
    };
    let first = poll(c, 0)?.ok_or("nothing indexed")?;
    // The greatest cursor that still gets a 200 is just below the last stamp.
    let (mut lo, mut hi) = (first, i64::MAX / 2);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if poll(c, mid)?.is_some() {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok((first, hi))
}

fn latency(url: &str, n: u64) -> Res<()> {
    let (mut c, trigger) = client_for(url)?;
    let (first, last) = stamp_range(&mut c, &trigger)?;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let paths: Vec<String> = (0..n)
        .map(|_| {
            let ns = first - 1 + (rng.next() % ((last - first) as u64).max(1)) as i64;
            format!("{trigger}?triggerState={}", stamp_text(ns))
        })
        .collect();
    // Warm-up: the connection and the paths of the first few files.
    for p in paths.iter().take(50) {
        c.get(p)?;
    }
    let mut us = Vec::with_capacity(n as usize);
    let mut non200 = 0;
    for p in &paths {
        let t = Instant::now();
        let r = c.get(p)?;
        us.push(t.elapsed().as_secs_f64() * 1e6);
        if r.status != 200 {
            non200 += 1;
        }
    }
    us.sort_by(f64::total_cmp);
    println!(
        "{{\"n\":{n},\"p50_us\":{:.1},\"p99_us\":{:.1},\"mean_us\":{:.1},\"non200\":{non200}}}",
        pct(&us, 0.5),
        pct(&us, 0.99),
        us.iter().sum::<f64>() / us.len().max(1) as f64
    );
    Ok(())
}

fn cursors(url: &str, n: u64, out: &Path) -> Res<()> {
    let (mut c, trigger) = client_for(url)?;
    let (first, last) = stamp_range(&mut c, &trigger)?;
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut lua = String::from("paths = {\n");
    for _ in 0..n {
        let ns = first - 1 + (rng.next() % ((last - first) as u64).max(1)) as i64;
        lua.push_str(&format!(
            "  \"{trigger}?triggerState={}\",\n",
            stamp_text(ns)
        ));
    }
    lua.push_str(
        "}\ni = 0\nrequest = function()\n  i = i % #paths + 1\n  return wrk.format(\"GET\", paths[i])\nend\n",
    );
    std::fs::write(out, lua)?;
    println!("{{\"cursors\":{n},\"first\":{first},\"last\":{last}}}");
    Ok(())
}

fn detect(dir: &Path, prefix: &str, url: &str, n: u64, interval_ms: u64, mode: &str) -> Res<()> {
    let in_place = match mode {
        "" | "rename" => false,
        "close" => true,
        other => return Err(format!("unknown detect mode {other}: rename or close").into()),
    };
    // The directories exist (and are watched) before the first file is timed.
    for s in 0..10 {
        std::fs::create_dir_all(dir.join(format!("{prefix}/s{s}")))?;
    }
    std::thread::sleep(Duration::from_secs(1));
    let (mut c, trigger) = client_for(url)?;
    // The first call hands out a cursor meaning "now".
    let r = c.get(&format!("{trigger}?bench=detect"))?;
    if r.status != 202 {
        return Err(format!("first call answered {}", r.status).into());
    }
    let mut path = split_url(&r.location)?.1;
    let renamed: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let seen_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let writer = {
        let dir: PathBuf = dir.to_path_buf();
        let renamed = renamed.clone();
        let prefix = prefix.to_string();
        std::thread::spawn(move || -> Res<()> {
            let data = vec![b'x'; 1024];
            for i in 0..n {
                let sub = format!("{prefix}/s{}", i % 10);
                let tmp = dir.join(&sub).join(format!("f{i:05}.dat.tmp"));
                let rel = format!("{sub}/f{i:05}.dat");
                if in_place {
                    std::fs::write(dir.join(&rel), &data)?;
                } else {
                    std::fs::write(&tmp, &data)?;
                    std::fs::rename(&tmp, dir.join(&rel))?;
                }
                renamed
                    .lock()
                    .map_err(|_| "poisoned")?
                    .insert(rel, Instant::now());
                std::thread::sleep(Duration::from_millis(interval_ms));
            }
            Ok(())
        })
    };
    let mut repeated = 0u64;
    let deadline = Instant::now() + Duration::from_millis(n * interval_ms + 60_000);
    while (seen_at.lock().map_err(|_| "poisoned")?.len() as u64) < n && Instant::now() < deadline {
        let r = c.get(&path)?;
        if r.status == 200 {
            let now = Instant::now();
            let v: serde_json::Value = serde_json::from_slice(&r.body)?;
            let p = v["path"].as_str().unwrap_or_default().to_string();
            let mut seen = seen_at.lock().map_err(|_| "poisoned")?;
            if seen.insert(p, now).is_some() {
                repeated += 1;
            }
            drop(seen);
            path = split_url(&r.location)?.1;
            if r.retry_after == "0" {
                continue;
            }
        } else if r.status != 202 {
            return Err(format!("poll answered {}", r.status).into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    writer.join().map_err(|_| "the writer panicked")??;
    let renamed = renamed.lock().map_err(|_| "poisoned")?;
    let seen = seen_at.lock().map_err(|_| "poisoned")?;
    let mut ms: Vec<f64> = renamed
        .iter()
        .filter_map(|(p, t)| {
            seen.get(p)
                .map(|s| s.duration_since(*t).as_secs_f64() * 1e3)
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    let missed = renamed.keys().filter(|p| !seen.contains_key(*p)).count();
    let extra = seen.keys().filter(|p| !renamed.contains_key(*p)).count();
    println!(
        "{{\"mode\":\"{}\",\"n\":{n},\"p50_ms\":{:.1},\"p99_ms\":{:.1},\"max_ms\":{:.1},\"missed\":{missed},\"repeated\":{repeated},\"unexpected\":{extra}}}",
        if in_place { "close" } else { "rename" },
        pct(&ms, 0.5),
        pct(&ms, 0.99),
        ms.last().copied().unwrap_or(f64::NAN)
    );
    Ok(())
}

fn batch(url: &str) -> Res<()> {
    let (mut c, mut path) = client_for(url)?;
    let t0 = Instant::now();
    let (mut files, mut calls, mut bytes) = (0u64, 0u64, 0u64);
    loop {
        let r = c.get(&path)?;
        if r.status != 200 {
            break;
        }
        calls += 1;
        bytes += r.body.len() as u64;
        // Checked to be a JSON array of values and counted, without building them: the
        // client's own parsing is not what is measured.
        let v: Vec<serde::de::IgnoredAny> = serde_json::from_slice(&r.body)?;
        files += v.len() as u64;
        path = split_url(&r.location)?.1;
        if r.retry_after != "0" {
            break;
        }
    }
    let s = t0.elapsed().as_secs_f64();
    println!(
        "{{\"count\":{files},\"calls\":{calls},\"s\":{s:.3},\"per_s\":{:.1},\"avg_body\":{}}}",
        files as f64 / s,
        bytes.checked_div(calls).unwrap_or(0)
    );
    Ok(())
}

fn received(c: &mut Client, path: &str) -> Res<u64> {
    let r = c.get(path)?;
    Ok(std::str::from_utf8(&r.body)?.trim().parse()?)
}

fn hook(watch: &str, callback: &str, count_url: &str, n: u64) -> Res<()> {
    let (mut c, base) = client_for(watch)?;
    let (mut rc, count_path) = client_for(count_url)?;
    let before = received(&mut rc, &count_path)?;
    let body = serde_json::json!({ "callbackUrl": callback }).to_string();
    let t0 = Instant::now();
    let r = c.request("POST", &format!("{base}/subscriptions"), Some(&body))?;
    if r.status != 201 && r.status != 200 {
        return Err(format!(
            "subscribe answered {}: {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        )
        .into());
    }
    let v: serde_json::Value = serde_json::from_slice(&r.body)?;
    let id = v["id"].as_str().ok_or("no subscription id")?.to_string();
    let deadline = t0 + Duration::from_secs(600);
    let mut got = 0;
    while n > 0 && got < n && Instant::now() < deadline {
        got = received(&mut rc, &count_path)?.saturating_sub(before);
        if got < n {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let s = t0.elapsed().as_secs_f64();
    let r = c.request("DELETE", &format!("{base}/subscriptions/{id}"), None)?;
    if r.status != 200 {
        return Err(format!("unsubscribe answered {}", r.status).into());
    }
    if got < n {
        return Err(format!("{got} of {n} deliveries in 600 s").into());
    }
    println!(
        "{{\"count\":{got},\"s\":{s:.3},\"per_s\":{:.1}}}",
        got as f64 / s
    );
    Ok(())
}

fn pathbytes(dir: &Path) -> Res<()> {
    fn walk(dir: &Path, prefix: usize, files: &mut u64, bytes: &mut u64) -> Res<()> {
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let p = e.path();
            if e.file_type()?.is_dir() {
                walk(&p, prefix, files, bytes)?;
            } else {
                *files += 1;
                *bytes += (p.as_os_str().len() - prefix) as u64;
            }
        }
        Ok(())
    }
    let (mut files, mut bytes) = (0, 0);
    // The relative path starts after "DIR/".
    let prefix = dir.as_os_str().len() + 1;
    walk(dir, prefix, &mut files, &mut bytes)?;
    println!("{{\"files\":{files},\"path_bytes\":{bytes}}}");
    Ok(())
}

fn redbstats(file: &Path) -> Res<()> {
    use redb::{ReadableDatabase, ReadableTableMetadata, TableHandle};
    let copy = std::env::temp_dir().join(format!("redbstats-{}.redb", std::process::id()));
    std::fs::copy(file, &copy)?;
    let result = (|| -> Res<String> {
        let db = redb::Database::open(&copy)?;
        let txn = db.begin_write()?;
        let s = txn.stats()?;
        let mut out = format!(
            "{{\"file_bytes\":{},\"page_size\":{},\"allocated_pages\":{},\"leaf_pages\":{},\"branch_pages\":{},\"stored_leaf_bytes\":{},\"metadata_bytes\":{},\"fragmented_bytes\":{},\"tables\":{{",
            std::fs::metadata(file)?.len(),
            s.page_size(),
            s.allocated_pages(),
            s.leaf_pages(),
            s.branch_pages(),
            s.stored_bytes(),
            s.metadata_bytes(),
            s.fragmented_bytes()
        );
        txn.abort()?;
        let read = db.begin_read()?;
        let mut first = true;
        for h in read.list_tables()? {
            let t = read.open_untyped_table(h.clone())?;
            let ts = t.stats()?;
            out.push_str(&format!(
                "{}\"{}\":{{\"len\":{},\"height\":{},\"leaf_pages\":{},\"branch_pages\":{},\"stored_leaf_bytes\":{},\"metadata_bytes\":{},\"fragmented_bytes\":{}}}",
                if first { "" } else { "," },
                h.name(),
                t.len()?,
                ts.tree_height(),
                ts.leaf_pages(),
                ts.branch_pages(),
                ts.stored_bytes(),
                ts.metadata_bytes(),
                ts.fragmented_bytes()
            ));
            first = false;
        }
        out.push_str("}}");
        Ok(out)
    })();
    let _ = std::fs::remove_file(&copy);
    println!("{}", result?);
    Ok(())
}
