from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from vipml import __version__
from vipml.bundle import (
    FORMAT_VERSION,
    MAX_ROWS,
    BundleVersionWarning,
    load_bundle,
    model_from_json,
    model_to_json,
    save_bundle,
)
from vipml.data import load_cdnow
from vipml.errors import BundleError, VipmlWarning
from vipml.features import rfm_summary
from vipml.ltv import BetaGeo, GammaGamma

ID_PREFIX = "cust-"


@pytest.fixture(scope="module")
def cdnow_rfm() -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CDNOW's known duplicate rows
        rfm = rfm_summary(load_cdnow(), cutoff="1997-09-30", freq="D", time_unit="W")
    # Distinctive ids, so the bundle's bytes can be scanned for any of them.
    rfm.index = pd.Index([f"{ID_PREFIX}{i:06d}" for i in rfm.index], name="customer_id")
    return rfm


@pytest.fixture(scope="module")
def fitted(cdnow_rfm: pd.DataFrame) -> tuple[BetaGeo, GammaGamma]:
    bg = BetaGeo().fit(cdnow_rfm)
    gg = GammaGamma().fit(cdnow_rfm[cdnow_rfm["monetary_value"] > 0])
    return bg, gg


@pytest.fixture(scope="module")
def booster() -> lgb.Booster:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    y = (x[:, 0] + rng.normal(size=300) > 0).astype(int)
    params = {"objective": "binary", "verbose": -1, "num_threads": 1, "deterministic": True}
    return lgb.train(params, lgb.Dataset(x, y), num_boost_round=5)


def _save(folder: Path, fitted: tuple[BetaGeo, GammaGamma], booster: lgb.Booster) -> Path:
    bg, gg = fitted
    return save_bundle(
        folder,
        models={"bgnbd": bg, "gamma_gamma": gg},
        metadata={
            "created_at": "2026-01-01T00:00:00Z",
            "cutoff": "1997-09-30",
            "config": {"horizon": 39, "time_unit": "W"},
            "features": {"frequency": "float64", "recency": "float64", "T": "float64"},
            "metrics": {"loglik": bg.loglik_, "n_customers": np.int64(bg.n_customers_)},
        },
        params_json={"bgnbd": model_to_json(bg), "gamma_gamma": model_to_json(gg)},
        lightgbm_models={"churn": booster},
    )


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory, fitted, booster) -> Path:
    return _save(tmp_path_factory.mktemp("bundle") / "b", fitted, booster)


@pytest.fixture
def copy(bundle_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(bundle_dir, target)
    return target


def _rewrite_manifest(folder: Path, edit) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    edit(manifest)
    data = (json.dumps(manifest, sort_keys=True, indent=2) + "\n").encode()
    (folder / "manifest.json").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    (folder / "manifest.sha256").write_text(f"{digest}  manifest.json\n")


def _no_unpickling(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("joblib.load called before the bundle was verified")

    monkeypatch.setattr("vipml.bundle.joblib.load", refuse)


# -- layout, metadata, determinism -------------------------------------------------------------


def test_layout_and_manifest(bundle_dir: Path) -> None:
    files = sorted(
        p.relative_to(bundle_dir).as_posix() for p in bundle_dir.rglob("*") if p.is_file()
    )
    assert files == [
        "lightgbm/churn.txt",
        "manifest.json",
        "manifest.sha256",
        "objects.joblib",
        "params/bgnbd.json",
        "params/gamma_gamma.json",
    ]
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["created_at"] == "2026-01-01T00:00:00Z"
    assert set(manifest["versions"]) >= {"vipml", "python", "numpy", "scikit-learn", "lightgbm"}
    assert manifest["versions"]["vipml"] == __version__
    assert manifest["metadata"]["metrics"]["n_customers"] == 23570
    assert set(manifest["files"]) == set(files) - {"manifest.json", "manifest.sha256"}
    for name, entry in manifest["files"].items():
        data = (bundle_dir / name).read_bytes()
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def test_same_inputs_same_bytes(tmp_path: Path, fitted, booster) -> None:
    a = _save(tmp_path / "a", fitted, booster)
    b = _save(tmp_path / "b", fitted, booster)
    names = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_no_wall_clock_unless_given(tmp_path: Path) -> None:
    folder = save_bundle(tmp_path / "b", models={}, metadata={"cutoff": "2024-01-31"})
    assert json.loads((folder / "manifest.json").read_text())["created_at"] is None
    assert not (folder / "objects.joblib").exists()


def test_bundle_holds_no_customer_id(bundle_dir: Path, cdnow_rfm: pd.DataFrame) -> None:
    assert len(cdnow_rfm) == 23570 and cdnow_rfm.index[0].startswith(ID_PREFIX)
    for path in bundle_dir.rglob("*"):
        if path.is_file():
            assert ID_PREFIX.encode() not in path.read_bytes(), path


@pytest.mark.parametrize(
    ("metadata", "match"),
    [
        ({"scores": pd.DataFrame({"x": np.arange(MAX_ROWS + 1)})}, "customer-level rows"),
        ({"a": {"b": pd.Series(np.arange(5000))}}, r"metadata\['a'\]\['b'\].*customer-level"),
        ({"ids": np.arange(MAX_ROWS + 1)}, "customer-level rows"),
        ({"ids": [str(i) for i in range(MAX_ROWS + 1)]}, "customer-level rows"),
        ({"small": pd.DataFrame({"x": [1, 2]})}, r"not JSON-serialisable.*\.to_dict"),
        ({"when": pd.Timestamp("2024-01-01")}, "not JSON-serialisable"),
        ({"tags": {"a", "b"}}, "not JSON-serialisable"),
        ({1: "x"}, "key 1 of type int"),
    ],
)
def test_refuses_rows_and_non_json(tmp_path: Path, metadata, match) -> None:
    with pytest.raises(BundleError, match=match):
        save_bundle(tmp_path / "b", models={}, metadata=metadata)
    assert not (tmp_path / "b").exists()


def test_refuses_rows_in_models_and_bad_names(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": np.arange(MAX_ROWS + 1)})
    with pytest.raises(BundleError, match=r"models\['rfm'\].*customer-level"):
        save_bundle(tmp_path / "b", models={"rfm": frame}, metadata={})
    with pytest.raises(BundleError, match="not a valid file name"):
        save_bundle(tmp_path / "b", models={}, metadata={}, params_json={"../x": {}})
    with pytest.raises(BundleError, match="not a lightgbm.Booster"):
        save_bundle(tmp_path / "b", models={}, metadata={}, lightgbm_models={"m": object()})


def test_refuses_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "old.txt").write_text("x")
    with pytest.raises(BundleError, match="not an empty folder"):
        save_bundle(tmp_path / "b", models={}, metadata={})


# -- JSON parameters ---------------------------------------------------------------------------


def test_model_json_round_trip_is_exact(fitted, cdnow_rfm: pd.DataFrame) -> None:
    bg, gg = fitted
    bg2 = model_from_json(json.loads(json.dumps(model_to_json(bg))))
    gg2 = model_from_json(json.loads(json.dumps(model_to_json(gg))))
    assert type(bg2) is BetaGeo and type(gg2) is GammaGamma
    assert bg2.params_ == bg.params_ and gg2.params_ == gg.params_
    pd.testing.assert_frame_equal(bg2.covariance_, bg.covariance_, check_exact=True)
    pd.testing.assert_series_equal(bg2.standard_errors_, bg.standard_errors_, check_exact=True)
    assert bg2.expected_purchases(cdnow_rfm, horizon=39).equals(
        bg.expected_purchases(cdnow_rfm, horizon=39)
    )
    assert bg2.p_alive(cdnow_rfm).equals(bg.p_alive(cdnow_rfm))
    assert gg2.expected_spend(cdnow_rfm).equals(gg.expected_spend(cdnow_rfm))


def test_model_json_refusals() -> None:
    with pytest.raises(BundleError, match="not fitted"):
        model_to_json(BetaGeo())
    with pytest.raises(BundleError, match="supports vipml's LTV estimators"):
        model_to_json(object())
    with pytest.raises(BundleError, match="Unknown estimator class"):
        model_from_json({"class": "subprocess.Popen"})
    with pytest.raises(BundleError, match="incomplete or malformed"):
        model_from_json({"class": "BetaGeo", "hyperparameters": {}})


# -- second process: identical predictions with and without pickle ----------------------------

_CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    import pandas as pd
    import vipml.bundle

    bundle_dir, rfm_path, x_path, out, allow = sys.argv[1:]
    if allow == "0":
        def refuse(*args, **kwargs):
            raise RuntimeError("joblib.load called with allow_pickle=False")
        vipml.bundle.joblib.load = refuse
    bundle = vipml.bundle.load_bundle(bundle_dir, allow_pickle=allow == "1")
    if allow == "1":
        bg, gg = bundle.models["bgnbd"], bundle.models["gamma_gamma"]
    else:
        if bundle.models:
            raise RuntimeError("models unpickled with allow_pickle=False")
        bg, gg = bundle.estimators["bgnbd"], bundle.estimators["gamma_gamma"]
    rfm = pd.read_pickle(rfm_path)
    np.savez(
        out,
        expected_purchases=bg.expected_purchases(rfm, horizon=39).to_numpy(),
        p_alive=bg.p_alive(rfm).to_numpy(),
        expected_spend=gg.expected_spend(rfm).to_numpy(),
        churn=bundle.lightgbm["churn"].predict(np.load(x_path)),
    )
    """
)


@pytest.mark.parametrize("allow_pickle", [True, False])
def test_second_process_gets_identical_predictions(
    tmp_path: Path, bundle_dir: Path, fitted, booster, cdnow_rfm: pd.DataFrame, allow_pickle: bool
) -> None:
    bg, gg = fitted
    rfm_path, x_path, out = tmp_path / "rfm.pkl", tmp_path / "x.npy", tmp_path / "out.npz"
    cdnow_rfm.to_pickle(rfm_path)
    x = np.random.default_rng(1).normal(size=(50, 4))
    np.save(x_path, x)
    args = [str(bundle_dir), str(rfm_path), str(x_path), str(out), "1" if allow_pickle else "0"]
    subprocess.run([sys.executable, "-c", _CHILD, *args], check=True, timeout=60)
    expected = {
        "expected_purchases": bg.expected_purchases(cdnow_rfm, horizon=39).to_numpy(),
        "p_alive": bg.p_alive(cdnow_rfm).to_numpy(),
        "expected_spend": gg.expected_spend(cdnow_rfm).to_numpy(),
        "churn": booster.predict(x),
    }
    with np.load(out) as got:
        for name, values in expected.items():
            assert got[name].dtype == np.float64
            # bit for bit, NaN-safe
            assert np.array_equal(got[name].view(np.uint64), values.view(np.uint64)), name


# -- integrity faults --------------------------------------------------------------------------


def _flip_byte(folder: Path) -> None:
    path = folder / "objects.joblib"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(folder: Path) -> None:
    path = folder / "params" / "bgnbd.json"
    path.write_bytes(path.read_bytes()[:-10])


def _grow(folder: Path) -> None:
    with (folder / "lightgbm" / "churn.txt").open("ab") as handle:
        handle.write(b"\n")


FAULTS = {
    "tampered": (_flip_byte, r"objects\.joblib does not match the sha256"),
    "truncated": (_truncate, r"bgnbd\.json is truncated"),
    "grown": (_grow, r"churn\.txt is larger than recorded"),
    "deleted": (lambda f: (f / "lightgbm" / "churn.txt").unlink(), r"missing 'lightgbm/churn"),
    "foreign": (lambda f: (f / "notes.txt").write_text("x"), r"contains 'notes\.txt'"),
    "foreign nested": (
        lambda f: (f / "params" / "evil.json").write_text("{}"),
        r"contains 'params/evil\.json'",
    ),
    "format version": (
        lambda f: _rewrite_manifest(f, lambda m: m.update(format_version=FORMAT_VERSION + 1)),
        r"format version 2; this vipml .* reads format 1",
    ),
    "manifest edited": (
        lambda f: (f / "manifest.json").write_text(
            (f / "manifest.json").read_text().replace('"cutoff"', '"cutof"')
        ),
        r"manifest\.json does not match manifest\.sha256",
    ),
    "manifest missing": (lambda f: (f / "manifest.json").unlink(), r"has no manifest\.json"),
    "manifest hash missing": (
        lambda f: (f / "manifest.sha256").unlink(),
        r"has no manifest\.sha256",
    ),
    "manifest not json": (
        lambda f: _rewrite_manifest_bytes(f, b"{not json"),
        r"manifest\.json is not valid JSON",
    ),
    "symlink": (lambda f: _symlink(f / "params" / "bgnbd.json"), r"symbolic link 'params/bgnbd"),
    "manifest entry without hash": (
        lambda f: _rewrite_manifest(f, lambda m: m["files"]["objects.joblib"].pop("sha256")),
        r"no valid sha256 and size for 'objects\.joblib'",
    ),
    "manifest without files": (
        lambda f: _rewrite_manifest(f, lambda m: m.pop("files")),
        r"not a vipml manifest",
    ),
}


def _symlink(path: Path) -> None:
    """Replace a file by a link to an identical copy outside the bundle (hashes still match)."""
    outside = path.parent.parent.parent / f"outside-{path.name}"
    shutil.copyfile(path, outside)
    path.unlink()
    path.symlink_to(outside)


def _rewrite_manifest_bytes(folder: Path, data: bytes) -> None:
    (folder / "manifest.json").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    (folder / "manifest.sha256").write_text(f"{digest}  manifest.json\n")


@pytest.mark.parametrize("allow_pickle", [True, False])
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_faults_refused_before_unpickling(
    copy: Path, monkeypatch, fault: str, allow_pickle: bool
) -> None:
    damage, match = FAULTS[fault]
    damage(copy)
    _no_unpickling(monkeypatch)
    with pytest.raises(BundleError, match=match):
        load_bundle(copy, allow_pickle=allow_pickle)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="does not exist"):
        load_bundle(tmp_path / "nope")


def test_intact_copy_loads_without_warning(copy: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bundle = load_bundle(copy)
    assert set(bundle.models) == {"bgnbd", "gamma_gamma"}
    assert set(bundle.params) == set(bundle.estimators) == {"bgnbd", "gamma_gamma"}
    assert bundle.metadata["cutoff"] == "1997-09-30"
    assert bundle.path == copy


@pytest.mark.parametrize("library", ["vipml", "lightgbm"])
def test_other_version_warns_naming_both(copy: Path, library: str) -> None:
    running = json.loads((copy / "manifest.json").read_text())["versions"][library]
    _rewrite_manifest(copy, lambda m: m["versions"].update({library: "0.0.1"}))
    with pytest.warns(BundleVersionWarning, match=rf"{library} 0\.0\.1 but {library} {running}"):
        bundle = load_bundle(copy, allow_pickle=False)
    assert issubclass(BundleVersionWarning, VipmlWarning)
    assert bundle.lightgbm["churn"].num_trees() == 5


_SAVE_IN_CHILD = textwrap.dedent(
    """
    import sys, warnings
    from vipml.bundle import model_to_json, save_bundle
    from vipml.data import load_cdnow
    from vipml.features import rfm_summary
    from vipml.ltv import BetaGeo, GammaGamma

    warnings.simplefilter("ignore")
    rfm = rfm_summary(load_cdnow(), cutoff="1997-09-30", freq="D", time_unit="W")
    bg = BetaGeo().fit(rfm)
    gg = GammaGamma().fit(rfm[rfm["monetary_value"] > 0])
    save_bundle(
        sys.argv[1],
        models={"bgnbd": bg, "gamma_gamma": gg},
        metadata={"cutoff": "1997-09-30", "created_at": "2026-01-01T00:00:00Z"},
        params_json={"bgnbd": model_to_json(bg), "gamma_gamma": model_to_json(gg)},
    )
    """
)


def test_same_bytes_across_processes(tmp_path: Path) -> None:
    """Fit and save in two fresh processes: identical files (so the same registry version)."""
    folders = [tmp_path / "a", tmp_path / "b"]
    children = [subprocess.Popen([sys.executable, "-c", _SAVE_IN_CHILD, str(f)]) for f in folders]
    assert [c.wait(timeout=120) for c in children] == [0, 0]
    names = sorted(p.relative_to(folders[0]) for p in folders[0].rglob("*") if p.is_file())
    assert len(names) == 5
    for name in names:
        assert (folders[0] / name).read_bytes() == (folders[1] / name).read_bytes(), name


def test_nan_covariance_round_trips(tmp_path: Path, fitted) -> None:
    bg = model_from_json(model_to_json(fitted[0]))
    bg.covariance_ = bg.covariance_ * np.nan  # as after a Hessian that is not positive definite
    folder = save_bundle(
        tmp_path / "b", models={}, metadata={}, params_json={"bg": model_to_json(bg)}
    )
    again = load_bundle(folder).estimators["bg"]
    assert again.covariance_.isna().all().all()
    assert again.params_ == bg.params_
