"""Reports come back as typed objects, straight from the operations: their
``to_dict()`` is exactly what the CLI's ``--json`` prints for the same
call, arrays go in and out in memory, and nothing is written outside the
store (no temporary files, whatever a model is named)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

import statectl
from conftest import random_state, torch_lstm_weights


def listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.fixture
def watched_tmp(tmp_path, monkeypatch):
    """A temp folder every temporary file of this process goes to."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_reports_are_typed_and_equal_the_cli_json(store, cli, store_path, tmp_path, watched_tmp):
    rng = np.random.default_rng(11)
    outside_before = listing(tmp_path) - {p for p in listing(tmp_path) if p.startswith("store")}

    imported = store.import_model(torch_lstm_weights(rng, 3, 8, 4), name="m", head="softmax", batch_size=4)
    assert isinstance(imported, statectl.ModelImported)
    assert imported.model == "m" and imported.naming == "torch" and imported.layout == "lstm:8"
    assert imported.to_dict() == {k: v for k, v in cli.json("model", "show", "m").items() if k in imported.to_dict()} | {
        "naming": "torch",
        "converted_f64": [],
        "notes": [],
    }

    x = rng.standard_normal((4, 5, 3)).astype(np.float32)
    store.predict(x, model="m", tag="one")
    second = store.predict(x, model="m", tag="two")

    show = store.show("two", values=True)
    assert isinstance(show, statectl.ShowReport)
    assert show.batch == 4 and show.tags == ["two"] and show.origin.kind == "predict"
    assert show.values["l0.h"].dtype == np.float32 and show.values["l0.h"].shape == (4, 8)
    np.testing.assert_array_equal(show.values["l0.c"], store.get_state("two")["l0.c"])
    assert show.to_dict() == cli.json("show", "two", "--values")

    log = store.log(model="m")
    assert isinstance(log, statectl.LogReport) and isinstance(log.events[0], statectl._reports.Event)
    assert [e.kind for e in log.events][:2] == ["predict", "predict"]
    assert log.to_dict() == cli.json("log", "--model", "m")

    diff = store.diff("one", "two", inputs=x, per_slot=True)
    assert isinstance(diff, statectl.DiffReport)
    assert diff.different and not diff.bit_equal and len(diff.slots) == 4 and diff.outputs.steps == 1
    np.save(tmp_path / "x.npy", x)  # (the CLI reads its input from a file; Python never does)
    from safetensors.numpy import save_file

    save_file({"x": x}, str(tmp_path / "x.safetensors"))
    assert diff.to_dict() == cli.json("diff", "one", "two", "--per-slot", "--input", str(tmp_path / "x.safetensors"))

    burned = store.burn_in("one", x, model="m", tag="burned")
    assert len(burned) == 1 and isinstance(burned[0], statectl.BurnedState)
    assert burned[0].from_ == "one" and burned[0]["from"] == "one" and burned[0].tag == "burned"
    assert cli.json("show", "burned")["state"] == burned[0].state

    audit = store.audit(model="m")
    assert isinstance(audit, statectl.AuditReport)
    assert audit.ok and audit.reproduced == 2 and audit.events[0].status == "reproduced"

    verify = store.verify()
    assert isinstance(verify, statectl.VerifyReport)
    assert verify.ok and verify.report.events > 0 and verify.report.problems == []
    assert verify["ok"] is True and verify.to_dict()["report"]["slots"] == verify.report.slots

    models = store.models()
    assert [m.model for m in models] == ["m"] and models[0].to_dict() == cli.json("model", "list")["models"][0]
    assert [t.tag for t in store.tags()] == ["burned", "one", "two"]
    detail = store.model("m")
    assert isinstance(detail, statectl.ModelDetail)
    assert [(s.stream, s.state) for s in detail.streams] == [("main", second.state_after)]
    assert detail.to_dict() == cli.json("model", "show", "m")

    # Nothing was written outside the store: not in the temp folder, not
    # beside the store (the CLI's input file above aside).
    assert listing(watched_tmp) == set()
    outside_after = listing(tmp_path) - {p for p in listing(tmp_path) if p.startswith("store")}
    assert outside_after - outside_before == {"tmp", "x.npy", "x.safetensors"} - outside_before


@pytest.mark.parametrize("name", ["../x", "../../escaped", "/tmp/abs", "a/b"])
def test_a_model_name_never_writes_outside_the_store(store, tmp_path, watched_tmp, name):
    rng = np.random.default_rng(12)
    before = listing(tmp_path)
    with pytest.raises(statectl.StatectlError) as refused:
        store.import_model(torch_lstm_weights(rng, 2, 4, 3), name=name, head="linear")
    assert "name" in str(refused.value)
    after = listing(tmp_path)
    assert {p for p in after - before if not p.startswith("store")} == set()
    assert listing(watched_tmp) == set()
    assert store.models() == []


def test_bad_option_values_are_refused_in_pythons_words(store):
    rng = np.random.default_rng(13)
    with pytest.raises(statectl.StatectlError, match="head='sigmoid' is not one of: 'softmax', 'linear'"):
        store.import_model(torch_lstm_weights(rng, 2, 4, 3), name="m", head="sigmoid")
    with pytest.raises(statectl.InvalidInputError, match="batch_size must be a positive int"):
        store.import_model(torch_lstm_weights(rng, 2, 4, 3), name="m", head="linear", batch_size=0)
    assert store.models() == []


def test_stack_split_and_delete_tag_without_the_cli(store, cli):
    rng = np.random.default_rng(14)
    ids = store.put_states(random_state(rng, 3, [6]), tag_prefix="buf/")
    stacked = store.stack(["buf/*"], tag="sampled")
    assert cli.json("show", "sampled")["slots"] == [cli.json("show", i)["slots"][0] for i in ids]
    parts = store.split("sampled", "again/")
    assert parts == ids
    assert store.delete_tag("sampled") == stacked
    assert "sampled" not in [t.tag for t in store.tags()]
