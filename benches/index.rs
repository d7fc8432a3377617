//! Criterion benchmarks of the index at 1,000, 100,000 and 1,000,000 entries:
//! - `insert`: 1,000 new file versions queued to the writer and committed (one batch,
//!   the index kept at its size by removing them again outside the timing);
//! - `restamp`: a new version of 1,000 indexed paths (old offer removed, new stamp);
//! - `next_after`: one poll's index work: a snapshot and "the oldest entry after a
//!   random cursor" (the cursor spread uniformly over the indexed stamps);
//! - `is_known`: the scan's "is this exact version indexed" lookup;
//! - `stamp_clock`: handing out one stamp.
//!
//! Run with `cargo bench --bench index` (about a minute; each index is built once, in a
//! temporary directory, before its benchmarks).

// A benchmark: failing to set up is a panic with a message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use filetrigger::index::{FileVersion, Index, WriteOp, WriterHandle};
use filetrigger::stamp::{Stamp, SystemClock};

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

const SIZES: [u64; 3] = [1_000, 100_000, 1_000_000];
const BATCH: u64 = 1_000;

fn rel(i: u64) -> Vec<u8> {
    format!("t{:03}/d{:05}/f{i:07}.dat", i / 10_000, i / 100).into_bytes()
}

fn version(i: u64, size: u64) -> FileVersion {
    FileVersion {
        rel: rel(i),
        size,
        mtime: Stamp(1_700_000_000_000_000_000 + i as i64),
        ino: 1_000_000 + i,
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    index: Index,
    writer: WriterHandle,
    rt: tokio::runtime::Runtime,
    n: u64,
}

impl Fixture {
    fn new(n: u64) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = Index::open(dir.path(), Arc::new(SystemClock)).expect("open");
        let (writer, _join) = index.start_writer(8192).expect("writer");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let t0 = Instant::now();
        rt.block_on(async {
            for i in 0..n {
                writer
                    .send(WriteOp::Upsert(version(i, 1)))
                    .await
                    .expect("send");
            }
            writer.reserve(Stamp::MIN).await.expect("commit");
        });
        eprintln!("index of {n} entries built in {:.1?}", t0.elapsed());
        Fixture {
            _dir: dir,
            index,
            writer,
            rt,
            n,
        }
    }

    /// Queues `ops` and waits until they are committed.
    fn apply(&self, ops: impl Iterator<Item = WriteOp>) {
        self.rt.block_on(async {
            for op in ops {
                self.writer.send(op).await.expect("send");
            }
            self.writer.reserve(Stamp::MIN).await.expect("commit");
        });
    }

    /// The first and last stamps indexed.
    fn stamp_range(&self) -> (i64, i64) {
        let snap = self.index.reader().snapshot().expect("snapshot");
        let first = snap
            .first_after(Stamp::MIN, 1, |_| Some(()))
            .expect("read")
            .expect("not empty")
            .stamp
            .0;
        let last = self.index.stats().last_stamp().0;
        (first, last)
    }
}

fn bench_index(c: &mut Criterion) {
    let mut g = c.benchmark_group("index");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let clock = filetrigger::stamp::StampClock::new(Arc::new(SystemClock), Stamp::MIN, Stamp::MIN);
    g.throughput(Throughput::Elements(1));
    g.bench_function("stamp_clock", |b| b.iter(|| black_box(clock.next_stamp())));
    for n in SIZES {
        let f = Fixture::new(n);
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let (first, last) = f.stamp_range();
        let reader = f.index.reader();

        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::new("next_after", n), &n, |b, _| {
            b.iter(|| {
                let cursor = Stamp(first - 1 + (rng.next() % (last - first) as u64) as i64);
                let snap = reader.snapshot().expect("snapshot");
                black_box(
                    snap.first_after(cursor, 10, |v| Some(v.size))
                        .expect("read")
                        .expect("found"),
                )
            })
        });
        g.bench_with_input(BenchmarkId::new("is_known", n), &n, |b, _| {
            let snap = reader.snapshot().expect("snapshot");
            b.iter(|| {
                let v = version(rng.next() % f.n, 1);
                assert!(snap.is_known(&v).expect("read"));
            })
        });

        g.throughput(Throughput::Elements(BATCH));
        let mut next_new = f.n;
        g.bench_with_input(BenchmarkId::new("insert", n), &n, |b, _| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let from = next_new;
                    next_new += BATCH;
                    let t = Instant::now();
                    f.apply((from..next_new).map(|i| WriteOp::Upsert(version(i, 1))));
                    spent += t.elapsed();
                    f.apply((from..next_new).map(|i| WriteOp::Remove(rel(i), None)));
                }
                spent
            })
        });
        let mut size = 2;
        g.bench_with_input(BenchmarkId::new("restamp", n), &n, |b, _| {
            b.iter(|| {
                size += 1;
                let start = rng.next() % f.n.saturating_sub(BATCH).max(1);
                f.apply(
                    (start..(start + BATCH).min(f.n)).map(|i| WriteOp::Upsert(version(i, size))),
                );
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_index);
criterion_main!(benches);
