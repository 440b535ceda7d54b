"""The built wheel works on its own: bundled data load through importlib.resources."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_non_editable_wheel_ships_the_data(tmp_path):
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
        check=True,
    )
    (wheel,) = wheels.glob("vipml-*.whl")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
    )
    script = (
        "import vipml\n"
        "from vipml.data import load_cdnow\n"
        f"assert vipml.__file__.startswith({str(target)!r}), vipml.__file__\n"
        "print(len(load_cdnow()), len(load_cdnow(sample=True)))\n"
        "from vipml.text import load_korean_reviews, load_review_sentences\n"
        "print(len(load_review_sentences()), len(load_korean_reviews()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == ["69659", "6919", "3000", "5000"]
