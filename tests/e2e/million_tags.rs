//! A million tags: listing them and exporting by pattern stream through
//! bounded memory (under 512 MB, measured with GNU time), and the listing's
//! JSON is exactly serde_json's pretty form.

use statectl::tensors::Tensor;

use super::trust::peak_kib;
use super::util::*;

const LIMIT_KIB: u64 = 512 * 1024;

fn peak_or_skip(env: &Env, args: &[&str]) -> Option<(i32, String, u64)> {
    if !std::path::Path::new("/usr/bin/time").exists() {
        println!("skipped: peak memory needs GNU time at /usr/bin/time");
        return None;
    }
    let (code, stderr, peak) = peak_kib(env, args);
    Some((code, stderr, peak?))
}

#[test]
fn a_million_tags_list_and_export_in_bounded_memory() {
    let env = Env::new();
    let n = 1_000_000;
    let values: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let file = env.write_tensors(
        "million.safetensors",
        &[
            ("l0.h", Tensor::new(vec![n, 1], values.clone())),
            ("l0.c", Tensor::new(vec![n, 1], values)),
        ],
    );
    env.ok(&["-q", "import", s(&file), "--per-slot", "--tag-prefix", "m/"]);
    std::fs::remove_file(&file).unwrap();
    for args in [vec!["tag", "list"], vec!["--json", "tag", "list"]] {
        let Some((code, stderr, peak)) = peak_or_skip(&env, &args) else {
            return;
        };
        assert_eq!(code, 0, "{stderr}");
        assert!(peak < LIMIT_KIB, "{args:?} took {peak} KiB");
        println!("{args:?} of 1,000,000 tags: peak {peak} KiB");
    }
    // A million states make a header no reader accepts: refused up front.
    let out = env.path("all.safetensors");
    let (code, stderr, peak) = peak_or_skip(&env, &["export", "m/*", "-o", s(&out)]).unwrap();
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("export them in several files"), "{stderr}");
    assert!(peak < LIMIT_KIB, "the refused export took {peak} KiB");
    assert!(!out.exists());
    // Ten thousand of them stream into one file that reads back.
    let part = env.path("part.safetensors");
    let (code, stderr, peak) = peak_or_skip(&env, &["export", "m/1????", "-o", s(&part)]).unwrap();
    assert_eq!(code, 0, "{stderr}");
    assert!(peak < LIMIT_KIB, "exporting 10,000 states took {peak} KiB");
    let back = statectl::tensors::TensorFile::decode(&std::fs::read(&part).unwrap()).unwrap();
    assert_eq!(back.tensors.len(), 20_000);
    assert_eq!(back.tensors["m/12345.l0.h"].data, vec![12345.0]);
    println!("export of 10,000 states: peak {peak} KiB");
}

#[test]
fn the_streamed_tag_listing_is_serde_jsons_pretty_form_and_exports_match_in_memory_encoding() {
    let env = Env::new();
    env.ok(&["demo"]);
    let out = env.ok(&["--json", "tag", "list"]);
    let value: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        out.trim_end(),
        serde_json::to_string_pretty(&value).unwrap()
    );
    assert!(value["tags"].as_array().unwrap().len() >= 5);
    let empty = Env::new();
    empty.ok(&["init"]);
    let out = empty.ok(&["--json", "tag", "list"]);
    assert_eq!(out.trim_end(), "{\n  \"tags\": []\n}");
    // The streamed export is byte for byte the in-memory encoding.
    let file = env.path("two.safetensors");
    env.ok(&["export", "case1/end", "case2/start", "-o", s(&file)]);
    let bytes = std::fs::read(&file).unwrap();
    let decoded = statectl::tensors::TensorFile::decode(&bytes).unwrap();
    assert_eq!(decoded.encode(), bytes);
}
