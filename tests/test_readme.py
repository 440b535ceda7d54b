"""The README's examples run, in order, as a newcomer would paste them."""

import re
import warnings
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_examples_run(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the examples write files (a bundle) where they run
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 3
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CDNOW's same-day duplicate rows warn, as documented
        exec(compile("\n".join(blocks), str(README), "exec"), namespace)
    assert "Holdout purchases by calibration frequency" in capsys.readouterr().out
    assert namespace["tiers"].value_counts()["VIP"] > 0
    assert namespace["table"].loc["ChurnModel", "roc_auc"] > 0.7
    assert (
        namespace["again"]
        .score(namespace["shop"].transactions, namespace["shop"].events)
        .equals(namespace["pipe"].score(namespace["shop"].transactions, namespace["shop"].events))
    )


def test_ci_runs_the_readme_test_command():
    commands = re.findall(r"```bash\n(.*?)\n```", README.read_text(), flags=re.S)
    test_command = next(c for c in commands if "pytest" in c)
    ci = (README.parent / ".ci" / "run").read_text()
    assert test_command in ci.splitlines()
