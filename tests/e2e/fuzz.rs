//! Fuzzing the readers of untrusted input: safetensors (tensor files, state
//! files, training data, weights), model files (`.keras` zips and their
//! config, Keras HDF5 weights, PyTorch zips and their pickles), CSV and
//! JSON inputs, and ref parsing.
//! Every input must give a value or an error, never a panic. The corpus in
//! `tests/fuzz_corpus/` seeds the mutations (bit flips, truncation,
//! splices) and is run as it is too. `STATECTL_FUZZ_CASES` sets the number
//! of cases per property (default 20,000: a few seconds in CI).

use std::path::PathBuf;
use std::sync::OnceLock;

use proptest::prelude::*;
use statectl::input::parse_input;
use statectl::model::{import_keras, import_torch, Head};
use statectl::ops::refs::{resolve, Scope};
use statectl::ops::{self, models::Registration};
use statectl::state::slot_file::SlotFile;
use statectl::state::{states_from_file, FileStates, Layout};
use statectl::store::Store;
use statectl::tensors::TensorFile;
use statectl::train::{dataset_from_csv, dataset_from_safetensors};

fn corpus() -> &'static Vec<(String, Vec<u8>)> {
    static CORPUS: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus");
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let path = e.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&path).unwrap())
            })
            .collect();
        files.sort();
        files
    })
}

fn cases() -> u32 {
    std::env::var("STATECTL_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000)
}

/// Feeds bytes to every reader; each must return, not panic.
fn read_everything(bytes: &[u8]) {
    for name in ["x.safetensors", "x.csv", "x.json", "x"] {
        for features in [1, 3] {
            let _ = parse_input(bytes, name, features);
        }
    }
    for (seq_len, target, classes) in [(1, 0, None), (3, 1, Some(4)), (50, 0, Some(1))] {
        let _ = dataset_from_csv(bytes, "fuzz", seq_len, 1, target, classes, false);
        let _ = dataset_from_csv(bytes, "fuzz", seq_len, 3, target, classes, true);
    }
    // Model files of every format: .keras, .weights.h5, .pt, safetensors.
    let _ = statectl::model::files::read(bytes.to_vec());
    let streamed = read_slot_file(bytes);
    if let Ok(file) = TensorFile::decode(bytes) {
        // The banded reader of `import --per-slot` agrees with the whole-
        // file reader on every file both accept: same layout, same bytes.
        if let (Ok(FileStates::Single(value)), Some((layout, slots))) =
            (states_from_file(&file), &streamed)
        {
            assert_eq!(&value.layout, layout);
            let whole: Vec<u8> = value
                .encoded_slots()
                .into_iter()
                .flat_map(|(_, b)| b)
                .collect();
            assert_eq!(&whole, slots);
        }
        let _ = dataset_from_safetensors(&file, None, None, false);
        let _ = dataset_from_safetensors(&file, Some(Head::Linear), Some(3), true);
        let _ = import_torch(&file, Head::Softmax, 1);
        let _ = import_keras(&file, None, Head::Linear, 2);
        // What decodes encodes, and decodes to the same tensors.
        let again =
            TensorFile::decode(&file.encode()).expect("re-decoding statectl's own encoding");
        assert_eq!(again.tensors.len(), file.tensors.len());
    }
}

/// `SlotFile` on the bytes as a file: its layout and every slot's bytes,
/// read in uneven bands, or None when it refuses the file.
fn read_slot_file(bytes: &[u8]) -> Option<(Layout, Vec<u8>)> {
    thread_local! {
        static DIR: tempfile::TempDir = tempfile::tempdir().expect("temp dir");
    }
    let path = DIR.with(|d| d.path().join("state.safetensors"));
    std::fs::write(&path, bytes).expect("writing the case");
    let mut file = SlotFile::open(&path).ok()?;
    let mut all = Vec::new();
    let mut band = Vec::new();
    let mut start = 0;
    while start < file.batch {
        let end = (start + 3).min(file.batch);
        file.read(start..end, &mut band).ok()?;
        all.extend_from_slice(&band);
        start = end;
    }
    Some((file.layout.clone(), all))
}

#[test]
fn every_corpus_file_is_read_without_a_panic() {
    for (_, bytes) in corpus() {
        read_everything(bytes);
    }
}

/// A corpus file changed the way a disk, a network or a person changes
/// files: bits flipped, cut short, a piece spliced in.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let n = corpus().len();
    (
        0..n,
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        any::<Option<prop::sample::Index>>(),
        prop::collection::vec(any::<u8>(), 0..16),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(k, flips, cut, splice, at)| {
            let mut bytes = corpus()[k].1.clone();
            if !bytes.is_empty() {
                for (i, mask) in flips {
                    let i = i.index(bytes.len());
                    bytes[i] ^= mask;
                }
                let at = at.index(bytes.len());
                bytes.splice(at..at, splice);
                if let Some(cut) = cut {
                    bytes.truncate(cut.index(bytes.len()));
                }
            }
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_corpus_files_are_read_without_a_panic(bytes in mutated()) {
        read_everything(&bytes);
    }

    #[test]
    fn random_bytes_are_read_without_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        read_everything(&bytes);
    }

    #[test]
    fn any_ref_text_resolves_or_errors(text in "(HEAD|HEAD~[0-9]{0,25}|zeros|[0-9a-f]{0,70}|\\PC{0,24})") {
        let (store, model) = ref_store();
        let store = store.lock().unwrap();
        for zeros_batch in [None, Some(1)] {
            let _ = resolve(&store, &text, Scope { model: Some(model), stream: "main", zeros_batch });
            let _ = resolve(&store, &text, Scope { model: None, stream: "other", zeros_batch });
        }
        let _ = ops::tags::check_tag_name(&text);
    }
}

/// An in-memory store with the reference model, shared by the ref cases.
fn ref_store() -> (&'static std::sync::Mutex<Store>, &'static ops::Model) {
    static STORE: OnceLock<(std::sync::Mutex<Store>, ops::Model, tempfile::TempDir)> =
        OnceLock::new();
    let (store, model, _) = STORE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in_memory(dir.path()).unwrap();
        let file = TensorFile::decode(
            &corpus()
                .iter()
                .find(|(n, _)| n == "weights_torch.safetensors")
                .unwrap()
                .1,
        )
        .unwrap();
        let weights = import_torch(&file, Head::Softmax, 6).unwrap();
        let model = ops::models::register(
            &store,
            &Registration {
                name: "ref",
                weights: &weights,
                training: None,
                replace: false,
            },
        )
        .unwrap();
        (std::sync::Mutex::new(store), model, dir)
    });
    (store, model)
}
