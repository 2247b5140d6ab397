"""A Store kept open for hours (an actor, a learner) holds no more than it
needs: packs that another process's gc deleted are let go."""

from __future__ import annotations

import os

import numpy as np
import pytest

import statectl

from conftest import Cli, random_state


def _descriptors_of_deleted_files() -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.endswith("(deleted)") and ".pack" in target:
            found.append(target)
    return found


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to list open files")
def test_a_long_lived_store_lets_go_of_packs_gc_deleted(store, store_path):
    """A Store open for hours must not hold the space of packs that another
    process's gc compacted away."""
    rng = np.random.default_rng(11)
    cli = Cli(store_path)
    store.put_states(random_state(rng, 40, [256]), tag_prefix="keep/")
    for cycle in range(5):
        store.put_states(random_state(rng, 200, [256]))
        store.get_states([f"keep/{i}" for i in range(40)])
        cli.run("gc", "--keep-events-since", "0s")
        store.get_states([f"keep/{i}" for i in range(40)])
        assert _descriptors_of_deleted_files() == [], cycle


def test_gc_bounds_a_replay_buffer_of_tagged_states(store):
    """An actor loop that adds tagged states and runs gc with a retention
    rule keeps the newest states only; a dry run changes nothing."""
    rng = np.random.default_rng(2)
    for round in range(6):
        tensors = {"l0.h": rng.standard_normal((4, 3)).astype(np.float32)}
        store.put_states(tensors, tag_prefix=f"buf/{round:03d}-")
        report = store.gc(keep_newest=8, prefix="buf/")
        assert isinstance(report, statectl.GcReport)
    names = sorted(t.tag for t in store.tags() if t.tag.startswith("buf/"))
    assert names == [f"buf/{r:03d}-{k}" for r in (4, 5) for k in range(4)]
    add = {"l0.h": rng.standard_normal((4, 3)).astype(np.float32)}
    store.put_states(add, tag_prefix="buf/006-")
    dry = store.gc(keep_newest=8, prefix="buf/", dry_run=True)
    assert dry.retention["tags_dropped"] == 4 and len(dry.states) == 4
    assert len([t for t in store.tags() if t.tag.startswith("buf/")]) == 12
    with pytest.raises(statectl.InvalidInputError):
        store.gc(keep_newest=-1, prefix="buf/")
    with pytest.raises(statectl.StatectlError, match="go together"):
        store.gc(keep_newest=3)
    assert store.verify().ok
