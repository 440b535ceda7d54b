from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from vipml.bundle import load_bundle, save_bundle
from vipml.errors import BundleError
from vipml.registry import Registry, bundle_version


def _builder(cutoff: str = "2024-01-31", **extra):
    def build(folder: Path) -> None:
        save_bundle(
            folder,
            models={"weights": np.arange(10.0), **extra},
            metadata={"cutoff": cutoff, "metrics": {"mae": 0.25}},
            params_json={"scaler": {"mean": 1.5, "scale": [0.1, 0.2]}},
        )

    return build


def _wait_for(path: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout} s")
        time.sleep(0.02)


def test_empty_registry(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "models")
    assert registry.versions() == []
    assert registry.champion() is None
    with pytest.raises(BundleError, match="no champion yet"):
        registry.load()
    with pytest.raises(BundleError, match="no version 'abc'"):
        registry.promote("abc")


def test_publish_promote_load(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "models")
    v1 = registry.publish(_builder("2024-01-31"))
    v2 = registry.publish(_builder("2024-02-29"))
    assert v1 != v2 and len(v1) == 12
    assert registry.versions() == sorted([v1, v2])
    assert registry.path(v1) == tmp_path / "models" / v1
    registry.promote(v1)
    assert registry.champion() == v1
    registry.promote(v2)
    assert registry.champion() == v2
    assert (tmp_path / "models" / "champion").read_text() == f"{v2}\n"
    assert registry.load().metadata["cutoff"] == "2024-02-29"
    assert registry.load(v1, allow_pickle=False).models == {}
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == sorted(
        [".lock", "champion", v1, v2]
    )


def test_publish_is_idempotent_and_content_addressed(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "models")
    v1 = registry.publish(_builder())
    assert registry.publish(_builder()) == v1
    outside = tmp_path / "outside"
    _builder()(outside)
    assert bundle_version(outside) == v1
    assert registry.publish(outside) == v1
    assert registry.versions() == [v1]
    for name in ("manifest.json", "objects.joblib"):
        assert (registry.path(v1) / name).read_bytes() == (outside / name).read_bytes()


def test_republish_repairs_a_damaged_version(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "models")
    version = registry.publish(_builder())
    registry.promote(version)
    (registry.path(version) / "objects.joblib").write_bytes(b"x" * 10)
    with pytest.raises(BundleError, match="truncated"):
        registry.load()
    assert registry.publish(_builder()) == version
    assert registry.load().models["weights"].tolist() == list(range(10))
    assert not any(p.name.startswith(".tmp-") for p in registry.root.iterdir())


def test_publish_refuses_a_bad_bundle(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "models")
    source = tmp_path / "src"
    _builder()(source)
    (source / "foreign.txt").write_text("x")
    with pytest.raises(BundleError, match="foreign.txt"):
        registry.publish(source)

    def broken(folder: Path) -> None:
        _builder()(folder)
        (folder / "objects.joblib").write_bytes(b"garbage")

    with pytest.raises(BundleError, match="objects.joblib is truncated"):
        registry.publish(broken)
    assert registry.versions() == []
    assert [p.name for p in (tmp_path / "models").iterdir()] == [".lock"]


def test_leftover_temporary_folder_ignored_then_cleaned(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "models")
    v1 = registry.publish(_builder())
    registry.promote(v1)
    leftover = tmp_path / "models" / ".tmp-999999-deadbeef"
    leftover.mkdir()
    (leftover / "objects.joblib").write_bytes(b"half")
    (tmp_path / "models" / ".champion.tmp-999999").write_text("0123")
    half_named = tmp_path / "models" / "0123456789ab"  # no manifest: not a version
    half_named.mkdir()
    assert registry.versions() == [v1]
    assert registry.champion() == v1
    v2 = registry.publish(_builder("2024-02-29"))
    assert not leftover.exists()
    assert not (tmp_path / "models" / ".champion.tmp-999999").exists()
    assert registry.versions() == sorted([v1, v2])


def test_corrupt_champion_pointer(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "models")
    registry.publish(_builder())
    (tmp_path / "models" / "champion").write_text("ffffffffffff\n")
    with pytest.raises(BundleError, match="not a published version"):
        registry.champion()


def test_lock_refuses_a_second_writer_in_process(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "models")
    v1 = registry.publish(_builder())
    other = Registry(tmp_path / "models")
    with registry.lock():
        with pytest.raises(BundleError, match=f"lock held by pid {os.getpid()}"):
            other.publish(_builder("2024-02-29"))
        with pytest.raises(BundleError, match="lock held by pid"):
            other.promote(v1)
    other.promote(v1)  # released
    assert registry.champion() == v1


_HOLD_LOCK = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from vipml.registry import Registry

    with Registry(sys.argv[1]).lock():
        Path(sys.argv[2]).write_text("locked")
        time.sleep(60)
    """
)


def test_lock_held_by_another_process(tmp_path: Path) -> None:
    root, ready = tmp_path / "models", tmp_path / "ready"
    child = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(root), str(ready)])
    try:
        _wait_for(ready)
        with pytest.raises(BundleError, match=rf"lock held by pid {child.pid} \("):
            Registry(root).publish(_builder())
    finally:
        child.kill()
        child.wait(timeout=10)
    # the kernel releases a dead holder's lock
    version = Registry(root).publish(_builder())
    assert Registry(root).versions() == [version]


_PUBLISH_BIG = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from vipml.bundle import save_bundle
    from vipml.registry import Registry

    root, ready, pause = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])

    def build(folder):
        save_bundle(folder, models={"blob": os.urandom(30_000_000)}, metadata={"big": True})
        ready.write_text("written")
        time.sleep(pause)

    ready.with_suffix(".start").write_text("start")
    Registry(root).publish(build)
    """
)


def _assert_usable(registry: Registry, champion: str) -> None:
    assert registry.champion() == champion
    assert registry.load(allow_pickle=False).metadata["cutoff"] == "2024-01-31"
    for version in registry.versions():
        load_bundle(registry.path(version), allow_pickle=False)


def test_sigkill_while_publishing_leaves_registry_usable(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "models")
    champion = registry.publish(_builder())
    registry.promote(champion)
    ready = tmp_path / "ready"
    child = subprocess.Popen(
        [sys.executable, "-c", _PUBLISH_BIG, str(registry.root), str(ready), "60"]
    )
    try:
        _wait_for(ready)  # the big bundle is written aside, not yet renamed
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    leftovers = [p for p in registry.root.iterdir() if p.name.startswith(".tmp-")]
    assert len(leftovers) == 1
    assert registry.versions() == [champion]
    _assert_usable(registry, champion)
    new = registry.publish(_builder("2024-02-29"))  # lock free, leftover cleaned
    assert not any(p.name.startswith(".tmp-") for p in registry.root.iterdir())
    assert registry.versions() == sorted([champion, new])
    _assert_usable(registry, champion)


@pytest.mark.parametrize("delay", [0.05, 0.3])
def test_sigkill_at_any_moment_leaves_registry_usable(tmp_path: Path, delay: float) -> None:
    registry = Registry(tmp_path / "models")
    champion = registry.publish(_builder())
    registry.promote(champion)
    ready = tmp_path / "ready"
    child = subprocess.Popen(
        [sys.executable, "-c", _PUBLISH_BIG, str(registry.root), str(ready), "0"]
    )
    try:
        _wait_for(ready.with_suffix(".start"))
        time.sleep(delay)  # somewhere in writing, hashing, fsync or rename
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    assert champion in registry.versions()
    _assert_usable(registry, champion)  # every listed version verifies
    new = registry.publish(_builder("2024-02-29"))
    assert not any(p.name.startswith(".tmp-") for p in registry.root.iterdir())
    assert new in registry.versions()
    _assert_usable(registry, champion)
