"""Bad input from Python: a clear exception of the right class, and the
store byte for byte as it was."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

import statectl
from conftest import folder_digest, random_state, torch_lstm_weights


@pytest.fixture
def seeded(store_path):
    rng = np.random.default_rng(7)
    with statectl.Store(store_path, create=True) as seeding:
        seeding.import_model(torch_lstm_weights(rng, 2, 6, 3), name="m", head="softmax", batch_size=3)
        seeding.put_state(random_state(rng, 3, [6]), tag="good")
        seeding.put_state({"l0.h": random_state(rng, 3, [6])["l0.h"]}, tag="gru-like")
    # Seeded through a store now closed (its log copied into the database):
    # no checkpoint helper copies the seeding writes while the test watches
    # the files.
    with statectl.Store(store_path) as store:
        yield store, folder_digest(store_path)


H = np.zeros((3, 6), np.float32)

BAD_CALLS = [
    # wrong dtypes
    ("float64 state", lambda s: s.put_state({"l0.h": H.astype(np.float64), "l0.c": H}), statectl.InvalidInputError, "float32"),
    ("int state", lambda s: s.put_states({"l0.h": H.astype(np.int32), "l0.c": H}), statectl.InvalidInputError, "dtype int32"),
    ("big-endian", lambda s: s.put_state({"l0.h": H.astype(">f4"), "l0.c": H}), statectl.InvalidInputError, ">f4"),
    ("float64 input", lambda s: s.predict(np.zeros((3, 2, 2)), model="m"), statectl.InvalidInputError, "astype(numpy.float32)"),
    ("not a dict", lambda s: s.put_state([H, H]), statectl.InvalidInputError, "dict of numpy arrays"),
    ("empty dict", lambda s: s.put_state({}), statectl.InvalidInputError, "empty"),
    # wrong shapes
    ("3-d tensor", lambda s: s.put_state({"l0.h": np.zeros((3, 2, 6), np.float32), "l0.c": H}), statectl.LayoutMismatchError, "[batch, units]"),
    ("h and c differ", lambda s: s.put_state({"l0.h": H, "l0.c": np.zeros((3, 5), np.float32)}), statectl.LayoutMismatchError, "l0.c"),
    ("batch differs", lambda s: s.put_states({"l0.h": H, "l0.c": np.zeros((2, 6), np.float32)}), statectl.LayoutMismatchError, "must match"),
    ("stray name", lambda s: s.put_state({"l0.h": H, "l0.c": H, "hidden": H}), statectl.LayoutMismatchError, "outside the scheme"),
    ("input features", lambda s: s.predict(np.zeros((3, 2, 5), np.float32), model="m"), statectl.StatectlError, "feature"),
    ("input rank", lambda s: s.predict(np.zeros((3, 2), np.float32), model="m"), statectl.StatectlError, "[batch, steps, features]"),
    ("input batch vs state", lambda s: s.predict(np.zeros((4, 2, 2), np.float32), model="m"), statectl.StatectlError, "batch"),
    ("non-finite input", lambda s: s.predict(np.full((3, 2, 2), np.nan, np.float32), model="m"), statectl.StatectlError, "non-finite"),
    ("non-finite state", lambda s: s.put_state({"l0.h": np.full((3, 6), np.inf, np.float32), "l0.c": H}), statectl.StatectlError, "allow-nonfinite"),
    # missing tensors (a lone l0.h is a GRU state: the model tells)
    ("missing c for an LSTM model", lambda s: s.put_state({"l0.h": H}, model="m"), statectl.LayoutMismatchError, "needs lstm:6"),
    ("missing layer", lambda s: s.put_state({"l1.h": H, "l1.c": H}), statectl.LayoutMismatchError, "l0"),
    ("tags per row", lambda s: s.put_states({"l0.h": H, "l0.c": H}, tags=["a", "b"]), statectl.StatectlError, "one name per slot"),
    ("a tag name twice", lambda s: s.put_states({"l0.h": np.eye(3, 6, dtype=np.float32), "l0.c": H}, tags=["a", "b", "a"]), statectl.StatectlError, "slots 0 and 2"),
    # unknown refs, names
    ("unknown tag", lambda s: s.get_state("no-such-tag"), statectl.NotFoundError, "not found"),
    ("unknown id", lambda s: s.get_state("abcdef0123"), statectl.NotFoundError, "not found"),
    ("get_states of a string", lambda s: s.get_states("good"), statectl.InvalidInputError, "not one string"),
    ("get_states of nothing", lambda s: s.get_states([]), statectl.InvalidInputError, "one or more"),
    ("get_states unknown", lambda s: s.get_states(["good", "no-such-tag"]), statectl.NotFoundError, "no-such-tag"),
    ("get_states two layouts", lambda s: s.get_states(["good", "gru-like"]), statectl.LayoutMismatchError, "one layout at a time"),
    ("unknown model", lambda s: s.predict(np.zeros((3, 2, 2), np.float32), model="nope"), statectl.NotFoundError, "nope"),
    ("restore unknown", lambda s: s.restore("nope", model="m"), statectl.NotFoundError, "nope"),
    ("wrong layout restore", lambda s: s.restore(s.put_state({"l0.h": H}) if False else "good", model="m", slot=7), statectl.StatectlError, "slot"),
    ("tag taken", lambda s: s.put_state({"l0.h": H, "l0.c": H}, tag="good"), statectl.StatectlError, "--force"),
    ("bad tag name", lambda s: s.snapshot("bad\u202ename", "good"), statectl.StatectlError, "U+202E"),
    ("bad kernel", lambda s: s.predict(np.zeros((3, 2, 2), np.float32), model="m", kernel="gpu"), statectl.StatectlError, "unknown kernel"),
    ("bad flag value", lambda s: s.restore("good", model="m", batch_size=0), statectl.StatectlError, "batch"),
    ("negative slot", lambda s: s.restore("good", model="m", slot=-1), statectl.InvalidInputError, "batch slot index"),
    ("negative slot in slots", lambda s: s.restore("good", model="m", slots=[0, -1]), statectl.InvalidInputError, "got -1"),
    ("slot not an int", lambda s: s.restore("good", model="m", slot="1"), statectl.InvalidInputError, "batch slot index"),
]


@pytest.mark.parametrize("label,call,error,words", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_bad_input_raises_and_changes_nothing(seeded, store_path, label, call, error, words):
    store, before = seeded
    with pytest.raises(error) as caught:
        call(store)
    assert words in str(caught.value), str(caught.value)
    assert isinstance(caught.value, statectl.StatectlError)
    assert folder_digest(store_path) == before, f"{label} changed the store"


def test_an_ambiguous_prefix_names_its_candidates(store):
    rng = np.random.default_rng(8)
    ids = store.put_states(random_state(rng, 300, [2]))
    # Among 300 ids two share their first 4 hex digits with near certainty;
    # find such a pair and ask for that prefix.
    prefixes = {}
    for sid in ids:
        prefixes.setdefault(sid[:4], []).append(sid)
    shared = next(p for p, group in prefixes.items() if len(group) > 1)
    with pytest.raises(statectl.AmbiguousError) as caught:
        store.get_state(shared)
    assert shared in str(caught.value)


def test_a_closed_store_raises_and_can_be_reopened(store_path):
    s = statectl.Store(store_path, create=True)
    sid = s.put_state({"l0.h": H})
    s.close()
    assert s.closed
    for call in (lambda: s.get_state(sid), lambda: s.put_state({"l0.h": H}), lambda: s.log(), lambda: s.close() or s.tags()):
        with pytest.raises(statectl.ClosedStoreError, match="closed"):
            call()
    with statectl.Store(store_path) as again:
        assert again.get_state(sid).id == sid


def test_a_missing_store_is_refused_unless_created(tmp_path):
    with pytest.raises(statectl.NoStoreError, match="create=True"):
        statectl.Store(tmp_path / "nothing-here")
    assert not (tmp_path / "nothing-here").exists()


def test_a_newer_store_is_refused_and_left_alone(store_path):
    statectl.Store(store_path, create=True).close()
    with sqlite3.connect(store_path / "statectl.db") as db:
        db.execute("PRAGMA user_version = 99")
    before = folder_digest(store_path)
    with pytest.raises(statectl.StoreTooNewError, match="newer"):
        statectl.Store(store_path)
    assert folder_digest(store_path) == before
