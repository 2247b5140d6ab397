//! GRU cells end to end: Keras conformance (fixtures from a real Keras run),
//! training against a float64 re-implementation written here, the demo's
//! five cases, audits, exports, and the errors a GRU can meet.

// The float64 reference below indexes like the equations it mirrors.
#![allow(
    clippy::needless_range_loop,
    clippy::useless_vec,
    clippy::type_complexity
)]

use statectl::tensors::{transpose, Tensor, TensorFile};

use crate::util::*;

fn gru_fixture(name: &str) -> std::path::PathBuf {
    fixture(&format!("keras_gru/{name}"))
}

fn gru_file(name: &str) -> TensorFile {
    TensorFile::decode(&std::fs::read(gru_fixture(name)).unwrap()).unwrap()
}

fn import_gru(env: &Env, layout: &str, name: &str) -> serde_json::Value {
    let file = gru_fixture(&format!("gru_weights.{layout}_layout.safetensors"));
    env.json(&[
        "model",
        "import",
        s(&file),
        "--head",
        "softmax",
        "--batch-size",
        "4",
        "--name",
        name,
    ])
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn gru_predictions_match_keras_from_both_weight_layouts() {
    let env = Env::new();
    let keras = import_gru(&env, "keras", "gk");
    let torch = import_gru(&env, "torch", "gt");
    assert_eq!(keras["weights"], torch["weights"]);
    assert_eq!(keras["layout"], "gru:12");
    let states = gru_file("gru_states.safetensors");
    let expected = gru_file("gru_expected.safetensors");
    let start = env.write_tensors(
        "start.safetensors",
        &[("l0.h", states.tensors["start.h"].clone())],
    );
    env.ok(&["import", s(&start), "--tag", "start"]);
    let x = gru_fixture("gru_x.safetensors");
    let mut outputs = Vec::new();
    for model in ["gk", "gt"] {
        env.ok(&["restore", "start", "--model", model]);
        let mut rows = Vec::new();
        for k in 1..=2 {
            let out = env.json(&["predict", "--model", model, "--input", s(&x)]);
            let probs: Vec<f32> = matrix(&out["outputs"]).concat();
            let want = &expected.tensors[&format!("predict{k}.probs")].data;
            assert!(
                max_abs_diff(&probs, want) < 1e-6,
                "{model} predict{k}: {}",
                max_abs_diff(&probs, want)
            );
            let after = env.path("after.safetensors");
            env.ok(&["export", "HEAD", "--model", model, "-o", s(&after)]);
            let h = &TensorFile::decode(&std::fs::read(&after).unwrap())
                .unwrap()
                .tensors["l0.h"];
            let want = &states.tensors[&format!("after_predict{k}.h")].data;
            assert!(
                max_abs_diff(&h.data, want) < 1e-6,
                "{model} after_predict{k}.h"
            );
            rows.push(bits(&matrix(&out["outputs"])));
        }
        env.ok(&["reset", "--model", model]);
        let zeros = env.json(&["predict", "--model", model, "--input", s(&x)]);
        let probs: Vec<f32> = matrix(&zeros["outputs"]).concat();
        assert!(max_abs_diff(&probs, &expected.tensors["zeros.probs"].data) < 1e-6);
        outputs.push(rows);
    }
    assert_eq!(
        outputs[0], outputs[1],
        "the two layouts predict different bits"
    );
    // Exported under Keras's names, the weights come back with the same id.
    let exported = env.path("gk.keras.safetensors");
    env.ok(&[
        "model",
        "export",
        "gk",
        "--layout",
        "keras",
        "-o",
        s(&exported),
    ]);
    let back = env.json(&["model", "import", s(&exported), "--name", "back"]);
    assert_eq!(back["weights"], keras["weights"]);
    assert_eq!(env.json(&["audit"])["ok"], true);
}

#[test]
fn the_demo_holds_for_a_gru_and_audits() {
    let env = Env::new();
    let demo = env.json(&["demo", "--cell", "gru"]);
    assert_eq!(demo["passed"], true, "{demo:#}");
    assert_eq!(env.json(&["show", "trained"])["layout"], "gru:16");
    let audit = env.json(&["audit", "--train", "demo"]);
    assert_eq!(audit["ok"], true, "{audit}");
    assert_eq!(audit["reproduced"], 5);
    assert_eq!(audit["training"][0]["status"], "reproduced");
    // A GRU state file holds h only, and its id is the numpy recipe's.
    let exported = env.path("trained.safetensors");
    env.ok(&["export", "trained", "-o", s(&exported)]);
    let file = TensorFile::decode(&std::fs::read(&exported).unwrap()).unwrap();
    assert_eq!(file.names(), ["l0.h"]);
    // Broadcast and re-batch work on GRU states as on LSTM ones.
    env.ok(&["restore", "trained", "--slots", "0,3"]);
    assert_eq!(env.json(&["show"])["batch"], 2);
    env.ok(&["restore", "trained", "--slot", "1", "--batch-size", "9"]);
    assert_eq!(env.json(&["show"])["batch"], 9);
}

#[test]
fn gru_stacks_layers_of_different_widths() {
    let env = Env::new();
    let out = env.json(&[
        "train", "--cell", "gru", "--units", "20,8", "--epochs", "2", "--name", "stack",
    ]);
    assert_eq!(out["layout"], "gru:20,8");
    let input =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/demo_input.csv");
    env.ok(&["predict", "--input", s(&input)]);
    let x =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/prefix.safetensors");
    env.ok(&["restore", "HEAD", "--slot", "0", "--batch-size", "1"]);
    env.ok(&["burn-in", "HEAD", "--input", s(&x), "--tag", "burned"]);
    let d = env.json(&["diff", "burned", "zeros", "--input", s(&x)]);
    assert!(d["outputs"]["overall"].as_f64().unwrap() > 0.0);
    assert_eq!(env.json(&["audit", "--train", "stack"])["ok"], true);
}

#[test]
fn gru_mistakes_are_refused_and_change_nothing() {
    let env = Env::new();
    import_gru(&env, "torch", "g");
    env.import_reference("keras", "lstm");
    // Weights: a missing recurrent bias, a Keras GRU bias of reset_after=False, wrong shapes.
    let torch = gru_file("gru_weights.torch_layout.safetensors");
    let mut no_bias = torch.clone();
    no_bias.tensors.remove("gru.bias_hh_l0");
    let path = env.path("nobias.safetensors");
    std::fs::write(&path, no_bias.encode()).unwrap();
    env.fails(
        &[
            "model",
            "import",
            s(&path),
            "--head",
            "softmax",
            "--name",
            "x",
        ],
        1,
        "a GRU keeps its recurrent bias",
    );
    let keras = gru_file("gru_weights.keras_layout.safetensors");
    let mut one_bias = keras.clone();
    let b = one_bias.tensors["gru/bias"].data[..36].to_vec();
    one_bias.insert("gru/bias", Tensor::new(vec![36], b));
    let path = env.path("onebias.safetensors");
    std::fs::write(&path, one_bias.encode()).unwrap();
    env.fails(
        &[
            "model",
            "import",
            s(&path),
            "--head",
            "softmax",
            "--name",
            "x",
        ],
        1,
        "reset_after=False",
    );
    let mut bad = torch.clone();
    bad.insert(
        "gru.weight_hh_l0",
        Tensor::new(vec![36, 11], vec![0.1; 396]),
    );
    let path = env.path("bad.safetensors");
    std::fs::write(&path, bad.encode()).unwrap();
    env.fails(
        &[
            "model",
            "import",
            s(&path),
            "--head",
            "softmax",
            "--name",
            "x",
        ],
        1,
        "(LSTM) or",
    );
    // States: an LSTM state (with c) into a GRU stream, and the reverse.
    let lstm_state = env.reference_state_file("case1");
    env.ok(&["import", s(&lstm_state), "--tag", "lstm-state"]);
    env.fails(
        &["restore", "lstm-state", "--model", "g"],
        1,
        "has layout lstm:16 but model 'g' needs gru:12",
    );
    let with_c = env.write_tensors(
        "with_c.safetensors",
        &[
            ("l0.h", Tensor::new(vec![4, 12], vec![0.1; 48])),
            ("l0.c", Tensor::new(vec![4, 12], vec![0.1; 48])),
        ],
    );
    env.ok(&["import", s(&with_c), "--tag", "lstm12"]);
    env.fails(&["restore", "lstm12", "--model", "g"], 1, "needs gru:12");
    let h_only = env.write_tensors(
        "h.safetensors",
        &[("l0.h", Tensor::new(vec![6, 16], vec![0.1; 96]))],
    );
    env.ok(&["import", s(&h_only), "--tag", "gru16"]);
    env.fails(
        &["restore", "gru16", "--model", "lstm"],
        1,
        "has layout gru:16 but model 'lstm' needs lstm:16",
    );
    let x = gru_fixture("gru_x.safetensors");
    env.fails(
        &[
            "predict",
            "--model",
            "g",
            "--input",
            s(&x),
            "--from",
            "lstm12",
        ],
        1,
        "needs gru:12",
    );
}

// ---- float64 reference: one GRU layer, softmax head, Keras's Adam ----

const IN: usize = 2;
const H: usize = 3;
const OUT: usize = 4;
const STEPS: usize = 3;
const N: usize = 4;
const BATCH: usize = 2;

/// Torch layout: rows r, z, n.
#[derive(Clone)]
struct Gru {
    w: Vec<f64>,  // [3H, IN]
    u: Vec<f64>,  // [3H, H]
    bi: Vec<f64>, // [3H]
    bh: Vec<f64>, // [3H]
    v: Vec<f64>,  // [OUT, H]
    c: Vec<f64>,  // [OUT]
}

impl Gru {
    fn zeros() -> Gru {
        Gru {
            w: vec![0.0; 3 * H * IN],
            u: vec![0.0; 3 * H * H],
            bi: vec![0.0; 3 * H],
            bh: vec![0.0; 3 * H],
            v: vec![0.0; OUT * H],
            c: vec![0.0; OUT],
        }
    }

    fn all(&mut self) -> [&mut Vec<f64>; 6] {
        [
            &mut self.w,
            &mut self.u,
            &mut self.bi,
            &mut self.bh,
            &mut self.v,
            &mut self.c,
        ]
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// One batch: forward from each sample's `h`, cross-entropy on the last
/// step, backpropagation through time within the batch.
fn gru_batch_grads(p: &Gru, xs: &[Vec<f64>], ys: &[usize], states: &mut [Vec<f64>]) -> Gru {
    let mut g = Gru::zeros();
    let bsz = xs.len() as f64;
    for (s, (x, &y)) in xs.iter().zip(ys).enumerate() {
        let mut h = states[s].clone();
        // Per step: x, h_prev, r, z, n, the recurrent n pre-activation.
        let mut cache = Vec::new();
        for t in 0..STEPS {
            let xt = x[t * IN..(t + 1) * IN].to_vec();
            let gi: Vec<f64> = (0..3 * H)
                .map(|r| (0..IN).map(|k| p.w[r * IN + k] * xt[k]).sum::<f64>() + p.bi[r])
                .collect();
            let gh: Vec<f64> = (0..3 * H)
                .map(|r| (0..H).map(|k| p.u[r * H + k] * h[k]).sum::<f64>() + p.bh[r])
                .collect();
            let r: Vec<f64> = (0..H).map(|j| sigmoid(gi[j] + gh[j])).collect();
            let z: Vec<f64> = (0..H).map(|j| sigmoid(gi[H + j] + gh[H + j])).collect();
            let n: Vec<f64> = (0..H)
                .map(|j| (gi[2 * H + j] + r[j] * gh[2 * H + j]).tanh())
                .collect();
            let h_new: Vec<f64> = (0..H).map(|j| (1.0 - z[j]) * n[j] + z[j] * h[j]).collect();
            let ghn: Vec<f64> = gh[2 * H..].to_vec();
            cache.push((xt, h.clone(), r, z, n, ghn));
            h = h_new;
        }
        let logits: Vec<f64> = (0..OUT)
            .map(|o| (0..H).map(|k| p.v[o * H + k] * h[k]).sum::<f64>() + p.c[o])
            .collect();
        let max = logits.iter().cloned().fold(f64::MIN, f64::max);
        let sum: f64 = logits.iter().map(|l| (l - max).exp()).sum();
        let dlogits: Vec<f64> = (0..OUT)
            .map(|o| ((logits[o] - max).exp() / sum - if o == y { 1.0 } else { 0.0 }) / bsz)
            .collect();
        let mut dh = vec![0.0; H];
        for o in 0..OUT {
            g.c[o] += dlogits[o];
            for k in 0..H {
                g.v[o * H + k] += dlogits[o] * h[k];
                dh[k] += p.v[o * H + k] * dlogits[o];
            }
        }
        for (xt, h_prev, r, z, n, ghn) in cache.iter().rev() {
            let mut dgi = vec![0.0; 3 * H];
            let mut dgh = vec![0.0; 3 * H];
            let mut dh_prev = vec![0.0; H];
            for j in 0..H {
                let dn_pre = dh[j] * (1.0 - z[j]) * (1.0 - n[j] * n[j]);
                let dz_pre = dh[j] * (h_prev[j] - n[j]) * z[j] * (1.0 - z[j]);
                let dr_pre = dn_pre * ghn[j] * r[j] * (1.0 - r[j]);
                dgi[j] = dr_pre;
                dgh[j] = dr_pre;
                dgi[H + j] = dz_pre;
                dgh[H + j] = dz_pre;
                dgi[2 * H + j] = dn_pre;
                dgh[2 * H + j] = dn_pre * r[j];
                dh_prev[j] = dh[j] * z[j];
            }
            for row in 0..3 * H {
                g.bi[row] += dgi[row];
                g.bh[row] += dgh[row];
                for k in 0..IN {
                    g.w[row * IN + k] += dgi[row] * xt[k];
                }
                for k in 0..H {
                    g.u[row * H + k] += dgh[row] * h_prev[k];
                    dh_prev[k] += p.u[row * H + k] * dgh[row];
                }
            }
            dh = dh_prev;
        }
        states[s] = h;
    }
    g
}

/// Stateful, unshuffled training with Keras's Adam (epsilon-hat form).
fn gru_reference_training(
    mut p: Gru,
    xs: &[Vec<f64>],
    ys: &[usize],
    epochs: usize,
    lr: f64,
) -> Gru {
    let mut m: Vec<Vec<f64>> = p.all().iter().map(|t| vec![0.0; t.len()]).collect();
    let mut v = m.clone();
    let mut states = vec![vec![0.0; H]; BATCH];
    let mut step = 0;
    for _ in 0..epochs {
        for batch in 0..N / BATCH {
            let range = batch * BATCH..(batch + 1) * BATCH;
            let mut g = gru_batch_grads(&p, &xs[range.clone()], &ys[range], &mut states);
            step += 1;
            keras_adam_step(&mut p.all(), &g.all(), &mut m, &mut v, step, lr);
        }
    }
    p
}

fn values(n: usize, seed: f64) -> Vec<f32> {
    (0..n)
        .map(|i| ((i as f64 * 0.7 + seed).sin() * 0.5) as f32)
        .collect()
}

/// Torch rows r, z, n to Keras blocks z, r, h (of `[3H, cols]`).
fn keras_blocks(data: &[f32], cols: usize) -> Vec<f32> {
    let block = |i: usize| &data[i * H * cols..(i + 1) * H * cols];
    [block(1), block(0), block(2)].concat()
}

#[test]
fn gru_training_matches_a_float64_reimplementation_from_both_layouts() {
    let env = Env::new();
    let (w, u, bi, bh, v, c) = (
        values(3 * H * IN, 0.1),
        values(3 * H * H, 0.2),
        values(3 * H, 0.3),
        values(3 * H, 0.35),
        values(OUT * H, 0.4),
        values(OUT, 0.5),
    );
    let torch = env.write_tensors(
        "init.torch.safetensors",
        &[
            ("gru.weight_ih_l0", Tensor::new(vec![3 * H, IN], w.clone())),
            ("gru.weight_hh_l0", Tensor::new(vec![3 * H, H], u.clone())),
            ("gru.bias_ih_l0", Tensor::new(vec![3 * H], bi.clone())),
            ("gru.bias_hh_l0", Tensor::new(vec![3 * H], bh.clone())),
            ("head.weight", Tensor::new(vec![OUT, H], v.clone())),
            ("head.bias", Tensor::new(vec![OUT], c.clone())),
        ],
    );
    let keras = env.write_tensors(
        "init.keras.safetensors",
        &[
            (
                "gru/kernel",
                Tensor::new(vec![IN, 3 * H], transpose(&keras_blocks(&w, IN), 3 * H, IN)),
            ),
            (
                "gru/recurrent_kernel",
                Tensor::new(vec![H, 3 * H], transpose(&keras_blocks(&u, H), 3 * H, H)),
            ),
            (
                "gru/bias",
                Tensor::new(
                    vec![2, 3 * H],
                    [keras_blocks(&bi, 1), keras_blocks(&bh, 1)].concat(),
                ),
            ),
            (
                "dense/kernel",
                Tensor::new(vec![H, OUT], transpose(&v, OUT, H)),
            ),
            ("dense/bias", Tensor::new(vec![OUT], c.clone())),
        ],
    );
    let x = values(N * STEPS * IN, 0.9);
    let labels = [1usize, 3, 0, 2];
    let data = env.write_tensors(
        "data.safetensors",
        &[
            ("x", Tensor::new(vec![N, STEPS, IN], x.clone())),
            (
                "y",
                Tensor::new(vec![N], labels.iter().map(|l| *l as f32).collect()),
            ),
        ],
    );
    let f64s = |v: &[f32]| v.iter().map(|x| *x as f64).collect::<Vec<_>>();
    let xs: Vec<Vec<f64>> = x.chunks(STEPS * IN).map(f64s).collect();
    let expected = gru_reference_training(
        Gru {
            w: f64s(&w),
            u: f64s(&u),
            bi: f64s(&bi),
            bh: f64s(&bh),
            v: f64s(&v),
            c: f64s(&c),
        },
        &xs,
        &labels,
        3,
        0.05,
    );
    let trained = env.train_from_both_layouts(
        [&torch, &keras],
        &[
            "--cell",
            "gru",
            "--data",
            s(&data),
            "--classes",
            "4",
            "--units",
            "3",
            "--batch-size",
            "2",
            "--epochs",
            "3",
            "--lr",
            "0.05",
            "--no-shuffle",
        ],
        &[
            ("gru.weight_ih_l0", &expected.w),
            ("gru.weight_hh_l0", &expected.u),
            ("gru.bias_ih_l0", &expected.bi),
            ("gru.bias_hh_l0", &expected.bh),
            ("head.weight", &expected.v),
            ("head.bias", &expected.c),
        ],
    );
    // The weights moved: a test that compared the init would pass too.
    assert!(trained["gru.bias_hh_l0"]
        .data
        .iter()
        .zip(&bh)
        .any(|(a, b)| (a - b).abs() > 1e-3));
}
