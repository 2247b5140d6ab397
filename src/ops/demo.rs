//! The reference experiment end to end: train (outside the transaction),
//! then record the model and run the five cases of DESIGN's table, all in
//! one transaction, through the same operations as the commands. Tags the
//! state training left `trained`, and each case's two sides `caseN/start`
//! (the state it predicts from) and `caseN/end` (the state it leaves).
//! An existing model `demo` or any of those tags is only replaced with
//! `force`.

use anyhow::{bail, Result};

use super::models::{self, Model};
use super::predict::{self, PredictReport, PredictRequest};
use super::refs::Resolved;
use super::streams;
use super::tags::{self, TagRequest};
use super::train::{self, TrainPlan};
use crate::model::ModelConfig;
use crate::state::Cell;
use crate::store::Store;
use crate::tensors::Tensor;
use crate::train::{Progress, TrainReport};

/// One of the demo's checks.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
}

pub struct DemoReport {
    pub model: Model,
    pub training: TrainReport,
    pub cases: Vec<PredictReport>,
    pub checks: Vec<Check>,
}

impl DemoReport {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    /// Each case's class-0 probability per row.
    pub fn class0(&self, case: usize) -> Vec<f32> {
        let out = self.model.config.output_size;
        self.cases[case]
            .prediction
            .outputs
            .chunks(out)
            .map(|row| row[0])
            .collect()
    }
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

fn checks(cases: &[PredictReport], config: &ModelConfig) -> Vec<Check> {
    let rows = |r: &PredictReport| -> Vec<Vec<u32>> {
        r.prediction
            .outputs
            .chunks(config.output_size)
            .map(bits)
            .collect()
    };
    let r: Vec<Vec<Vec<u32>>> = cases.iter().map(rows).collect();
    let all_distinct = (0..6).all(|i| (i + 1..6).all(|j| r[0][i] != r[0][j]));
    vec![
        Check { name: "case 1: the state training left gives six different rows", passed: all_distinct },
        Check { name: "case 2: predicting again without a reset gives other numbers", passed: r[1] != r[0] },
        Check {
            name: "case 3: restoring the case-1 state reproduces case 1 bit for bit (outputs and new state)",
            passed: r[2] == r[0]
                && bits(&cases[2].prediction.logits) == bits(&cases[0].prediction.logits)
                && cases[2].state_after == cases[0].state_after,
        },
        Check { name: "case 4: from zeros all six rows are bit-identical", passed: r[3].iter().all(|row| *row == r[3][0]) },
        Check {
            name: "case 5: slot 0 broadcast to every slot gives case 1's row 0 in every row, bit for bit",
            passed: r[4].iter().all(|row| *row == r[0][0]),
        },
    ]
}

/// The tags the demo sets.
pub fn tag_names() -> Vec<String> {
    let mut names = vec!["trained".to_string()];
    for n in 1..=5 {
        names.push(format!("case{n}/start"));
        names.push(format!("case{n}/end"));
    }
    names
}

/// Refuses to replace what a user may have made, unless forced.
pub fn check_free(store: &Store, force: bool) -> Result<()> {
    if force {
        return Ok(());
    }
    if store.find_model("demo")?.is_some() {
        bail!("this store already has a model 'demo'; pass --force to replace it (and the demo's tags), or run the demo in a store of its own with --store DIR");
    }
    let taken: Vec<String> = tag_names()
        .into_iter()
        .filter(|t| matches!(store.tag(t), Ok(Some(_))))
        .collect();
    if !taken.is_empty() {
        bail!(
            "the demo would move tag(s) {} that already exist; pass --force to move them, or run the demo in a store of its own with --store DIR",
            taken.join(", ")
        );
    }
    Ok(())
}

pub fn run(
    store: &Store,
    cell: Cell,
    force: bool,
    progress: &mut dyn FnMut(&Progress),
) -> Result<DemoReport> {
    check_free(store, force)?;
    let plan: TrainPlan = train::reference_plan(cell);
    let training = train::run(&plan, progress)?;
    // Six copies of the first window (0, 1/27, 2/27).
    let window = &plan.data.x.data[..3];
    let x = Tensor::new(vec![6, 3, 1], window.repeat(6));
    store.write(|store| -> Result<DemoReport> {
        check_free(store, force)?;
        let model = train::record_in(store, "demo", true, &plan, &training)?;
        let weights = models::weights(store, &model)?;
        let trained_id = streams::head(store, &model, "main")?
            .ok_or_else(|| anyhow::anyhow!("training left no state"))?;
        let trained = Resolved {
            id: trained_id,
            value: store.load_state(&trained_id)?,
            stored: true,
        };
        let tag = |name: &str| TagRequest {
            name: name.to_string(),
            force: true,
        };
        tags::apply(store, &tag("trained"), &trained_id, Some(&model))?;
        let case = |n: usize| -> Result<PredictReport> {
            let report = predict::run_in(
                store,
                &weights,
                &PredictRequest {
                    model: &model,
                    stream: "main",
                    x: &x,
                    from: None,
                    advance: true,
                    tag: Some(tag(&format!("case{n}/end"))),
                    retry: false,
                    kernel: crate::kernels::Kernel::default(),
                    new_stream: false,
                },
            )?;
            let start = tag(&format!("case{n}/start"));
            tags::apply(store, &start, &report.state_before, Some(&model))?;
            Ok(report)
        };
        let case1 = case(1)?;
        let case2 = case(2)?;
        streams::restore_to(store, &model, "main", &trained, None)?;
        let case3 = case(3)?;
        streams::reset_to_zeros(store, &model, "main", 6, None)?;
        let case4 = case(4)?;
        streams::restore_to(store, &model, "main", &trained, Some(&[0; 6]))?;
        let case5 = case(5)?;
        let cases = vec![case1, case2, case3, case4, case5];
        let checks = checks(&cases, &model.config);
        Ok(DemoReport {
            model,
            training: training.clone(),
            cases,
            checks,
        })
    })
}
