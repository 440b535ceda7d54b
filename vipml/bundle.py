"""Model bundles: a folder of parameters, LightGBM text models and objects, with integrity checks.

A bundle is a folder::

    manifest.json        format version, library versions, created_at, metadata, and the
                         sha256 and size of every other file
    manifest.sha256      sha256 of manifest.json (detects a damaged or edited manifest)
    params/<name>.json   model parameters as JSON (see :func:`model_to_json`)
    lightgbm/<name>.txt  LightGBM boosters in their own text format
    objects.joblib       joblib dump of the ``models`` dict (only when given)

Trust model: ``manifest.json`` is the root of trust. ``manifest.sha256`` guards it against
accidental damage (truncation, a stray edit) but not against someone who rewrites both files;
for authenticity, sign or pin ``manifest.sha256`` (or the registry version, which is derived
from it) outside the bundle. :func:`load_bundle` verifies every listed file against the
manifest *before* anything is unpickled and refuses missing, truncated, tampered or unlisted
files with :class:`~vipml.errors.BundleError`.

A bundle holds no customer-level rows: :func:`save_bundle` refuses frames, arrays and lists of
more than :data:`MAX_ROWS` rows in the metadata, the parameters or at the top of ``models``.
Bytes are deterministic: the same inputs give the same files, byte for byte (sorted JSON keys,
shortest round-trip float repr, fixed pickle protocol, no wall-clock time unless given as
``metadata["created_at"]``). Non-finite floats (e.g. a NaN covariance when the Hessian was
not positive definite) are written as ``NaN``/``Infinity``, as Python's ``json`` reads them.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import platform
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from vipml._version import __version__
from vipml.errors import BundleError, VipmlWarning

__all__ = [
    "FORMAT_VERSION",
    "MAX_ROWS",
    "Bundle",
    "BundleVersionWarning",
    "load",
    "load_bundle",
    "model_from_json",
    "model_to_json",
    "save",
    "save_bundle",
]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""Bundle format written by this vipml; :func:`load_bundle` refuses any other."""

MAX_ROWS = 1000
"""Largest frame, array, list or dict accepted in a bundle's metadata or parameters."""

MANIFEST = "manifest.json"
MANIFEST_HASH = "manifest.sha256"
OBJECTS = "objects.joblib"
_PICKLE_PROTOCOL = 4
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")


class BundleVersionWarning(VipmlWarning):
    """A bundle was saved by another vipml or LightGBM version than the one running."""


@dataclass(frozen=True)
class Bundle:
    """A loaded, verified bundle.

    Attributes
    ----------
    manifest : dict
        The parsed ``manifest.json`` (versions, metadata, file hashes).
    models : dict
        The unpickled ``models`` dict; empty when loaded with ``allow_pickle=False`` or when
        the bundle has no ``objects.joblib``.
    params : dict
        Parameters by name, as saved (JSON documents).
    lightgbm : dict
        ``lightgbm.Booster`` objects by name, rebuilt from their text format.
    estimators : dict
        vipml LTV estimators rebuilt from ``params`` without pickle (see
        :func:`model_from_json`), for every parameter document that describes one.
    path : pathlib.Path
        Folder the bundle was loaded from.
    """

    manifest: dict[str, Any]
    models: dict[str, Any]
    params: dict[str, Any]
    lightgbm: dict[str, Any]
    path: Path
    estimators: dict[str, Any] = field(default_factory=dict)

    @property
    def metadata(self) -> dict[str, Any]:
        """The metadata given to :func:`save_bundle`."""
        return self.manifest["metadata"]


# -- versions and hashing ---------------------------------------------------------------------


def _package_version(name: str) -> str | None:
    try:
        return importlib_metadata.version(name)
    except importlib_metadata.PackageNotFoundError:
        return None


def library_versions() -> dict[str, str | None]:
    """Versions recorded in a manifest: vipml, python, numpy, pandas, scikit-learn, ...

    Examples
    --------
    >>> sorted(library_versions())
    ['joblib', 'lightgbm', 'numpy', 'pandas', 'python', 'scikit-learn', 'vipml']
    """
    return {
        "vipml": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scikit-learn": _package_version("scikit-learn"),
        "lightgbm": _package_version("lightgbm"),
        "joblib": joblib.__version__,
    }


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _dumps(document: Any) -> bytes:
    """Canonical JSON: sorted keys, shortest round-trip floats, ASCII, trailing newline."""
    return (json.dumps(document, sort_keys=True, indent=2, ensure_ascii=True) + "\n").encode()


def _write(path: Path, data: bytes) -> None:
    """Write and fsync, so a completed bundle is on disk before a registry renames it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


# -- JSON checks ------------------------------------------------------------------------------


def _n_rows(value: Any) -> int | None:
    if isinstance(value, (pd.DataFrame, pd.Series, pd.Index)):
        return len(value)
    if isinstance(value, np.ndarray):
        return int(value.shape[0]) if value.ndim else 1
    return None


def _refuse_rows(value: Any, where: str) -> None:
    n = _n_rows(value)
    if n is not None and n > MAX_ROWS:
        raise BundleError(
            f"{where} is a {type(value).__name__} with {n:,} rows: a bundle holds no "
            f"customer-level rows (limit {MAX_ROWS:,}). Store parameters and aggregates "
            "(e.g. metrics, feature names and dtypes) instead of per-customer data."
        )


def _jsonable(value: Any, where: str) -> Any:
    """``value`` as plain JSON types (numpy scalars converted), or a clear :class:`BundleError`."""
    _refuse_rows(value, where)
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, np.generic):
        return value
    if isinstance(value, (np.bool_, np.integer, np.floating)):
        return value.item()
    if isinstance(value, Mapping):
        if len(value) > MAX_ROWS:
            raise BundleError(
                f"{where} is a mapping with {len(value):,} entries: a bundle holds no "
                f"customer-level rows (limit {MAX_ROWS:,}). Store aggregates instead."
            )
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise BundleError(
                    f"{where} has a key {key!r} of type {type(key).__name__}: JSON keys must "
                    "be strings. Convert the keys with str()."
                )
            out[key] = _jsonable(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_ROWS:
            raise BundleError(
                f"{where} is a list with {len(value):,} items: a bundle holds no "
                f"customer-level rows (limit {MAX_ROWS:,}). Store aggregates instead."
            )
        return [_jsonable(item, f"{where}[{i}]") for i, item in enumerate(value)]
    hint = (
        " Convert it with .tolist() or .to_dict()."
        if _n_rows(value) is not None
        else " Use str, int, float, bool, None, lists and dicts with string keys."
    )
    raise BundleError(
        f"{where} is a {type(value).__module__}.{type(value).__name__}, which is not "
        f"JSON-serialisable.{hint}"
    )


def _check_name(name: Any, kind: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise BundleError(
            f"{kind} name {name!r} is not a valid file name: use letters, digits, '_', '-' "
            "and '.', starting with a letter, digit or '_'."
        )
    return name


# -- LTV estimators as JSON -------------------------------------------------------------------


def _ltv_classes() -> dict[str, type]:
    from vipml.ltv import BetaGeo, GammaGamma, ModifiedBetaGeo, ParetoNBD

    return {cls.__name__: cls for cls in (BetaGeo, GammaGamma, ModifiedBetaGeo, ParetoNBD)}


def model_to_json(model: Any) -> dict[str, Any]:
    """A fitted vipml LTV estimator as a JSON document (no pickle needed to rebuild it).

    Parameters
    ----------
    model : BetaGeo, GammaGamma, ModifiedBetaGeo or ParetoNBD
        A fitted estimator.

    Returns
    -------
    dict
        ``class``, ``hyperparameters`` and the fitted attributes (``params_``, ``loglik_``,
        ``converged_``, ``n_customers_``, ``covariance_`` as names plus nested lists,
        ``vipml_version_``). Floats round-trip exactly through JSON.

    Raises
    ------
    BundleError
        If ``model`` is not one of these classes or is not fitted.

    Examples
    --------
    >>> import pandas as pd
    >>> from vipml.ltv import BetaGeo
    >>> rfm = pd.DataFrame({"frequency": [0.0, 1.0, 2.0, 5.0, 3.0],
    ...                     "recency": [0.0, 10.0, 25.0, 36.0, 5.0],
    ...                     "T": [30.0, 38.0, 30.0, 39.0, 39.0]})
    >>> bg = BetaGeo(penalizer=0.01).fit(rfm)
    >>> doc = model_to_json(bg)
    >>> doc["class"], sorted(doc["params_"])
    ('BetaGeo', ['a', 'alpha', 'b', 'r'])
    >>> again = model_from_json(doc)
    >>> again.p_alive(rfm).equals(bg.p_alive(rfm))
    True
    """
    name = type(model).__name__
    if _ltv_classes().get(name) is not type(model):
        raise BundleError(
            f"model_to_json supports vipml's LTV estimators {sorted(_ltv_classes())}, not "
            f"{type(model).__module__}.{name}; save other objects through `models` (joblib)."
        )
    if not model.__sklearn_is_fitted__():
        raise BundleError(f"This {name} is not fitted; fit it before saving it to a bundle.")
    covariance = model.covariance_
    return {
        "class": name,
        "hyperparameters": {k: model.get_params()[k] for k in sorted(model.get_params())},
        "params_": {k: float(v) for k, v in model.params_.items()},
        "loglik_": float(model.loglik_),
        "converged_": bool(model.converged_),
        "n_customers_": model.n_customers_,
        "covariance_": {
            "names": [str(c) for c in covariance.columns],
            "values": covariance.to_numpy(dtype=np.float64).tolist(),
        },
        "vipml_version_": getattr(model, "vipml_version_", None),
    }


def model_from_json(document: Mapping[str, Any]) -> Any:
    """Rebuild a fitted LTV estimator from :func:`model_to_json`'s document.

    Only vipml's own LTV classes are accepted (looked up by name, never imported from the
    document), so a document cannot run code.

    Parameters
    ----------
    document : mapping
        As returned by :func:`model_to_json` (or read back from a bundle's JSON).

    Returns
    -------
    BetaGeo, GammaGamma, ModifiedBetaGeo or ParetoNBD
        A fitted estimator whose predictions equal the original's bit for bit.

    Raises
    ------
    BundleError
        Unknown class or missing fields.

    Examples
    --------
    >>> model_from_json({"class": "os.system"})
    Traceback (most recent call last):
    ...
    vipml.errors.BundleError: Unknown estimator class 'os.system' ...
    """
    classes = _ltv_classes()
    name = document.get("class")
    if name not in classes:
        raise BundleError(
            f"Unknown estimator class {name!r} in a parameter document; expected one of "
            f"{sorted(classes)}. Was the bundle written by a newer vipml?"
        )
    try:
        model = classes[name](**document["hyperparameters"])
        names = list(document["covariance_"]["names"])
        values = np.asarray(document["covariance_"]["values"], dtype=np.float64)
        model.params_ = {k: float(v) for k, v in document["params_"].items()}
        model.loglik_ = float(document["loglik_"])
        model.converged_ = bool(document["converged_"])
        model.n_customers_ = document["n_customers_"]
        model.covariance_ = pd.DataFrame(values, index=names, columns=names)
        model.standard_errors_ = pd.Series(
            np.sqrt(np.diag(values)), index=names, name="standard_error"
        )
        model.vipml_version_ = document["vipml_version_"]
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(
            f"The parameter document of a {name} is incomplete or malformed ({exc!r}); "
            "re-save the model with model_to_json."
        ) from exc
    return model


# -- save -------------------------------------------------------------------------------------


def save_bundle(
    path: str | os.PathLike[str],
    *,
    models: dict[str, object],
    metadata: dict[str, Any],
    params_json: dict[str, dict[str, Any]] | None = None,
    lightgbm_models: dict[str, Any] | None = None,
) -> Path:
    """Write a bundle folder: manifest, parameters as JSON, LightGBM as text, objects by joblib.

    Parameters
    ----------
    path : path-like
        Folder to create; it must not exist or be empty.
    models : dict
        Objects to pickle with joblib into ``objects.joblib`` (skipped when empty). Values
        must not be frames or arrays with customer-level rows.
    metadata : dict
        JSON-serialisable facts: cutoff, config, feature names and dtypes, metrics, and
        optionally ``created_at`` (UTC ISO string; copied to the manifest's top level). No
        wall-clock time is added otherwise, so the same inputs give the same bytes.
    params_json : dict of dict, optional
        Parameter documents by name, e.g. ``{"bgnbd": model_to_json(bg)}``.
    lightgbm_models : dict of lightgbm.Booster, optional
        Boosters by name, saved with ``model_to_string()``.

    Returns
    -------
    pathlib.Path
        The bundle folder.

    Raises
    ------
    BundleError
        A non-empty target folder, an invalid name, a value that is not JSON-serialisable, or
        customer-level rows (more than :data:`MAX_ROWS`) anywhere in the metadata or
        parameters.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import pandas as pd
    >>> from vipml.ltv import BetaGeo
    >>> rfm = pd.DataFrame({"frequency": [0.0, 1.0, 2.0, 5.0, 3.0],
    ...                     "recency": [0.0, 10.0, 25.0, 36.0, 5.0],
    ...                     "T": [30.0, 38.0, 30.0, 39.0, 39.0]})
    >>> bg = BetaGeo(penalizer=0.01).fit(rfm)
    >>> tmp = tempfile.TemporaryDirectory()
    >>> folder = pathlib.Path(tmp.name) / "bundle"
    >>> _ = save_bundle(folder, models={"bgnbd": bg}, metadata={"cutoff": "1997-09-30"},
    ...                 params_json={"bgnbd": model_to_json(bg)})
    >>> sorted(p.name for p in folder.rglob("*") if p.is_file())
    ['bgnbd.json', 'manifest.json', 'manifest.sha256', 'objects.joblib']
    >>> loaded = load_bundle(folder, allow_pickle=False)
    >>> loaded.models, loaded.estimators["bgnbd"].p_alive(rfm).equals(bg.p_alive(rfm))
    ({}, True)
    >>> tmp.cleanup()
    """
    folder = Path(path)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise BundleError(
            f"Cannot save a bundle to {folder}: it exists and is not an empty folder. Choose a "
            "new folder (bundles are never overwritten in place)."
        )
    if not isinstance(models, dict):
        raise BundleError(f"models must be a dict of name -> object, not {type(models).__name__}")
    for name, obj in models.items():
        _check_name(name, "Model")
        _refuse_rows(obj, f"models[{name!r}]")
    clean_metadata = _jsonable(metadata, "metadata")
    if not isinstance(clean_metadata, dict):
        raise BundleError(f"metadata must be a dict, not {type(metadata).__name__}")
    created_at = clean_metadata.get("created_at")
    if created_at is not None and not isinstance(created_at, str):
        raise BundleError("metadata['created_at'] must be an ISO 8601 string (UTC), or absent.")

    payload: dict[str, bytes] = {}
    for name, document in sorted((params_json or {}).items()):
        _check_name(name, "Parameter document")
        payload[f"params/{name}.json"] = _dumps(_jsonable(document, f"params_json[{name!r}]"))
    for name, booster in sorted((lightgbm_models or {}).items()):
        _check_name(name, "LightGBM model")
        if not hasattr(booster, "model_to_string"):
            raise BundleError(
                f"lightgbm_models[{name!r}] is a {type(booster).__name__}, not a "
                "lightgbm.Booster (pass model.booster_ for a scikit-learn wrapper)."
            )
        payload[f"lightgbm/{name}.txt"] = booster.model_to_string().encode()
    if models:
        buffer = io.BytesIO()
        joblib.dump(models, buffer, protocol=_PICKLE_PROTOCOL)
        payload[OBJECTS] = buffer.getvalue()

    manifest = {
        "format_version": FORMAT_VERSION,
        "created_at": created_at,
        "versions": library_versions(),
        "metadata": clean_metadata,
        "files": {
            name: {"sha256": _sha256(data), "size": len(data)}
            for name, data in sorted(payload.items())
        },
    }
    manifest_bytes = _dumps(manifest)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in payload.items():
        _write(folder / name, data)
    _write(folder / MANIFEST, manifest_bytes)
    _write(folder / MANIFEST_HASH, f"{_sha256(manifest_bytes)}  {MANIFEST}\n".encode())
    logger.debug("bundle saved to %s (%d files)", folder, len(payload) + 2)
    return folder


# -- load -------------------------------------------------------------------------------------


def _read_manifest(folder: Path) -> dict[str, Any]:
    manifest_path = folder / MANIFEST
    if not folder.is_dir():
        raise BundleError(f"No bundle at {folder}: the folder does not exist.")
    if not manifest_path.is_file():
        raise BundleError(
            f"Bundle {folder} has no {MANIFEST}: it is incomplete or not a bundle. "
            "Re-save or re-publish it."
        )
    manifest_bytes = manifest_path.read_bytes()
    hash_path = folder / MANIFEST_HASH
    if not hash_path.is_file():
        raise BundleError(
            f"Bundle {folder} has no {MANIFEST_HASH}: it is incomplete. Re-save or re-publish it."
        )
    expected = hash_path.read_text(encoding="ascii", errors="replace").split()[:1]
    if expected != [_sha256(manifest_bytes)]:
        raise BundleError(
            f"{manifest_path} does not match {MANIFEST_HASH}: the manifest was modified or "
            "damaged. Do not use this bundle; re-save or re-publish it."
        )
    try:
        manifest = json.loads(manifest_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(
            f"{manifest_path} is not valid JSON ({exc}); re-save the bundle."
        ) from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise BundleError(f"{manifest_path} is not a vipml manifest (no 'files' table).")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(
            f"{manifest_path} has format version {version!r}; this vipml ({__version__}) reads "
            f"format {FORMAT_VERSION} only. Load it with the vipml that wrote it "
            f"({manifest.get('versions', {}).get('vipml')!r}) or re-train."
        )
    return manifest


def _verify_files(folder: Path, listed: dict[str, Any]) -> None:
    present = set()
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            relative = (Path(root) / name).relative_to(folder).as_posix()
            if (Path(root) / name).is_symlink():
                raise BundleError(
                    f"Bundle {folder} contains a symbolic link {relative!r}; bundles hold "
                    "regular files only. Re-save the bundle."
                )
        present.update((Path(root) / n).relative_to(folder).as_posix() for n in files)
    present -= {MANIFEST, MANIFEST_HASH}
    foreign = sorted(present - set(listed))
    if foreign:
        raise BundleError(
            f"Bundle {folder} contains {foreign[0]!r}, which its manifest does not list "
            f"({len(foreign)} foreign file(s)). Remove it, or re-save the bundle."
        )
    for name, entry in sorted(listed.items()):
        target = folder / name
        if ".." in Path(name).parts or Path(name).is_absolute():
            raise BundleError(f"Manifest of {folder} lists an unsafe path {name!r}.")
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("sha256"), str)
            or not isinstance(entry.get("size"), int)
        ):
            raise BundleError(
                f"Manifest of {folder} has no valid sha256 and size for {name!r}; re-save it."
            )
        if not target.is_file():
            raise BundleError(
                f"Bundle {folder} is missing {name!r}, listed in its manifest. Re-publish "
                "the bundle from its source."
            )
        size = target.stat().st_size
        if size != entry["size"]:
            kind = "truncated" if size < entry["size"] else "larger than recorded"
            raise BundleError(
                f"{target} is {kind} ({size:,} bytes, manifest says {entry['size']:,}). "
                "Re-publish the bundle from its source."
            )
        if _file_sha256(target) != entry["sha256"]:
            raise BundleError(
                f"{target} does not match the sha256 in the manifest: it was modified "
                "(tampered or damaged). Do not use this bundle; re-publish it from its source."
            )


def _read_verified(folder: Path, name: str, listed: dict[str, Any]) -> bytes:
    """The bytes of a listed file, checked again as read (nothing is parsed unverified)."""
    data = (folder / name).read_bytes()
    if _sha256(data) != listed[name]["sha256"]:
        raise BundleError(
            f"{folder / name} changed while the bundle was being loaded; load it again."
        )
    return data


def _warn_versions(manifest: dict[str, Any], has_lightgbm: bool) -> None:
    saved = manifest.get("versions")
    saved = saved if isinstance(saved, dict) else {}
    running = library_versions()
    names = ["vipml"] + (["lightgbm"] if has_lightgbm else [])
    for name in names:
        if saved.get(name) != running[name]:
            warnings.warn(
                f"This bundle was saved with {name} {saved.get(name)} but {name} "
                f"{running[name]} is running; predictions may differ. Re-train with the "
                f"running version, or install {name}=={saved.get(name)}.",
                BundleVersionWarning,
                stacklevel=3,
            )


def load_bundle(path: str | os.PathLike[str], *, allow_pickle: bool = True) -> Bundle:
    """Load a bundle after verifying every file against its manifest.

    Parameters
    ----------
    path : path-like
        Bundle folder.
    allow_pickle : bool, default True
        When False, ``objects.joblib`` is never opened: LTV estimators come from their JSON
        parameters (``Bundle.estimators``) and LightGBM boosters from their text files.

    Returns
    -------
    Bundle

    Raises
    ------
    BundleError
        Missing or invalid manifest, unknown format version, or a file that is missing,
        truncated, modified, or present but not listed in the manifest. Nothing is unpickled
        before all files are verified.

    Warns
    -----
    BundleVersionWarning
        The bundle was saved by another vipml (or, when it holds LightGBM models, another
        LightGBM) version than the one running.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> tmp = tempfile.TemporaryDirectory()
    >>> folder = save_bundle(pathlib.Path(tmp.name) / "b", models={"n": 1},
    ...                      metadata={"metrics": {"mae": 0.5}})
    >>> load_bundle(folder).models
    {'n': 1}
    >>> (folder / "extra.txt").write_text("hi")
    2
    >>> load_bundle(folder)
    Traceback (most recent call last):
    ...
    vipml.errors.BundleError: Bundle ... contains 'extra.txt', which its manifest does not list ...
    >>> tmp.cleanup()
    """
    folder = Path(path)
    manifest = _read_manifest(folder)
    listed = manifest["files"]
    _verify_files(folder, listed)
    lightgbm_files = sorted(n for n in listed if n.startswith("lightgbm/"))
    _warn_versions(manifest, bool(lightgbm_files))

    params: dict[str, Any] = {}
    estimators: dict[str, Any] = {}
    for name in sorted(n for n in listed if n.startswith("params/")):
        key = name.removeprefix("params/").removesuffix(".json")
        try:
            params[key] = json.loads(_read_verified(folder, name, listed))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BundleError(f"{folder / name} is not valid JSON ({exc}).") from exc
        if isinstance(params[key], dict) and params[key].get("class") in _ltv_classes():
            estimators[key] = model_from_json(params[key])
    boosters: dict[str, Any] = {}
    if lightgbm_files:
        import lightgbm as lgb

        for name in lightgbm_files:
            key = name.removeprefix("lightgbm/").removesuffix(".txt")
            text = _read_verified(folder, name, listed).decode()
            boosters[key] = lgb.Booster(model_str=text)
    models: dict[str, Any] = {}
    if allow_pickle and OBJECTS in listed:
        # the bytes unpickled are the bytes verified
        models = joblib.load(io.BytesIO(_read_verified(folder, OBJECTS, listed)))
    return Bundle(
        manifest=manifest,
        models=models,
        params=params,
        lightgbm=boosters,
        path=folder,
        estimators=estimators,
    )


# -- pipelines --------------------------------------------------------------------------------

PIPELINE = "pipeline"


def _feature_dtypes(pipeline: Any) -> dict[str, str]:
    return dict.fromkeys(pipeline.feature_columns_, "float64")


def save(
    pipeline: Any,
    path: str | os.PathLike[str],
    *,
    metrics: Mapping[str, float] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Save a fitted :class:`~vipml.VipPipeline` as a bundle that services load.

    The bundle holds the pipeline twice, each complete: as JSON plus LightGBM text (what
    ``load(..., allow_pickle=False)`` reads; nothing in it can run code) and as a joblib
    pickle. The manifest records the cutoff, the configuration, the feature names and
    dtypes, the fit's aggregates and ``metrics``. No customer-level rows are stored.

    Parameters
    ----------
    pipeline : VipPipeline
        A fitted pipeline.
    path : path-like
        New (or empty) folder.
    metrics : mapping, optional
        Evaluation metrics to record (e.g. :meth:`VipPipeline.evaluate`'s).
    metadata : mapping, optional
        More JSON-able facts (``created_at`` as an ISO string is copied to the manifest).

    Returns
    -------
    pathlib.Path
        The bundle folder.

    Raises
    ------
    BundleError
        The pipeline is not fitted, the folder is not empty, or something in the pipeline
        cannot be stored without pickle.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from vipml import VipPipeline
    >>> from vipml.data import simulate
    >>> sim = simulate(1200, "2024-01-01", "2025-12-31", random_state=2)
    >>> pipe = VipPipeline({"churn": {"lgbm_params": {"num_boost_round": 30}},
    ...                     "ltv": {"n_draws": 20}, "segments": {"n_segments": 3}})
    >>> pipe = pipe.fit(sim.transactions, cutoff="2025-06-30")
    >>> tmp = tempfile.TemporaryDirectory()
    >>> folder = save(pipe, pathlib.Path(tmp.name) / "bundle")
    >>> again = load(folder, allow_pickle=False)
    >>> again.score(sim.transactions).equals(pipe.score(sim.transactions))
    True
    >>> tmp.cleanup()
    """
    from vipml._portable import to_document
    from vipml.pipeline import VipPipeline

    if not isinstance(pipeline, VipPipeline) or not pipeline.__sklearn_is_fitted__():
        raise BundleError("save expects a fitted VipPipeline; call fit first.")
    boosters: dict[str, Any] = {}
    document = to_document(pipeline, boosters, PIPELINE)
    facts = {
        "kind": "VipPipeline",
        "cutoff": pipeline.cutoff_.isoformat(),
        "config": pipeline.config_.to_dict(),
        "features": _feature_dtypes(pipeline),
        "summary": pipeline.summary_,
        "metrics": dict(metrics or {}),
        **dict(metadata or {}),
    }
    return save_bundle(
        path,
        models={PIPELINE: pipeline},
        metadata=facts,
        params_json={
            PIPELINE: document,
            "purchase_model": model_to_json(pipeline.purchase_model_),
            "spend_model": model_to_json(pipeline.spend_model_),
        },
        lightgbm_models=boosters,
    )


def load(path: str | os.PathLike[str], *, allow_pickle: bool = True) -> Any:
    """Load a pipeline saved by :func:`save`, after verifying the whole bundle.

    Parameters
    ----------
    path : path-like
        Bundle folder.
    allow_pickle : bool, default True
        False rebuilds the pipeline from its JSON document and LightGBM text alone (only
        vipml's and a few scikit-learn classes can be named there); ``objects.joblib`` is
        never opened. Both ways give identical scores.

    Returns
    -------
    VipPipeline

    Raises
    ------
    BundleError
        A bundle that does not verify (see :func:`load_bundle`) or holds no pipeline.
    """
    from vipml._portable import from_document
    from vipml.pipeline import VipPipeline

    bundle = load_bundle(path, allow_pickle=allow_pickle)
    if bundle.metadata.get("kind") != "VipPipeline" or PIPELINE not in bundle.params:
        raise BundleError(
            f"{bundle.path} holds no VipPipeline (it was not written by vipml.bundle.save); "
            "read it with load_bundle."
        )
    if allow_pickle and PIPELINE in bundle.models:
        pipeline = bundle.models[PIPELINE]
    else:
        pipeline = from_document(bundle.params[PIPELINE], bundle.lightgbm)
    if not isinstance(pipeline, VipPipeline):
        raise BundleError(f"{bundle.path}: the stored pipeline is a {type(pipeline).__name__}.")
    return pipeline
