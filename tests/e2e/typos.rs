//! A typo never silently creates or reads nothing: a stream name one edit
//! away from an existing one is refused with "did you mean", unknown
//! streams, models, tags and refs name what exists, and a new stream is
//! announced.

use crate::util::*;

fn env_with_main_stream() -> Env {
    let env = Env::new();
    env.import_reference("keras", "ref");
    let x = fixture("x_test.safetensors");
    // Importing a model makes its `main` stream: nothing is created here.
    let first = env.json(&["predict", "--input", s(&x)]);
    assert_eq!(first["created_stream"], false);
    env.ok(&["snapshot", "HEAD", "--tag", "kept"]);
    env
}

#[test]
fn a_stream_one_typo_from_another_is_refused_unless_asked_for() {
    let env = env_with_main_stream();
    let x = fixture("x_test.safetensors");
    env.fails(
        &["predict", "--input", s(&x), "--stream", "mian"],
        1,
        "model 'ref' has no stream 'mian'; did you mean 'main'? To start a new stream 'mian' from zeros, pass --new-stream",
    );
    // Asked for, it starts at zeros and says so.
    let run = env.run(&[
        "predict",
        "--input",
        s(&x),
        "--stream",
        "mian",
        "--new-stream",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("created stream 'mian' of model 'ref', starting from zeros"),
        "{}",
        run.stderr
    );
    // A name that is no typo (numbered siblings are deliberate) starts a
    // stream with the same line, and the next prediction creates nothing.
    for stream in ["actor-1", "actor-2"] {
        let made = env.json(&["predict", "--input", s(&x), "--stream", stream]);
        assert_eq!(made["created_stream"], true, "{stream}");
    }
    let again = env.json(&["predict", "--input", s(&x), "--stream", "actor-2"]);
    assert_eq!(again["created_stream"], false);
}

#[test]
fn reading_an_unknown_stream_names_the_streams_the_model_has() {
    let env = env_with_main_stream();
    env.fails(
        &["log", "--stream", "mian"],
        1,
        "model 'ref' has no stream 'mian' (did you mean 'main'?); its streams: 'main'",
    );
    env.fails(
        &["log", "--stream", "eval"],
        1,
        "model 'ref' has no stream 'eval'; its streams: 'main'",
    );
    env.fails(
        &["show", "HEAD", "--stream", "mian"],
        1,
        "did you mean 'main'?",
    );
    env.fails(
        &["show", "HEAD~1", "--stream", "mian"],
        1,
        "did you mean 'main'?",
    );
    // The stream that exists reads as before.
    env.ok(&["log", "--stream", "main"]);
}

#[test]
fn unknown_models_tags_and_refs_get_a_did_you_mean_when_one_is_close() {
    let env = env_with_main_stream();
    env.fails(
        &["show", "HEAD", "--model", "rfe"],
        1,
        "model 'rfe' not found; did you mean 'ref'?",
    );
    env.fails(
        &["show", "kpet"],
        1,
        "ref 'kpet' not found; did you mean tag 'kept'?",
    );
    env.fails(
        &["tag", "delete", "kepd"],
        1,
        "tag 'kepd' not found (did you mean 'kept'?)",
    );
    // Nothing close: the plain message.
    env.fails(
        &["show", "zzzz-none"],
        1,
        "ref 'zzzz-none' not found; it is not a tag",
    );
}
