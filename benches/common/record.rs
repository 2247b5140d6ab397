//! Records a benchmark figure through `benches/record.py` (one JSON line in
//! `benches/results.jsonl`, beside the CPU it ran on), so the Rust benches
//! and the shell ones write the same rows.

use std::path::Path;

/// One figure and its same-run reference.
pub struct Figure<'a> {
    pub workload: &'a str,
    pub figure: f64,
    pub unit: &'a str,
    /// What ran beside it, its figure (in `unit`), and how to read the ratio.
    pub reference: &'a str,
    pub reference_figure: f64,
    pub ratio: f64,
    pub ratio_means: &'a str,
    pub rerun: &'a str,
    pub headline: bool,
}

/// Appends `figure` to the results file; says so and carries on when
/// `python3` is missing (the printed figures stand either way).
pub fn record(figure: &Figure) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/record.py");
    let mut args = vec![
        script.display().to_string(),
        "--workload".into(),
        figure.workload.into(),
        "--figure".into(),
        figure.figure.to_string(),
        "--unit".into(),
        figure.unit.into(),
        "--reference".into(),
        figure.reference.into(),
        "--reference-figure".into(),
        figure.reference_figure.to_string(),
        "--ratio".into(),
        figure.ratio.to_string(),
        "--ratio-means".into(),
        figure.ratio_means.into(),
        "--rerun".into(),
        figure.rerun.into(),
    ];
    if figure.headline {
        args.push("--headline".into());
    }
    match std::process::Command::new("python3").args(&args).status() {
        Ok(status) if status.success() => {}
        Ok(status) => eprintln!("benches/record.py failed ({status}): figure not recorded"),
        Err(e) => eprintln!("python3 not found ({e}): figure not recorded"),
    }
}
