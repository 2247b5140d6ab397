//! The `statectl` binary: parse, pin the thread count, run, report.

use clap::{CommandFactory, Parser};

fn main() {
    // A shell asking for completions (`COMPLETE=bash statectl -- ...`, set
    // up by `statectl completions SHELL`) is answered here, and exits.
    clap_complete::CompleteEnv::with_factory(|| {
        statectl::completion::with_store_completers(statectl::cli::Cli::command())
    })
    .complete();
    // With --json, errors are JSON on stdout too, so scripts need not parse
    // prose; the flag is looked for before parsing, since a usage error is
    // one of the errors to report that way.
    let json = std::env::args().skip(1).any(|a| a == "--json");
    let cli = match statectl::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if json && e.use_stderr() => {
            report_json(&statectl::cli::usage_error_line(&e), "usage", 2);
            eprint!("{e}");
            std::process::exit(2);
        }
        Err(e) => e.exit(),
    };
    // candle 0.11 re-reads /proc/cpuinfo on every matmul unless this is set,
    // and a fixed count makes the recorded platform say what ran.
    let threads = cli
        .threads
        .map(|t| t.to_string())
        .or_else(|| {
            std::env::var("RAYON_NUM_THREADS")
                .ok()
                .filter(|t| t.parse::<u16>().is_ok_and(|n| (1..=256).contains(&n)))
        })
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .to_string()
        });
    std::env::set_var("RAYON_NUM_THREADS", threads);
    statectl::kernels::keep_freed_memory();
    let code = match statectl::commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            if err.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                0
            } else {
                if json {
                    report_json(&format!("{err:#}"), statectl::ops::error_kind(&err), 1);
                }
                eprintln!("error: {err:#}");
                1
            }
        }
    };
    std::process::exit(code);
}

/// An error as one JSON object on stdout: `{"error": {message, kind, exit_code}}`.
fn report_json(message: &str, kind: &str, exit_code: i32) {
    println!(
        "{}",
        serde_json::json!({"error": {"message": message, "kind": kind, "exit_code": exit_code}})
    );
}
