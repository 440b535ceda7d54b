"""Export a fitted pipeline as an MLflow pyfunc model (optional extra: ``vipml[mlflow]``).

:func:`export_mlflow` writes an MLflow model folder whose pyfunc flavour scores customers
from their per-customer features, so the pipeline can be served or batch-scored wherever
MLflow runs (``mlflow.pyfunc.load_model``, ``mlflow models serve``, Spark UDFs).

What ``predict`` takes and returns
    Input: the per-customer feature table of :meth:`VipPipeline.build_features
    <vipml.VipPipeline.build_features>` (or :mod:`vipml.features.online`): one row per
    customer, the pipeline's ``feature_columns_``. Customer ids are the index, or a
    ``customer_id`` column (what a served request carries, since JSON has no index).
    Output: :meth:`VipPipeline.score_features <vipml.VipPipeline.score_features>`'s table,
    unchanged when the ids are the index; with a ``customer_id`` column in, the ids come back
    as the first column. Features rather than raw logs go in because a model server sees one
    request at a time and a customer's scores depend on that customer's features alone; the
    logs-to-features step stays with the caller (batch: ``build_features``; real time:
    :mod:`vipml.features.online`).

How the model is stored
    The pipeline travels as a vipml bundle (:func:`vipml.bundle.save`), copied into the
    MLflow model as the artifact ``bundle``; the pyfunc wrapper loads it in ``load_context``
    with ``vipml.bundle.load(..., allow_pickle=False)``, so every file is verified against its
    sha256 and the pipeline is rebuilt from JSON and LightGBM text. The wrapper itself (the
    only object MLflow pickles) holds no model state.

MLflow is imported only when a function here needs it; without it a clear ``ImportError``
names ``pip install "vipml[mlflow]"``. ``mlflow-skinny`` is enough.
"""

from __future__ import annotations

import functools
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from vipml.errors import DataValidationError

__all__ = ["VipPipelineModel", "export_mlflow", "predict_features"]  # noqa: F822 (lazy)

_HINT = 'pip install "vipml[mlflow]"'
#: Name of the bundle among the MLflow model's artifacts.
BUNDLE_ARTIFACT = "bundle"
_ID = "customer_id"


def _mlflow() -> Any:
    """The mlflow module (with ``mlflow.pyfunc``), or a clear error naming the extra."""
    try:
        import mlflow
        import mlflow.pyfunc
    except ImportError as exc:
        raise ImportError(f"MLflow export needs mlflow, an optional extra: {_HINT}") from exc
    return mlflow


def predict_features(pipeline: Any, model_input: Any) -> pd.DataFrame:
    """Score a feature table as the MLflow model does (see the module notes).

    Parameters
    ----------
    pipeline : VipPipeline
        A fitted pipeline.
    model_input : pandas.DataFrame or mapping
        Per-customer features; ids in the index or in a ``customer_id`` column. A mapping
        (column to values) is read as a DataFrame.

    Returns
    -------
    pandas.DataFrame
        :meth:`VipPipeline.score_features`'s table; ids back where they came in.

    Raises
    ------
    DataValidationError
        Not a table, repeated customer ids, or missing feature columns.

    Examples
    --------
    A stand-in pipeline whose scores are twice the features shows where the ids go:

    >>> import pandas as pd
    >>> class Doubler:
    ...     def score_features(self, features):
    ...         return features * 2
    >>> features = pd.DataFrame({"frequency": [1.0, 3.0]},
    ...                         index=pd.Index(["a", "b"], name="customer_id"))
    >>> predict_features(Doubler(), features)
                 frequency
    customer_id
    a                  2.0
    b                  6.0
    >>> predict_features(Doubler(), features.reset_index())
      customer_id  frequency
    0           a        2.0
    1           b        6.0
    """
    if isinstance(model_input, dict):
        model_input = pd.DataFrame(model_input)
    if not isinstance(model_input, pd.DataFrame):
        raise DataValidationError(
            "The model scores a pandas DataFrame of per-customer features (one row per "
            f"customer, ids in the index or a '{_ID}' column), not {type(model_input).__name__}."
        )
    id_column = _ID in model_input.columns
    features = model_input.set_index(_ID) if id_column else model_input
    if features.index.has_duplicates:
        repeated = features.index[features.index.duplicated()].unique()
        raise DataValidationError(
            f"{len(repeated)} customer id(s) appear more than once in the features "
            f"(e.g. {list(repeated[:5])}); send one row per customer."
        )
    scores = pipeline.score_features(features)
    return scores.reset_index() if id_column else scores


@functools.cache
def _model_class() -> type:
    """The pyfunc wrapper class, built on first use (its base class comes from mlflow)."""
    pyfunc = _mlflow().pyfunc

    class VipPipelineModel(pyfunc.PythonModel):  # type: ignore[misc, name-defined]
        """MLflow pyfunc wrapper: loads the vipml bundle artifact and scores features."""

        # the input is checked against the declared signature, not against type hints
        _skip_type_hint_validation = True

        def load_context(self, context: Any) -> None:
            from vipml.bundle import load

            self.pipeline_ = load(context.artifacts[BUNDLE_ARTIFACT], allow_pickle=False)

        # no annotations: MLflow reads them as a signature (see _skip_type_hint_validation)
        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            return predict_features(self.pipeline_, model_input)

    # importable by name (vipml.mlflow.VipPipelineModel), so MLflow pickles a reference
    VipPipelineModel.__module__ = __name__
    VipPipelineModel.__qualname__ = "VipPipelineModel"
    return VipPipelineModel


def __getattr__(name: str) -> Any:
    if name == "VipPipelineModel":
        return _model_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _signature(pipeline: Any, id_type: str | None) -> Any:
    from mlflow.models.signature import ModelSignature
    from mlflow.types import ColSpec, Schema

    from vipml.pipeline import SCORE_COLUMNS

    columns = [ColSpec("double", name) for name in pipeline.feature_columns_]
    if id_type is not None:
        columns.append(ColSpec(id_type, _ID, required=False))
    inputs = Schema(columns)
    kinds = dict.fromkeys(SCORE_COLUMNS, "double")
    kinds.update({"R": "long", "F": "long", "M": "long"})
    kinds.update(dict.fromkeys(("RFM", "rfm_segment", "segment", "vip_tier"), "string"))
    reasons = [f"reason_{i}" for i in range(1, pipeline.config_.churn.reasons + 1)]
    outputs = Schema(
        [ColSpec(kinds[c], c) for c in SCORE_COLUMNS]
        + [ColSpec("string", c, required=False) for c in reasons]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)


def _requirements() -> list[str]:
    from vipml.bundle import library_versions

    versions = library_versions()
    names = ("vipml", "numpy", "pandas", "scikit-learn", "lightgbm", "joblib")
    return [f"{name}=={versions[name]}" for name in names if versions.get(name)]


def export_mlflow(
    source: Any,
    path: str | os.PathLike[str],
    *,
    id_type: Literal["string", "long"] | None = "string",
    pip_requirements: list[str] | None = None,
) -> Path:
    """Write an MLflow pyfunc model that scores per-customer features with a pipeline.

    Parameters
    ----------
    source : VipPipeline or path-like
        A fitted pipeline (saved as a bundle first) or the folder of a bundle written by
        :func:`vipml.bundle.save` (verified, then copied in).
    path : path-like
        New folder for the MLflow model (MLflow refuses an existing non-empty one).
    id_type : {"string", "long"} or None, default "string"
        Type of the optional ``customer_id`` column in the model's input signature: MLflow
        checks requests against it (string ids must be sent as strings, whole-number ids as
        integers), and drops columns that the signature does not name. None declares no id
        column: ids then travel only as the index (e.g. ``mlflow.pyfunc.load_model``).
    pip_requirements : list of str, optional
        Requirements recorded for serving; default the running versions of vipml, numpy,
        pandas, scikit-learn, lightgbm and joblib (nothing is inferred by loading the model).

    Returns
    -------
    pathlib.Path
        The MLflow model folder (``MLmodel``, ``python_model.pkl``, ``artifacts/bundle``).

    Raises
    ------
    ImportError
        Without mlflow (``pip install "vipml[mlflow]"``).
    TypeError
        ``source`` is neither a pipeline nor a path.
    BundleError
        The bundle does not verify, or the pipeline cannot be saved.

    Notes
    -----
    The model's signature declares the feature columns (float64) and the optional
    ``customer_id`` as input and the scores' columns as output, so MLflow checks served
    requests. No input example is stored: it would be customers' data. See the module notes
    for what ``predict`` takes and returns.

    Examples
    --------
    The bundle sits among the model's artifacts under this name:

    >>> BUNDLE_ARTIFACT
    'bundle'

    Writes files and fits a model, so not run here (``tests/test_mlflow.py`` does):

    >>> import mlflow.pyfunc  # doctest: +SKIP
    >>> folder = export_mlflow(pipe, "models/mlflow-model")  # doctest: +SKIP
    >>> model = mlflow.pyfunc.load_model(str(folder))  # doctest: +SKIP
    >>> features = pipe.build_features(transactions, at="2025-06-30")  # doctest: +SKIP
    >>> model.predict(features).equals(pipe.score_features(features))  # doctest: +SKIP
    True
    """
    mlflow = _mlflow()
    if id_type not in ("string", "long", None):
        raise ValueError(f"id_type must be 'string', 'long' or None, not {id_type!r}.")
    from vipml.bundle import load, save
    from vipml.pipeline import VipPipeline

    target = Path(path)
    with tempfile.TemporaryDirectory(prefix="vipml-mlflow-") as scratch:
        if isinstance(source, VipPipeline):
            bundle = save(source, Path(scratch) / BUNDLE_ARTIFACT)
            pipeline = source
        elif isinstance(source, str | os.PathLike):
            bundle = Path(source)
            pipeline = load(bundle, allow_pickle=False)  # verifies every file first
        else:
            raise TypeError(
                "export_mlflow takes a fitted VipPipeline or the path of a bundle, not "
                f"{type(source).__name__}."
            )
        with warnings.catch_warnings():
            # deliberately none: an example would be a customer's data
            warnings.filterwarnings("ignore", message=".*input example was not provided")
            mlflow.pyfunc.save_model(
                str(target),
                python_model=_model_class()(),
                artifacts={BUNDLE_ARTIFACT: str(bundle)},
                signature=_signature(pipeline, id_type),
                pip_requirements=_requirements() if pip_requirements is None else pip_requirements,
            )
    return target
