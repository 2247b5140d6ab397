//! A learner's reads from a shared store: 100,000 one-slot LSTM-512 states
//! (4 KiB, each tagged; `STATECTL_BENCH_STATES` to change) pushed into a
//! shared store, then 200 reads of 64 random tags each, straight from the
//! server (`SharedStore::load_states`, every slot re-hashed). Beside it, in
//! the same run, the same reads from the embedded store they were pushed
//! from, and the same reads again through a read cache the first pass
//! filled. Prints p50 and p95 per read of 64 states, and the platform.
//!
//! Needs a PostgreSQL superuser URL in `STATECTL_TEST_POSTGRES` (it makes a
//! database of its own): `bash benches/shared_store.sh` starts a throwaway
//! server and runs this after its own figures.

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use statectl::ops::push::{push, PushRequest};
use statectl::shared::SharedStore;
use statectl::state::StateValue;
use statectl::store::Store;

const READS: usize = 200;
const PER_READ: usize = 64;

#[path = "common/record.rs"]
mod record;

fn main() {
    let Ok(admin) = std::env::var("STATECTL_TEST_POSTGRES") else {
        println!("skipped: set STATECTL_TEST_POSTGRES to a PostgreSQL superuser URL (benches/shared_store.sh starts a server)");
        return;
    };
    let states: usize = std::env::var("STATECTL_BENCH_STATES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let database = format!("bench_reads_{}", std::process::id());
    let mut client = postgres::Client::connect(&admin, postgres::NoTls).expect("server reachable");
    client
        .batch_execute(&format!("CREATE DATABASE {database}"))
        .expect("create database");
    let url = format!(
        "{}/{database}",
        admin.rsplit_once('/').expect("URL has a database").0
    );
    SharedStore::init(&url).expect("init");

    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("store")).expect("store");
    let started = Instant::now();
    fill(&store, states);
    let filled = started.elapsed();
    let started = Instant::now();
    let report = push(
        &store,
        &PushRequest {
            url: url.clone(),
            ..Default::default()
        },
    )
    .expect("push");
    let pushed = started.elapsed();

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let batches: Vec<Vec<String>> = (0..READS)
        .map(|_| {
            (0..PER_READ)
                .map(|_| format!("buf/{}", rng.random_range(0..states)))
                .collect()
        })
        .collect();
    let mut shared = SharedStore::open(&url).expect("open shared");
    let remote = timed(&batches, |refs| {
        shared.load_states(refs).expect("read").len()
    });
    // The same reads again through a read cache that the first pass
    // filled: only the tags are asked of the server.
    let mut cached = SharedStore::open(&url).expect("open shared");
    cached.set_read_cache(256 << 20);
    timed(&batches, |refs| {
        cached.load_states(refs).expect("read").len()
    });
    let warm = timed(&batches, |refs| {
        cached.load_states(refs).expect("read").len()
    });
    let hits = cached.read_cache_stats().expect("cache").slot_hits;
    let local = timed(&batches, |refs| {
        refs.iter()
            .map(|r| {
                let tag = store.tag(r).expect("tag").expect("tagged");
                store.load_state(&tag.state).expect("state").batch()
            })
            .sum()
    });
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cpu: {cpu}; platform: {}", statectl::ops::platform());
    println!("{states} one-slot LSTM-512 states (4 KiB) with a tag each: stored in {:.1} s, pushed in {:.1} s ({} slot bytes)", filled.as_secs_f64(), pushed.as_secs_f64(), report.slot_bytes_sent);
    println!("read of {PER_READ} random tags, {READS} times     p50        p95");
    println!(
        "  shared store (PostgreSQL)       {}",
        percentiles(remote.clone())
    );
    println!(
        "  shared, read cache warm         {}   ({hits} slots from the cache)",
        percentiles(warm.clone())
    );
    println!(
        "  embedded store (reference)      {}",
        percentiles(local.clone())
    );
    record_medians(states, median_ms(remote), median_ms(warm), median_ms(local));
}

/// Records the shared store's median reads, cold and through a warm cache,
/// each beside the embedded store's.
fn record_medians(states: usize, remote_p50: f64, warm_p50: f64, local_p50: f64) {
    let workloads = [
        (format!("a learner's read of {PER_READ} random tagged LSTM-512 states from a shared store of {states} (PostgreSQL on the same machine), median"), remote_p50),
        (format!("the same reads again with a read cache the first pass filled (shared store of {states}), median"), warm_p50),
    ];
    for (workload, figure) in &workloads {
        record::record(&record::Figure {
            workload,
            figure: *figure,
            unit: "ms",
            reference: "the same reads from the embedded store",
            reference_figure: local_p50,
            ratio: figure / local_p50,
            ratio_means: "x the embedded store's time",
            rerun: "bash benches/shared_store.sh",
            headline: false,
        });
    }
}

fn median_ms(mut times: Vec<Duration>) -> f64 {
    times.sort();
    times[times.len() / 2].as_secs_f64() * 1e3
}

/// One transaction of `states` tagged one-slot states, values distinct.
fn fill(store: &Store, states: usize) {
    let layout: statectl::state::Layout = "lstm:512".parse().expect("layout");
    store
        .write(|s| -> Result<(), statectl::store::StoreError> {
            for i in 0..states {
                let slot: Vec<f32> = (0..1024)
                    .map(|j| ((i * 1024 + j) % 9973) as f32 * 1e-4 + i as f32)
                    .collect();
                let value = StateValue::new(layout.clone(), vec![slot]).expect("state");
                let id = s.put_state(&value)?;
                s.set_tag(&format!("buf/{i}"), &id)?;
            }
            Ok(())
        })
        .expect("fill");
}

fn timed(batches: &[Vec<String>], mut read: impl FnMut(&[String]) -> usize) -> Vec<Duration> {
    batches
        .iter()
        .map(|refs| {
            let started = Instant::now();
            assert_eq!(read(refs), refs.len());
            started.elapsed()
        })
        .collect()
}

fn percentiles(mut times: Vec<Duration>) -> String {
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    format!("{:7.2} ms  {:7.2} ms", at(0.5), at(0.95))
}
