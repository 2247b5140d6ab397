//! The `statectl` binary: parse, pin the thread count, run, report.

use clap::Parser;

fn main() {
    let cli = statectl::cli::Cli::parse();
    // candle 0.11 re-reads /proc/cpuinfo on every matmul unless this is set,
    // and a fixed count makes the recorded platform say what ran.
    let threads = cli
        .threads
        .map(|t| t.to_string())
        .or_else(|| {
            std::env::var("RAYON_NUM_THREADS")
                .ok()
                .filter(|t| t.parse::<u16>().is_ok_and(|n| n > 0))
        })
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .to_string()
        });
    std::env::set_var("RAYON_NUM_THREADS", threads);
    let code = match statectl::commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            if err.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                0
            } else {
                eprintln!("error: {err:#}");
                1
            }
        }
    };
    std::process::exit(code);
}
