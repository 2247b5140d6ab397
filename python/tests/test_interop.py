"""One store, one set of ids: what Python stores, the CLI finds under the
same id and exports with the same bytes, and the reverse; a prediction
made from Python audits bit for bit with `statectl audit`."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import statectl
from conftest import random_state, torch_lstm_weights


@pytest.mark.parametrize("batch,units,cell", [(1, [16], "lstm"), (6, [8, 5], "lstm"), (3, [7], "gru")])
def test_a_state_put_from_python_has_the_id_the_cli_computes(store, cli, tmp_path, batch, units, cell):
    tensors = random_state(np.random.default_rng(1), batch, units, cell)
    sid = store.put_state(tensors, tag="from-python")
    # The same values through the CLI's file path, written by the
    # safetensors package (not by statectl), imported in a second store.
    file = tmp_path / "state.safetensors"
    save_file(tensors, str(file))
    other = type(cli)(tmp_path / "other")
    imported = other.json("import", str(file))
    assert imported["state"] == sid
    # And the CLI on the Python store finds it by tag, and exports it.
    assert cli.json("show", "from-python")["state"] == sid
    out = tmp_path / "out.safetensors"
    cli.run("export", "from-python", "-o", str(out))
    exported = load_file(str(out))
    for name, value in tensors.items():
        assert exported[name].dtype == np.float32
        np.testing.assert_array_equal(exported[name], value)


def test_a_state_put_by_the_cli_reads_back_equal_in_python(store, cli, tmp_path):
    tensors = random_state(np.random.default_rng(2), 4, [12])
    file = tmp_path / "s.safetensors"
    save_file(tensors, str(file))
    sid = cli.json("import", str(file), "--tag", "from-cli")["state"]
    got = store.get_state("from-cli")
    assert got.id == sid
    assert set(got) == set(tensors)
    for name, value in tensors.items():
        assert got[name].dtype == np.float32 and got[name].flags.writeable
        np.testing.assert_array_equal(got[name], value)
    assert store.get_state(sid[:10]).id == sid


def test_put_states_matches_a_per_slot_import(store, cli, tmp_path):
    tensors = random_state(np.random.default_rng(3), 50, [9])
    ids = store.put_states(tensors, tag_prefix="py/")
    file = tmp_path / "batch.safetensors"
    save_file(tensors, str(file))
    other = type(cli)(tmp_path / "other")
    report = other.json("import", str(file), "--per-slot", "--tag-prefix", "cli/")
    assert ids == [row["state"] for row in report["states"]]
    # One journal entry for the whole batch, and each row under its tag.
    imports = [e for e in cli.json("log", "--all")["events"] if e["kind"] == "import"]
    assert len(imports) == 1
    for i in (0, 17, 49):
        row = store.get_state(f"py/{i}")
        assert row.id == ids[i]
        np.testing.assert_array_equal(row["l0.h"], tensors["l0.h"][i : i + 1])
    named = store.put_states(tensors, tags=[f"seq{i}" for i in range(50)])
    assert named == ids
    assert cli.json("show", "seq42")["state"] == ids[42]


def test_a_prediction_from_python_audits_bit_for_bit(store, cli):
    rng = np.random.default_rng(4)
    store.import_model(torch_lstm_weights(rng, 3, 10, 4), name="m", head="softmax", batch_size=5)
    x = rng.standard_normal((5, 7, 3)).astype(np.float32)
    first = store.predict(x, model="m")
    second = store.predict(x, model="m", tag="after-two")
    assert first.outputs.shape == (5, 4) and first.logits.shape == (5, 4)
    np.testing.assert_allclose(first.outputs.sum(axis=1), 1, rtol=1e-6)
    assert second.state_before == first.state_after
    # The CLI replays both recorded predictions and gets the same bits.
    report = cli.json("audit", "--model", "m")
    assert report["ok"] is True
    replayed = {e["event"]: e["status"] for e in report["events"]}
    assert replayed == {first.event: "reproduced", second.event: "reproduced"}
    # And the CLI, given the same input from the same state, agrees.
    assert cli.json("show", "after-two")["state"] == second.state_after
    log = store.log(model="m")
    assert [e.event for e in log.events][:2] == [second.event, first.event]


def test_predict_from_a_ref_without_advancing(store):
    rng = np.random.default_rng(5)
    store.import_model(torch_lstm_weights(rng, 2, 6, 3), name="m", head="linear", batch_size=2)
    x = rng.standard_normal((2, 4, 2)).astype(np.float32)
    head = store.show(model="m")["state"]
    p = store.predict(x, model="m", advance=False)
    assert p.logits is None
    assert store.show(model="m")["state"] == head
    again = store.predict(x, model="m", from_=p.state_before, advance=False)
    np.testing.assert_array_equal(again.outputs, p.outputs)


def test_snapshot_restore_broadcast_reset(store):
    rng = np.random.default_rng(6)
    store.import_model(torch_lstm_weights(rng, 1, 8, 3), name="m", head="softmax", batch_size=4)
    x = rng.standard_normal((4, 3, 1)).astype(np.float32)
    store.predict(x, model="m")
    sid = store.snapshot("warm", model="m")
    assert store.get_state("warm").id == sid
    broadcast = store.restore("warm", model="m", slot=2)
    state = store.get_state("HEAD", model="m")
    assert state.id == broadcast
    for row in state["l0.h"]:
        np.testing.assert_array_equal(row, store.get_state("warm")["l0.h"][2])
    picked = store.restore("warm", model="m", slots=[3, 0])
    assert store.get_state(picked)["l0.c"].shape == (2, 8)
    zeros = store.reset(model="m", batch_size=3)
    assert not store.get_state(zeros)["l0.h"].any()
    assert {t["tag"] for t in store.tags()} >= {"warm"}
    assert [m["model"] for m in store.models()] == ["m"]
    assert store.verify()["ok"] is True


def test_the_store_path_resolves_like_the_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("STATECTL_STORE", str(tmp_path / "env-store"))
    with statectl.Store(create=True) as s:
        assert s.path == str(tmp_path / "env-store")
    monkeypatch.delenv("STATECTL_STORE")
    monkeypatch.chdir(tmp_path)
    with statectl.Store(create=True) as s:
        assert s.path == ".statectl"
    assert (tmp_path / ".statectl" / "statectl.db").exists()


def test_large_states_put_in_bulk_read_back_equal_from_both_front_ends(store, cli, store_path, tmp_path):
    # One-slot LSTM-512 states (4 KiB): their bytes go to a pack file.
    tensors = random_state(np.random.default_rng(13), 300, [512])
    ids = store.put_states(tensors, tag_prefix="big/")
    assert (store_path / "packs" / "1.pack").stat().st_size == 300 * 512 * 2 * 4
    for i in (0, 150, 299):
        got = store.get_state(ids[i])
        np.testing.assert_array_equal(got["l0.c"], tensors["l0.c"][i : i + 1])
        out = tmp_path / f"big{i}.safetensors"
        cli.run("export", f"big/{i}", "-o", str(out))
        np.testing.assert_array_equal(load_file(str(out))["l0.h"], tensors["l0.h"][i : i + 1])
    assert cli.json("verify")["ok"] is True


def test_get_states_stacks_a_learners_batch_in_the_order_asked(store, cli):
    # A learner samples start states (tags, ids, prefixes, a two-slot
    # state) and gets them as one batch: row for row what get_state gives.
    rng = np.random.default_rng(21)
    tensors = random_state(rng, 40, [8, 5])
    ids = store.put_states(tensors, tag_prefix="seq/")
    pair = store.put_state(random_state(rng, 2, [8, 5]), tag="pair")
    refs = ["seq/31", ids[2], ids[7][:12], "pair", "seq/31"]
    journal = cli.json("log", "--all")["events"]
    batch = store.get_states(refs)
    assert batch.ids == [ids[31], ids[2], ids[7], pair, ids[31]]
    assert batch.batch == 6 and sorted(batch) == ["l0.c", "l0.h", "l1.c", "l1.h"]
    for name in batch:
        expected = np.concatenate([store.get_state(r)[name] for r in refs])
        np.testing.assert_array_equal(batch[name], expected)
        assert batch[name].dtype == np.float32 and batch[name].flags.writeable
    np.testing.assert_array_equal(batch["l1.h"][0], tensors["l1.h"][31])
    # Reading writes nothing: the journal is as it was.
    assert cli.json("log", "--all")["events"] == journal


def test_put_states_reads_arrays_in_place_or_copies_unaligned_ones(store):
    # Arrays are read in place; an unaligned one (a view at an odd byte
    # offset) is copied first: both give the ids of the same values.
    tensors = random_state(np.random.default_rng(5), 20, [7])
    ids = store.put_states(tensors)
    unaligned = {}
    for name, array in tensors.items():
        raw = bytearray(array.nbytes + 1)
        view = np.frombuffer(raw, dtype=np.float32, offset=1, count=array.size).reshape(array.shape)
        view[...] = array
        assert view.ctypes.data % 4 != 0
        unaligned[name] = view
    assert store.put_states(unaligned) == ids
    np.testing.assert_array_equal(store.get_state(ids[3])["l0.c"], tensors["l0.c"][3:4])
