"""Fitted objects as JSON, rebuilt without pickle: the pickle-free half of a bundle.

:func:`to_document` walks an object's state (``__getstate__`` or ``__dict__``) and writes
plain JSON: numbers, strings, lists and tagged dicts for tuples, non-string-keyed dicts,
numpy arrays (base64 of their bytes, so floats round-trip exactly), timestamps, timedeltas,
small pandas objects and LightGBM boosters (kept aside as text). :func:`from_document`
rebuilds the object, instantiating only classes from an allow-list (vipml's own modules and
a few scikit-learn ones): a document names classes but cannot run code, unlike a pickle.

Objects rebuilt this way predict exactly as the originals: every array and float is restored
bit for bit, and scikit-learn objects go through their own ``__setstate__``.
"""

from __future__ import annotations

import base64
import datetime as dt
import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from vipml.errors import BundleError

__all__ = ["from_document", "to_document"]

_TAG = "__type__"
#: Modules whose classes a document may instantiate.
_ALLOWED_MODULES = (
    "vipml.",
    "sklearn.isotonic",
    "sklearn.linear_model.",
    "sklearn.preprocessing.",
)
MAX_FRAME_ROWS = 1000
"""Largest pandas object stored: a document holds parameters and aggregates, not customers."""


def _allowed(module: str) -> bool:
    return any(
        module == prefix.rstrip(".") or module.startswith(prefix) for prefix in _ALLOWED_MODULES
    )


def _class_name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _resolve(name: str) -> type:
    module, _, qualname = str(name).partition(":")
    if not _allowed(module) or not qualname or "." in qualname:
        raise BundleError(
            f"The document names class {name!r}, which vipml does not rebuild without pickle; "
            "only vipml's and a few scikit-learn classes are allowed."
        )
    try:
        cls = getattr(importlib.import_module(module), qualname)
    except (ImportError, AttributeError) as exc:
        raise BundleError(
            f"Class {name!r} named by the document does not exist in this vipml; was the "
            "bundle written by another version?"
        ) from exc
    if not isinstance(cls, type):
        raise BundleError(f"{name!r} is not a class.")
    return cls


def _frame_rows(value: pd.Series | pd.DataFrame | pd.Index, where: str) -> None:
    if len(value) > MAX_FRAME_ROWS:
        raise BundleError(
            f"{where} is a {type(value).__name__} with {len(value):,} rows: a bundle holds no "
            f"customer-level rows (limit {MAX_FRAME_ROWS:,}). Drop it from the fitted state."
        )


def _array(values: np.ndarray) -> dict[str, Any]:
    if values.dtype == object:
        return {_TAG: "list_array", "items": [_plain_item(v) for v in values.tolist()]}
    data = np.ascontiguousarray(values)
    return {
        _TAG: "ndarray",
        "dtype": data.dtype.str,
        "shape": list(data.shape),
        "data": base64.b64encode(data.tobytes()).decode("ascii"),
    }


def _plain_item(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def _series(series: pd.Series, where: str) -> dict[str, Any]:
    _frame_rows(series, where)
    return {
        _TAG: "series",
        "name": to_document(series.name, {}, f"{where}.name"),
        "dtype": str(series.dtype),
        "index": _index(series.index, where),
        "values": to_document(series.to_numpy(), {}, where),
    }


def _index(index: pd.Index, where: str) -> dict[str, Any]:
    _frame_rows(index, where)
    return {
        _TAG: "index",
        "name": to_document(index.name, {}, f"{where}.index.name"),
        "dtype": str(index.dtype),
        "values": to_document(index.to_numpy(), {}, f"{where}.index"),
    }


def to_document(value: Any, boosters: dict[str, Any], where: str = "state") -> Any:
    """A JSON-able document of ``value``; LightGBM boosters go to ``boosters`` by name.

    Parameters
    ----------
    value : object
        A fitted vipml object, or any value in its state.
    boosters : dict
        Filled with ``lightgbm.Booster`` objects met on the way, by their path in the state.
    where : str
        Path of ``value`` in the state (names boosters and errors).

    Returns
    -------
    object
        Plain JSON values.

    Raises
    ------
    BundleError
        A class outside the allow-list, or a pandas object with customer-level rows.

    Examples
    --------
    >>> import numpy as np
    >>> doc = to_document({"x": np.array([0.1, 2.5]), 3: (1, "a")}, {})
    >>> restored = from_document(doc, {})
    >>> restored["x"].tolist(), restored[3]
    ([0.1, 2.5], (1, 'a'))
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.generic):
        return {_TAG: "scalar", "dtype": value.dtype.str, "value": value.item()}
    if isinstance(value, int | float):
        return value
    if isinstance(value, list):
        return [to_document(v, boosters, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, tuple):
        items = [to_document(v, boosters, f"{where}[{i}]") for i, v in enumerate(value)]
        return {_TAG: "tuple", "items": items}
    if isinstance(value, dict):
        return {
            _TAG: "dict",
            "items": [
                [to_document(k, boosters, where), to_document(v, boosters, f"{where}.{k}")]
                for k, v in value.items()
            ],
        }
    if isinstance(value, np.ndarray):
        return _array(value)
    if isinstance(value, pd.Timestamp):
        return {_TAG: "timestamp", "value": value.isoformat(), "tz": str(value.tz or "")}
    if isinstance(value, pd.Timedelta):
        return {_TAG: "pd_timedelta", "ns": int(value.value)}
    if isinstance(value, dt.timedelta):
        return {_TAG: "timedelta", "us": value // dt.timedelta(microseconds=1)}
    if isinstance(value, dt.datetime):
        return {_TAG: "datetime", "value": value.isoformat()}
    if isinstance(value, pd.Series):
        return _series(value, where)
    if isinstance(value, pd.Index):
        return _index(value, where)
    if isinstance(value, pd.DataFrame):
        _frame_rows(value, where)
        return {
            _TAG: "frame",
            "columns": _index(value.columns, f"{where}.columns"),
            "index": _index(value.index, where),
            "data": [_series(value.iloc[:, i], f"{where}[{i}]") for i in range(value.shape[1])],
        }
    if type(value).__module__.startswith("lightgbm") and hasattr(value, "model_to_string"):
        name = where.replace("[", "_").replace("]", "").replace(".", "_")
        boosters[name] = value
        return {_TAG: "lightgbm", "name": name}
    cls = type(value)
    if not _allowed(cls.__module__):
        raise BundleError(
            f"{where} is a {cls.__module__}.{cls.__qualname__}, which cannot be stored without "
            "pickle; keep such objects out of a fitted model's state."
        )
    state = value.__getstate__() if hasattr(value, "__getstate__") else vars(value)
    if not isinstance(state, dict):
        raise BundleError(f"{where}: the state of {cls.__qualname__} is not a dict.")
    return {_TAG: "object", "class": _class_name(cls), "state": to_document(state, boosters, where)}


def _rebuild_frame_part(document: dict[str, Any], boosters: dict[str, Any]) -> Any:
    kind = document[_TAG]
    values = from_document(document["values"], boosters)
    if kind == "index":
        return pd.Index(values, dtype=document["dtype"], name=from_document(document["name"], {}))
    index = _rebuild_frame_part(document["index"], boosters)
    name = from_document(document["name"], {})
    return pd.Series(values, index=index, dtype=document["dtype"], name=name)


def _decode_array(document: dict[str, Any]) -> np.ndarray:
    raw = base64.b64decode(document["data"].encode("ascii"))
    array = np.frombuffer(raw, dtype=np.dtype(document["dtype"]))
    return array.reshape(document["shape"]).copy()


def _decode_object(document: dict[str, Any], boosters: dict[str, Any]) -> Any:
    cls = _resolve(document["class"])
    state = from_document(document["state"], boosters)
    obj = cls.__new__(cls)
    setstate: Callable[[Any], None] | None = getattr(obj, "__setstate__", None)
    if setstate is not None:
        setstate(state)
    else:  # pragma: no cover - Python < 3.11 objects without __setstate__
        obj.__dict__.update(state)
    return obj


def from_document(document: Any, boosters: dict[str, Any]) -> Any:
    """Rebuild what :func:`to_document` wrote; ``boosters`` maps booster names to boosters.

    Raises
    ------
    BundleError
        An unknown tag, a class outside the allow-list or a missing booster.
    """
    if isinstance(document, list):
        return [from_document(v, boosters) for v in document]
    if not isinstance(document, dict):
        return document
    kind = document.get(_TAG)
    try:
        if kind == "tuple":
            return tuple(from_document(v, boosters) for v in document["items"])
        if kind == "dict":
            return {
                from_document(k, boosters): from_document(v, boosters) for k, v in document["items"]
            }
        if kind == "scalar":
            return np.array(document["value"], dtype=np.dtype(document["dtype"]))[()]
        if kind == "ndarray":
            return _decode_array(document)
        if kind == "list_array":
            out = np.empty(len(document["items"]), dtype=object)
            out[:] = document["items"]
            return out
        if kind == "timestamp":
            return pd.Timestamp(document["value"])
        if kind == "pd_timedelta":
            return pd.Timedelta(int(document["ns"]), unit="ns")
        if kind == "timedelta":
            return dt.timedelta(microseconds=int(document["us"]))
        if kind == "datetime":
            return dt.datetime.fromisoformat(document["value"])
        if kind in ("series", "index"):
            return _rebuild_frame_part(document, boosters)
        if kind == "frame":
            columns = _rebuild_frame_part(document["columns"], boosters)
            index = _rebuild_frame_part(document["index"], boosters)
            parts = [_rebuild_frame_part(s, boosters) for s in document["data"]]
            frame = pd.concat(parts, axis=1) if parts else pd.DataFrame(index=index)
            frame.columns = columns
            return frame
        if kind == "lightgbm":
            return boosters[document["name"]]
        if kind == "object":
            return _decode_object(document, boosters)
    except KeyError as exc:
        raise BundleError(f"A {kind!r} entry of the document lacks {exc}; re-save it.") from exc
    raise BundleError(f"Unknown entry {kind!r} in a model document; was it written by vipml?")
