//! The machine a computation ran on, recorded with predict and burn-in
//! events so a replay elsewhere reads as such.

/// Platform facts: statectl version, architecture, CPU features, threads.
pub fn platform() -> serde_json::Value {
    let mut features: Vec<&str> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! detect {
            ($($f:tt),*) => { $( if std::arch::is_x86_feature_detected!($f) { features.push($f); } )* };
        }
        detect!("sse4.1", "sse4.2", "avx", "avx2", "fma", "f16c", "avx512f");
    }
    serde_json::json!({
        "statectl": env!("CARGO_PKG_VERSION"),
        "arch": std::env::consts::ARCH,
        "os": std::env::consts::OS,
        "cpu_features": features,
        "threads": std::env::var("RAYON_NUM_THREADS").ok().and_then(|t| t.parse::<u64>().ok()),
    })
}
