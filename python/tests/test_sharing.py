"""The Python package on a shared store (PostgreSQL): push, pull, a push in
the background while the actor keeps writing, and errors. Needs the server
that `bash scripts/test` starts ($STATECTL_TEST_POSTGRES); without one the
tests are skipped, saying why."""

import os
import subprocess
import uuid

import numpy as np
import pytest

import statectl

ADMIN = os.environ.get("STATECTL_TEST_POSTGRES")
if ADMIN is None and os.environ.get("STATECTL_REQUIRE_POSTGRES") == "1":
    raise RuntimeError("STATECTL_REQUIRE_POSTGRES=1 but STATECTL_TEST_POSTGRES is not set")
pytestmark = pytest.mark.skipif(
    ADMIN is None,
    reason="no PostgreSQL server (bash scripts/test starts one; or set STATECTL_TEST_POSTGRES)",
)
BIN = os.environ.get("STATECTL_BIN", "statectl")


@pytest.fixture
def shared_url():
    """A fresh database with a shared store in it."""
    name = f"py_{uuid.uuid4().hex[:12]}"
    psql = _psql()
    subprocess.run([psql, "-q", ADMIN, "-c", f"CREATE DATABASE {name}"], check=True)
    url = ADMIN.rsplit("/", 1)[0] + "/" + name
    subprocess.run([BIN, "-q", "init", url], check=True)
    return url


def _psql() -> str:
    for base in sorted(os.listdir("/usr/lib/postgresql"), reverse=True) if os.path.isdir("/usr/lib/postgresql") else []:
        candidate = f"/usr/lib/postgresql/{base}/bin/psql"
        if os.path.exists(candidate):
            return candidate
    return "psql"


def _states(n: int, seed: int) -> dict:
    """n one-slot LSTM-64 states, one per row."""
    rng = np.random.default_rng(seed)
    return {
        "l0.h": rng.standard_normal((n, 64), dtype=np.float32),
        "l0.c": rng.standard_normal((n, 64), dtype=np.float32),
    }


def test_push_then_pull_gives_the_same_states_bit_for_bit(tmp_path, shared_url):
    actor = statectl.Store(tmp_path / "actor", create=True)
    ids = actor.put_states(_states(50, 0), tags=[f"buf/{i}" for i in range(50)])
    first = actor.push(shared_url)
    assert first.slots_sent == 50 and first.tags_changed == 50
    again = actor.push(shared_url, retry=True)
    assert again.slots_sent == 0 and again.slot_bytes_sent == 0 and again.events_sent == 0
    assert again.retries == 0

    learner = statectl.Store(tmp_path / "learner", create=True)
    pulled = learner.pull(shared_url, tags="buf/*")
    assert pulled.states_received == 50
    got = learner.get_states([f"buf/{i}" for i in range(50)])
    want = actor.get_states(ids)
    assert got.ids == want.ids
    for name in ("l0.h", "l0.c"):
        assert np.array_equal(got[name].view(np.uint32), want[name].view(np.uint32))
    assert learner.verify().ok
    # Its log says which store wrote each pulled event; the actor's own
    # events have no origin.
    copy = statectl.Store(tmp_path / "copy", create=True)
    copy.pull(shared_url)
    theirs = copy.log(all=True).events
    assert theirs and all(e.origin is not None and e.origin["event"] >= 1 for e in theirs)
    assert all(e.origin is None for e in actor.log(all=True).events)


def test_a_push_in_the_background_lets_the_actor_keep_writing(tmp_path, shared_url):
    actor = statectl.Store(tmp_path / "actor", create=True)
    actor.put_states(_states(200, 1), tags=[f"a/{i}" for i in range(200)])
    future = actor.push_in_background(shared_url)
    # The actor's loop goes on while the push runs on its own connection.
    actor.put_states(_states(20, 2), tags=[f"b/{i}" for i in range(20)])
    report = future.result(timeout=120)
    assert report.tags_changed >= 200
    # The next push sends what came after.
    later = actor.push_in_background(shared_url).result(timeout=120)
    actor.close()
    learner = statectl.Store(tmp_path / "learner", create=True)
    learner.pull(shared_url)
    names = {t.tag for t in learner.tags()}
    assert {f"a/{i}" for i in range(200)} <= names
    assert {f"b/{i}" for i in range(20)} <= names
    assert later.slots_already_there >= 200


def test_errors_are_one_line_and_never_show_the_password(tmp_path):
    store = statectl.Store(tmp_path / "s", create=True)
    store.put_states(_states(1, 3), tags=["x"])
    with pytest.raises(statectl.StatectlError) as caught:
        store.push("postgres://ann:s3cret-pw@127.0.0.1:1/replay")
    text = str(caught.value)
    assert "s3cret" not in text and "ann:***@" in text and "\n" not in text
    failed = store.push_in_background("postgres://ann:s3cret-pw@127.0.0.1:1/replay")
    with pytest.raises(statectl.StatectlError):
        failed.result(timeout=60)
    store.close()
    with pytest.raises(statectl.ClosedStoreError):
        store.push("postgres://ann@127.0.0.1:1/replay")


def test_the_readme_actor_and_learner_snippet_runs(tmp_path, shared_url, monkeypatch):
    from test_readme import readme_python_block

    block = readme_python_block("an actor pushes in the background")
    monkeypatch.chdir(tmp_path)
    states = _states(4, 9)
    namespace = {"url": shared_url, "h": states["l0.h"], "c": states["l0.c"]}
    exec(compile(block, "README.md", "exec"), namespace)
    start = namespace["start"]
    assert len(start.ids) == 4
    assert np.array_equal(start["l0.h"].view(np.uint32), states["l0.h"].view(np.uint32))
    namespace["actor"].close()


def test_a_learner_reads_states_straight_from_the_shared_store(tmp_path, shared_url):
    actor = statectl.Store(tmp_path / "actor", create=True)
    states = _states(30, 4)
    ids = actor.put_states(states, tags=[f"buf/{i}" for i in range(30)])
    actor.push(shared_url)
    with statectl.SharedStore(shared_url) as shared:
        refs = ["buf/7", "buf/3", ids[7], "buf/29"]
        batch = shared.get_states(refs)
        assert batch.ids == [ids[7], ids[3], ids[7], ids[29]]
        for name in ("l0.h", "l0.c"):
            want = states[name][[7, 3, 7, 29]]
            assert np.array_equal(batch[name].view(np.uint32), want.view(np.uint32))
        local = actor.get_states(refs)
        assert local.ids == batch.ids
        with pytest.raises(statectl.StatectlError, match="no tag 'nope'"):
            shared.get_states(["buf/1", "nope"])
    with pytest.raises(statectl.StatectlError):
        shared.get_states(["buf/1"])
    with pytest.raises(statectl.StatectlError, match="statectl init"):
        statectl.SharedStore(shared_url.rsplit("/", 1)[0] + "/postgres")


def test_an_actor_writes_straight_to_the_shared_store_with_store_url(tmp_path, shared_url, monkeypatch):
    states = _states(8, 11)
    shared = statectl.Store(shared_url)
    assert isinstance(shared, statectl.SharedStore)
    ids = shared.put_states(states, tag_prefix="actor3/")
    # The ids a local store gives the same rows.
    local = statectl.Store(tmp_path / "local", create=True)
    assert ids == local.put_states(states)
    batch = shared.get_states([f"actor3/{i}" for i in (5, 0)])
    assert batch.ids == [ids[5], ids[0]]
    assert np.array_equal(batch["l0.c"].view(np.uint32), states["l0.c"][[5, 0]].view(np.uint32))
    whole = shared.put_state(states, tag="whole")
    assert whole == local.put_state(states)
    assert shared.get_state("whole").id == whole
    # Acknowledged is there for another connection; a second write of the
    # same rows is harmless; verify is clean.
    with statectl.SharedStore(shared_url) as learner:
        assert learner.get_states(["actor3/7"]).ids == [ids[7]]
    assert shared.put_states(states, tags=[f"actor3/{i}" for i in range(8)]) == ids
    report = shared.verify()
    assert report["ok"] is True, report
    assert report["report"]["states"] == 9
    # Refused, changing nothing: a tag that names another state, NaN, one
    # name for two rows.
    other = _states(8, 12)
    with pytest.raises(statectl.StatectlError, match="names another state.*--force"):
        shared.put_states(other, tag_prefix="actor3/")
    bad = dict(other, **{"l0.h": np.full((8, 64), np.nan, dtype=np.float32)})
    with pytest.raises(statectl.StatectlError, match="NaN"):
        shared.put_states(bad, tag_prefix="fresh/")
    with pytest.raises(statectl.StatectlError, match="slots 0 and 1"):
        shared.put_states(other, tags=["same"] * 8)
    assert shared.get_states(["actor3/0"]).ids == [ids[0]]
    with pytest.raises(statectl.StatectlError, match="no tag 'fresh/0'"):
        shared.get_states(["fresh/0"])
    # Forced, the tags move.
    moved = shared.put_states(other, tag_prefix="actor3/", force=True)
    assert shared.get_states(["actor3/0"]).ids == [moved[0]]
    shared.close()
    # $STATECTL_STORE naming the shared store opens it too.
    monkeypatch.setenv("STATECTL_STORE", shared_url)
    with statectl.Store() as again:
        assert again.get_state("whole").id == whole


def test_the_guides_direct_write_snippet_runs(shared_url):
    from test_readme import readme_python_block

    block = readme_python_block("From Python, `statectl.Store(url)` opens the shared store")
    states = _states(4, 13)
    namespace = {"url": shared_url, "h": states["l0.h"], "c": states["l0.c"]}
    exec(compile(block, "docs/shared-store.md", "exec"), namespace)
    batch = namespace["batch"]
    assert batch.ids == [namespace["ids"][0], namespace["ids"][3]]
    assert np.array_equal(batch["l0.h"].view(np.uint32), states["l0.h"][[0, 3]].view(np.uint32))
    namespace["shared"].close()


def test_a_read_cache_serves_repeated_reads_and_is_never_stale(shared_url):
    states = _states(16, 21)
    refs = [f"buf/{i}" for i in range(8)]
    with statectl.SharedStore(shared_url, cache_bytes=1 << 20) as learner:
        ids = learner.put_states(states, tag_prefix="buf/")
        first = learner.get_states(refs)
        assert learner.cache_info()["slot_misses"] == 8
        again = learner.get_states(refs)
        info = learner.cache_info()
        assert (info["slot_hits"], info["slot_misses"]) == (8, 8), info
        assert again.ids == first.ids == ids[:8]
        assert np.array_equal(again["l0.h"].view(np.uint32), states["l0.h"][:8].view(np.uint32))
        # A tag moved on the server: the next read follows it (tags are
        # always asked of the server).
        with statectl.SharedStore(shared_url) as actor:
            moved = actor.put_states(_states(1, 22), tags=["buf/0"], force=True)
        assert learner.get_states(["buf/0"]).ids == moved
        # Bounded: a budget of a few slots holds no more than it, and reads
        # as before.
        with statectl.SharedStore(shared_url, cache_bytes=2000) as small:
            for _ in range(2):
                assert small.get_states(refs[1:]).ids == ids[1:8]
            info = small.cache_info()
            assert info["bytes"] <= 2000 and 0 < info["slots"] < 7, info
        # Slot bytes damaged on the server: what the cache holds was checked
        # when read, and is still served; a reader without a cache refuses.
        subprocess.run([_psql(), "-q", shared_url, "-c",
                        "UPDATE slots SET bytes = set_byte(bytes, 0, get_byte(bytes, 0) # 1)"], check=True)
        cached = learner.get_states(refs[1:])
        assert np.array_equal(cached["l0.c"].view(np.uint32), states["l0.c"][1:8].view(np.uint32))
    with statectl.SharedStore(shared_url) as uncached:
        assert uncached.cache_info() is None
        with pytest.raises(statectl.StatectlError, match="does not hash to its id"):
            uncached.get_states(refs[1:])
    with pytest.raises(statectl.InvalidInputError, match="cache_bytes"):
        statectl.SharedStore(shared_url, cache_bytes=-1)


def test_a_learner_burns_in_stacks_and_splits_on_the_shared_store(tmp_path, shared_url):
    """The same calls on a local store and on the shared store it pushed to
    give the same ids, tags and states; a refused call changes nothing."""
    subprocess.run([BIN, "--store", str(tmp_path / "actor"), "-q", "demo"], check=True)
    local = statectl.Store(tmp_path / "actor")
    local.push(shared_url)
    x = np.linspace(0, 1, 6 * 4, dtype=np.float32).reshape(6, 4, 1)
    seqs = [f"seq/{i}" for i in range(6)]
    with statectl.SharedStore(shared_url) as shared:
        for store in (local, shared):
            assert store.split("case1/end", "seq/") == local.get_states(seqs).ids
        here = local.burn_in(seqs, x, model="demo", per_slot=True, tag_prefix="b/")
        there = shared.burn_in(seqs, x, model="demo", per_slot=True, tag_prefix="b/")
        assert there == here
        assert [b.tag for b in there] == [f"b/seq/{i}" for i in range(6)]
        assert shared.stack(["b/*"], tag="batch") == local.stack(["b/*"], tag="batch")
        got, want = shared.get_states(["batch"]), local.get_states(["batch"])
        for name in ("l0.h", "l0.c"):
            assert np.array_equal(got[name].view(np.uint32), want[name].view(np.uint32))
        with pytest.raises(statectl.StatectlError, match="--force"):
            shared.stack(["case2/end"], tag="batch")
        assert shared.get_states(["batch"]).ids == want.ids
        with pytest.raises(statectl.StatectlError, match="no tag 'nope'"):
            shared.burn_in(["nope"], x[:1], model="demo")
        for store in (local, shared):
            assert store.snapshot("kept", "batch") == want.ids[0]
            deleted = store.delete_tags("seq/*")
            assert [d.tag for d in deleted] == seqs
            with pytest.raises(statectl.StatectlError, match="nope"):
                store.delete_tags("b/seq/0", "nope")
        assert [(t.tag, t.state) for t in shared.tags()] == [(t.tag, t.state) for t in local.tags()]
        here, there = (s.diff("case1/end", "batch", inputs=x, model="demo") for s in (local, shared))
        assert there.to_dict() == here.to_dict() and there.different
        assert shared.diff("zeros", "case1/start", model="demo").to_dict() == local.diff("zeros", "case1/start").to_dict()
        journal = shared.log(limit=3).events
        assert [e.kind for e in journal] == ["untag", "untag", "untag"]
        assert all(e.origin is not None for e in journal)
        assert [e.kind for e in shared.log(kind="burn-in").events] == ["burn-in"] * 6
        assert shared.verify()["ok"]


def test_the_guides_learner_snippet_runs(tmp_path, shared_url):
    from test_readme import readme_python_block

    subprocess.run([BIN, "--store", str(tmp_path / "actor"), "-q", "demo"], check=True)
    statectl.Store(tmp_path / "actor").push(shared_url)
    rng = np.random.default_rng(17)
    with statectl.SharedStore(shared_url) as shared:
        h, c = (rng.standard_normal((4, 16), dtype=np.float32) for _ in range(2))
        shared.put_states({"l0.h": h, "l0.c": c}, tag_prefix="buf/host8/")
        block = readme_python_block("From Python, `SharedStore` has `burn_in`")
        namespace = {"shared": shared, "np": np}
        exec(compile(block, "docs/shared-store.md", "exec"), namespace)
        assert [b.tag for b in namespace["burned"]] == ["learner/b/buf/host8/0", "learner/b/buf/host8/3"]
        assert shared.get_states(["learner/batch8"]).ids == [namespace["batch_id"]]
        assert shared.verify()["ok"]


def test_predict_restore_reset_and_audit_on_the_shared_store(tmp_path, shared_url):
    """The same stream calls on a local store and on the shared store it
    pushed to give the same states and outputs bit for bit; of two writers
    that start from one HEAD, one records and the other is told the stream
    moved (or retries); the shared store audits what it recorded."""
    subprocess.run([BIN, "--store", str(tmp_path / "actor"), "-q", "demo"], check=True)
    local = statectl.Store(tmp_path / "actor")
    local.push(shared_url)
    x = np.linspace(0, 1, 6 * 3, dtype=np.float32).reshape(6, 3, 1)
    # `Store(url)` opens a shared store as `SharedStore(url)` does.
    with statectl.Store(shared_url) as shared, statectl.SharedStore(shared_url) as other:
        assert isinstance(shared, statectl.SharedStore)
        runs = []
        for store in (local, shared):
            store.restore("case1/end")
            first = store.predict(x, tag="sh/first")
            again = store.predict(x)
            assert again.state_before == first.state_after
            store.restore("HEAD~1", slot=2)
            broadcast = store.predict(x)
            assert store.reset(batch_size=6) == local.get_states(["case4/start"]).ids[0]
            runs.append((first, again, broadcast))
        for here, there in zip(*runs):
            assert there.state_after == here.state_after and there.output == here.output
            assert np.array_equal(there.outputs.view(np.uint32), here.outputs.view(np.uint32))
        assert shared.get_states(["sh/first"]).ids == [runs[0][0].state_after]

        # Two writers on one stream at once: each prediction records whole
        # or is refused as a moved stream (recording nothing); with retry
        # every one lands; the stream's chain stays unbroken.
        import threading

        before = len(shared.log(model="demo").events)
        outcomes = {"recorded": 0, "moved": 0}
        lock = threading.Lock()

        def writer(store, retry):
            for _ in range(10):
                try:
                    store.predict(x, retry=retry)
                    kind = "recorded"
                except statectl.StreamMovedError:
                    kind = "moved"
                with lock:
                    outcomes[kind] += 1

        for retry in (False, True):
            threads = [threading.Thread(target=writer, args=(s, retry)) for s in (shared, other)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        print("two writers on one stream:", outcomes)
        assert outcomes["recorded"] + outcomes["moved"] == 40 and outcomes["recorded"] >= 20
        moves = shared.log(model="demo").events
        assert len(moves) - before == outcomes["recorded"]
        for newer, older in zip(moves, moves[1:]):
            assert newer.state_before == older.state_after
        report = shared.audit()
        assert report.ok and report.reproduced == len(report.events) > 0
        assert shared.audit(train=True).training[0].status == "reproduced"


def test_the_guides_predict_snippet_runs(tmp_path, shared_url):
    from test_readme import readme_python_block

    subprocess.run([BIN, "--store", str(tmp_path / "actor"), "-q", "demo"], check=True)
    statectl.Store(tmp_path / "actor").push(shared_url)
    with statectl.SharedStore(shared_url) as shared:
        block = readme_python_block("From Python, `SharedStore` has `predict`")
        namespace = {"shared": shared, "np": np}
        exec(compile(block, "docs/shared-store.md", "exec"), namespace)
        prediction = namespace["prediction"]
        assert prediction.state_before == shared.get_states(["case1/end"]).ids[0]
        assert shared.log(model="demo", limit=1).events[0].state_after == prediction.state_after
