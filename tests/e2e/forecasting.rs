//! Time series without traps: `predict --series FILE` reads a CSV as
//! `train --data` does (a row per time step), and `--forecast N` feeds each
//! prediction back as the next step, every step a recorded, audited
//! prediction.

use crate::util::*;

/// A one-column series with a header: a slow sine.
fn sine_series(env: &Env, name: &str, rows: usize) -> std::path::PathBuf {
    let mut text = String::from("value\n");
    for t in 0..rows {
        text.push_str(&format!("{:.6}\n", (t as f64 * 0.2).sin()));
    }
    let path = env.path(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn forecaster(env: &Env) -> std::path::PathBuf {
    let series = sine_series(env, "sine.csv", 80);
    env.ok(&[
        "train",
        "--data",
        s(&series),
        "--seq-len",
        "8",
        "--epochs",
        "1",
        "--batch-size",
        "1",
        "--no-shuffle",
        "--name",
        "sine",
    ]);
    sine_series(env, "recent.csv", 12)
}

fn values(v: &serde_json::Value) -> Vec<u32> {
    let mut out = Vec::new();
    match v {
        serde_json::Value::Array(items) => items.iter().for_each(|i| out.extend(values(i))),
        other => out.push((other.as_f64().unwrap() as f32).to_bits()),
    }
    out
}

#[test]
fn a_forecast_is_the_chain_of_one_step_predictions_it_records() {
    let env = Env::new();
    let recent = forecaster(&env);
    let forecast = |extra: &[&str]| {
        let base = [
            "predict",
            "--model",
            "sine",
            "--series",
            s(&recent),
            "--forecast",
            "4",
        ];
        env.json(&[&base[..], extra].concat())
    };
    env.ok(&["reset", "--model", "sine"]);
    let ahead = forecast(&[]);
    assert_eq!(ahead["forecast"].as_array().unwrap().len(), 4);
    assert_eq!(ahead["forecast_events"].as_array().unwrap().len(), 4);
    let head = env.json(&["show", "HEAD", "--model", "sine"]);
    assert_eq!(head["state"], ahead["forecast_state_after"]);

    // The same by hand: the series, then each output fed back as one step.
    env.ok(&["reset", "--model", "sine"]);
    let first = env.json(&["predict", "--model", "sine", "--series", s(&recent)]);
    assert_eq!(values(&first["outputs"]), values(&ahead["outputs"]));
    let mut next = first["outputs"][0][0].as_f64().unwrap();
    let mut by_hand = Vec::new();
    for k in 0..4 {
        let step = env.path(&format!("step{k}.json"));
        std::fs::write(&step, format!("[[[{next:?}]]]")).unwrap();
        let out = env.json(&["predict", "--model", "sine", "--input", s(&step)]);
        next = out["outputs"][0][0].as_f64().unwrap();
        by_hand.extend(values(&out["outputs"]));
    }
    assert_eq!(
        by_hand,
        values(&ahead["forecast"]),
        "the forecast is not the chain of its steps"
    );

    // Without advancing, the stream stays and the numbers are the same.
    env.ok(&["reset", "--model", "sine"]);
    let before = env.json(&["show", "HEAD", "--model", "sine"])["state"].clone();
    let still = forecast(&["--no-advance"]);
    assert_eq!(values(&still["forecast"]), values(&ahead["forecast"]));
    assert_eq!(
        env.json(&["show", "HEAD", "--model", "sine"])["state"],
        before
    );
    // Every step audits bit for bit.
    let audit = env.json(&["audit", "--model", "sine"]);
    assert_eq!(audit["ok"], true, "{audit}");
}

#[test]
fn what_cannot_be_forecast_is_refused_and_records_nothing() {
    let env = Env::new();
    let recent = forecaster(&env);
    env.ok(&["demo"]);
    // A softmax head's outputs are not its next inputs.
    let two = env.path("x.csv");
    std::fs::write(&two, "0.1\n0.2\n0.3\n").unwrap();
    env.fails(
        &[
            "predict",
            "--model",
            "demo",
            "--series",
            s(&two),
            "--forecast",
            "2",
        ],
        1,
        "model 'demo' cannot forecast: its softmax head gives 27 output(s)",
    );
    // The series must have the model's columns.
    let wide = env.path("wide.csv");
    std::fs::write(&wide, "1,2\n3,4\n").unwrap();
    env.fails(
        &["predict", "--model", "sine", "--series", s(&wide)],
        1,
        "series '",
    );
    // Usage: one input, a forecast needs a series and writes no -o file.
    let out = env.path("o.safetensors");
    let (recent, out) = (s(&recent), s(&out));
    let usage: [(&[&str], &str); 6] = [
        (
            &["--forecast", "2", "--input", recent],
            "cannot be used with",
        ),
        (&["--forecast", "2"], "--series"),
        (
            &["--series", recent, "--input", recent],
            "cannot be used with",
        ),
        (
            &["--series", recent, "--forecast", "2", "-o", out],
            "cannot be used with",
        ),
        (&["--series", recent, "--forecast", "0"], "0"),
        (&["--series", recent, "--forecast", "x"], "x"),
    ];
    for (extra, fragment) in usage {
        let args = [&["predict", "--model", "sine"][..], extra].concat();
        env.fails(&args, 2, fragment);
    }
}
