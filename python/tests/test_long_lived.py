"""A Store kept open for hours (an actor, a learner) holds no more than it
needs: packs that another process's gc deleted are let go."""

from __future__ import annotations

import os

import numpy as np
import pytest

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
