"""MLflow pyfunc export: loaded back with MLflow (here and in a fresh process), it scores
feature tables exactly as the pipeline does."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import mlflow.pyfunc
import pandas as pd
import pytest

from vipml import VipPipeline, bundle
from vipml.data import simulate
from vipml.errors import BundleError, DataValidationError
from vipml.mlflow import export_mlflow, predict_features

CUTOFF = "2025-06-30"


@pytest.fixture(scope="module")
def shop():
    return simulate(500, "2024-01-01", "2025-12-31", random_state=11)


@pytest.fixture(scope="module")
def pipe(shop):
    config = {
        "churn": {"n_snapshots": 2, "lgbm_params": {"num_boost_round": 15, "num_threads": 1}},
        "ltv": {"n_draws": 10},
        "segments": {"n_segments": 3},
    }
    return VipPipeline(config).fit(shop.transactions, shop.events, cutoff=CUTOFF)


@pytest.fixture(scope="module")
def features(pipe, shop):
    # a later date than the fit: the exported model scores any day's features
    return pipe.build_features(shop.transactions, shop.events, at="2025-08-31")


@pytest.fixture(scope="module")
def exported(pipe, tmp_path_factory):
    return export_mlflow(pipe, tmp_path_factory.mktemp("mlflow") / "model")


def test_loaded_model_scores_like_the_pipeline(exported, pipe, features):
    model = mlflow.pyfunc.load_model(str(exported))
    expected = pipe.score_features(features)
    assert model.predict(features).equals(expected)
    one = features.iloc[[7]]  # one request, one customer
    assert model.predict(one).equals(pipe.score_features(one))
    assert (exported / "artifacts" / "bundle" / "manifest.json").is_file()
    signature = model.metadata.get_input_schema()
    assert signature.input_names()[: len(pipe.feature_columns_)] == pipe.feature_columns_


def test_ids_as_a_column_come_back_as_a_column(exported, pipe, features):
    model = mlflow.pyfunc.load_model(str(exported))
    served = model.predict(features.reset_index())
    assert served.columns[0] == "customer_id"
    assert served.set_index("customer_id").equals(pipe.score_features(features))


def test_fresh_process_loads_and_scores(exported, pipe, features, tmp_path):
    """What a model server does: no vipml objects in memory, only the MLflow folder."""
    features.to_parquet(tmp_path / "features.parquet")
    script = textwrap.dedent(
        f"""
        import mlflow.pyfunc, pandas as pd
        model = mlflow.pyfunc.load_model({str(exported)!r})
        features = pd.read_parquet({str(tmp_path / "features.parquet")!r})
        model.predict(features).to_parquet({str(tmp_path / "scores.parquet")!r})
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, timeout=300)
    scores = pd.read_parquet(tmp_path / "scores.parquet")
    pd.testing.assert_frame_equal(scores, pipe.score_features(features), check_exact=True)


def test_the_pickled_wrapper_holds_no_model(exported):
    pickled = (exported / "python_model.pkl").read_bytes()
    assert b"vipml.mlflow" in pickled and b"VipPipelineModel" in pickled
    assert len(pickled) < 2_000  # a reference to the class; the model is the bundle artefact
    requirements = (exported / "requirements.txt").read_text()
    assert "vipml==" in requirements and "lightgbm==" in requirements


def test_export_from_a_bundle_folder(pipe, features, tmp_path):
    folder = bundle.save(pipe, tmp_path / "bundle")
    model = mlflow.pyfunc.load_model(str(export_mlflow(folder, tmp_path / "model")))
    assert model.predict(features).equals(pipe.score_features(features))
    params = folder / "params" / "spend_model.json"
    params.write_bytes(params.read_bytes().replace(b"{", b"{ ", 1))  # same JSON, other bytes
    with pytest.raises(BundleError):
        export_mlflow(folder, tmp_path / "tampered")
    assert not (tmp_path / "tampered").exists()


def test_integer_ids(pipe, features, tmp_path):
    numbered = features.set_axis(pd.RangeIndex(len(features), name="customer_id"), axis=0)
    folder = export_mlflow(pipe, tmp_path / "model", id_type="long")
    served = mlflow.pyfunc.load_model(str(folder)).predict(numbered.reset_index())
    assert served.set_index("customer_id").equals(pipe.score_features(numbered))


def test_bad_input(pipe, features):
    with pytest.raises(DataValidationError, match="more than once"):
        predict_features(pipe, pd.concat([features.iloc[:2], features.iloc[:1]]))
    with pytest.raises(DataValidationError, match="lack column"):
        predict_features(pipe, features.drop(columns="frequency"))
    with pytest.raises(DataValidationError, match="pandas DataFrame"):
        predict_features(pipe, [[1.0, 2.0]])
    as_dict = {c: features[c].tolist() for c in features.columns}
    assert predict_features(pipe, as_dict).equals(
        pipe.score_features(features.reset_index(drop=True))
    )


def test_errors(pipe, tmp_path, monkeypatch):
    with pytest.raises(TypeError, match="VipPipeline or the path"):
        export_mlflow(42, tmp_path / "x")
    with pytest.raises(ValueError, match="id_type"):
        export_mlflow(pipe, tmp_path / "x", id_type="uuid")  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setitem(sys.modules, "mlflow.pyfunc", None)
    with pytest.raises(ImportError, match=r'pip install "vipml\[mlflow\]"'):
        export_mlflow(pipe, tmp_path / "x")
