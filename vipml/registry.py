"""A local model registry: one folder per bundle version, a ``champion`` pointer, a lock.

Layout of ``root``::

    .lock               flock'ed by the process that publishes or promotes (holds its pid)
    .tmp-<pid>-<hex>/   a bundle being published (ignored by readers, removed when stale)
    <version>/          a published bundle; the version is content-addressed
    champion            the champion's version id, replaced atomically

Writes are atomic: a bundle is written (and fsync'ed) in a temporary sibling folder and then
renamed into place; the champion pointer is written to a temporary file and ``os.replace``'d.
A process killed at any point leaves either the old state or the new one, plus at most a
temporary folder that :meth:`Registry.versions` ignores and the next publish removes.
Versions are content-addressed (see :func:`bundle_version`), so ids are not chronological:
:meth:`Registry.versions` sorts them by id, and a bundle's ``created_at`` says when it was made.
The lock uses ``fcntl.flock`` (POSIX only) on a local file system; it is not meant for NFS.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from vipml.bundle import MANIFEST, Bundle, load_bundle
from vipml.errors import BundleError, RegistryBusyError

__all__ = ["Registry", "bundle_version"]

logger = logging.getLogger(__name__)

CHAMPION = "champion"
LOCK = ".lock"
_TMP_PREFIX = ".tmp-"
_VERSION = re.compile(r"^[0-9a-f]{12}$")


def bundle_version(path: str | os.PathLike[str]) -> str:
    """Content-addressed version id of a bundle: the first 12 hex digits of sha256(manifest).

    The manifest lists the sha256 of every file plus the metadata and library versions, so
    the same inputs give the same version and any change gives another.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from vipml.bundle import save_bundle
    >>> tmp = tempfile.TemporaryDirectory()
    >>> a = save_bundle(pathlib.Path(tmp.name) / "a", models={}, metadata={"cutoff": "2024-01-31"})
    >>> b = save_bundle(pathlib.Path(tmp.name) / "b", models={}, metadata={"cutoff": "2024-01-31"})
    >>> bundle_version(a) == bundle_version(b), len(bundle_version(a))
    (True, 12)
    >>> tmp.cleanup()
    """
    manifest = Path(path) / MANIFEST
    if not manifest.is_file():
        raise BundleError(f"No bundle at {path}: {MANIFEST} is missing.")
    return hashlib.sha256(manifest.read_bytes()).hexdigest()[:12]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    for root, _dirs, files in os.walk(path):
        for name in files:
            fd = os.open(Path(root) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(root))


class Registry:
    """Versioned bundles in a folder, with an atomically switched champion.

    Parameters
    ----------
    root : path-like, default "models"
        Registry folder, created on first write.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from vipml.bundle import save_bundle
    >>> tmp = tempfile.TemporaryDirectory()
    >>> registry = Registry(pathlib.Path(tmp.name) / "models")
    >>> registry.champion() is None
    True
    >>> version = registry.publish(
    ...     lambda folder: save_bundle(folder, models={}, metadata={"cutoff": "2024-01-31"}))
    >>> registry.versions() == [version]
    True
    >>> registry.promote(version)
    >>> registry.champion() == version
    True
    >>> registry.load().metadata
    {'cutoff': '2024-01-31'}
    >>> tmp.cleanup()
    """

    def __init__(self, root: str | os.PathLike[str] = "models") -> None:
        self.root = Path(root)
        self._held = False

    def __repr__(self) -> str:
        return f"Registry(root={str(self.root)!r})"

    # -- lock ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the registry's write lock (non-blocking ``flock`` on ``root/.lock``).

        Raises
        ------
        RegistryBusyError
            If another process (or another open handle) holds the lock; the message names
            its pid. The lock is released by the kernel when its holder dies.

        Notes
        -----
        Re-entrant for this object: a :meth:`publish` or :meth:`promote` inside ``with
        registry.lock():`` runs under the lock already held (how ``vipml train`` keeps the
        registry locked from the start of training to the publication of its bundle).
        """
        if self._held:
            yield
            return
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / LOCK
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
                raise RegistryBusyError(
                    f"Registry {self.root} is busy: lock held by pid {holder} ({path}). "
                    "Another training or promotion is running; wait for it to finish and "
                    "retry (the lock is released automatically when that process exits)."
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            self._held = True
            try:
                yield
            finally:
                self._held = False
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    # -- reading ------------------------------------------------------------------------------

    def versions(self) -> list[str]:
        """Published versions, sorted by id (temporary and incomplete folders are ignored)."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if p.is_dir() and _VERSION.match(p.name) and (p / MANIFEST).is_file()
        )

    def path(self, version: str) -> Path:
        """Folder of a published version; ``"champion"`` means the current champion.

        Raises
        ------
        BundleError
            Unknown version, or no champion yet.
        """
        if version == CHAMPION:
            champion = self.champion()
            if champion is None:
                raise BundleError(
                    f"Registry {self.root} has no champion yet; promote a version first."
                )
            version = champion
        if version not in self.versions():
            raise BundleError(
                f"Registry {self.root} has no version {version!r}; "
                f"known versions: {self.versions()}."
            )
        return self.root / version

    def champion(self) -> str | None:
        """The champion's version id, or None when nothing was promoted yet."""
        pointer = self.root / CHAMPION
        if not pointer.is_file():
            return None
        version = pointer.read_text(encoding="ascii", errors="replace").strip()
        if not _VERSION.match(version) or not (self.root / version / MANIFEST).is_file():
            raise BundleError(
                f"{pointer} points to {version!r}, which is not a published version. "
                "Promote a valid version again."
            )
        return version

    def load(self, version: str = CHAMPION, *, allow_pickle: bool = True) -> Bundle:
        """Load a version (default: the champion) with :func:`vipml.bundle.load_bundle`."""
        return load_bundle(self.path(version), allow_pickle=allow_pickle)

    # -- writing ------------------------------------------------------------------------------

    def _remove_stale(self) -> None:
        """Remove temporary folders and files left by killed writers (we hold the lock)."""
        for p in self.root.iterdir():
            if p.name.startswith(_TMP_PREFIX) or p.name.startswith(f".{CHAMPION}.tmp"):
                logger.info("removing %s left by an interrupted write", p)
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)

    def publish(self, source: str | os.PathLike[str] | Callable[[Path], Any]) -> str:
        """Publish a bundle atomically and return its version id.

        Parameters
        ----------
        source : path-like or callable
            An existing bundle folder (copied), or a builder ``f(folder)`` that writes a
            bundle into the given empty folder, e.g. ``lambda f: save_bundle(f, ...)``.

        Returns
        -------
        str
            The content-addressed version (see :func:`bundle_version`). Publishing the same
            bundle again returns the same version and changes nothing (unless the published
            copy was damaged, which is then replaced by the new, verified one).

        Raises
        ------
        BundleError
            If the lock is held by another process, or the bundle does not verify.
        """
        with self.lock():
            self._remove_stale()
            tmp = self.root / f"{_TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
            try:
                if callable(source):
                    tmp.mkdir()
                    source(tmp)
                else:
                    load_bundle(source, allow_pickle=False)  # refuse a bad source early
                    shutil.copytree(source, tmp, copy_function=shutil.copyfile)
                load_bundle(tmp, allow_pickle=False)
                version = bundle_version(tmp)
                target = self.root / version
                if target.exists():
                    try:
                        load_bundle(target, allow_pickle=False)
                    except BundleError as exc:  # a damaged copy: replace it with the new one
                        logger.warning("replacing damaged version %s: %s", version, exc)
                        aside = self.root / f"{_TMP_PREFIX}{os.getpid()}-damaged-{version}"
                        os.rename(target, aside)
                        shutil.rmtree(aside, ignore_errors=True)
                    else:
                        logger.info("version %s already published", version)
                        shutil.rmtree(tmp)
                        return version
                _fsync_tree(tmp)
                os.rename(tmp, target)
                _fsync_dir(self.root)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            logger.info("published version %s to %s", version, self.root)
            return version

    def promote(self, version: str) -> None:
        """Make ``version`` the champion, switching the pointer atomically.

        Raises
        ------
        BundleError
            Unknown version, a bundle that does not verify, or the lock held elsewhere.
        """
        with self.lock():
            folder = self.path(version)
            load_bundle(folder, allow_pickle=False)
            tmp = self.root / f".{CHAMPION}.tmp-{os.getpid()}"
            with tmp.open("w", encoding="ascii") as handle:
                handle.write(f"{version}\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.root / CHAMPION)
            _fsync_dir(self.root)
            logger.info("champion of %s is now %s", self.root, version)
