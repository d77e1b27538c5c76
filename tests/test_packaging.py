"""The wheel: built from the repository, installed into a fresh virtual environment, it reads
a line with the default model it carries, with no file of the repository in reach."""

import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
from conftest import write_pdf

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv with the built wheel installed (its dependencies come from this
    interpreter's site-packages through a .pth line, so nothing is downloaded)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"  # a copy: building writes build/ and egg-info beside the sources
    shutil.copytree(ROOT / "ocr_robust", src / "ocr_robust", ignore=shutil.ignore_patterns("__pycache__"))
    for f in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / f, src / f)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                        str(tmp / "dist"), str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    wheels = list((tmp / "dist").glob("ocr_robust-*.whl"))
    assert len(wheels) == 1
    env = tmp / "venv"
    venv.EnvBuilder(with_pip=False).create(env)
    py = env / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # a path line: its .pth files do not run
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheels[0])],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    return env, wheels[0]


def test_the_wheel_reads_a_pdf_with_its_default_model(installed, tmp_path):
    env, wheel = installed
    assert wheel.stat().st_size < 25e6
    write_pdf(tmp_path / "p.pdf", [(60, 100, "Installed from the wheel: 42 lines", "times", 11)])
    code = ("import ocr_robust; from ocr_robust.charset import Charset; Charset.load('latin'); "
            "print(ocr_robust.__file__)")
    r = subprocess.run([str(env / "bin" / "python"), "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().startswith(str(env))  # the installed copy, not the repository's
    got = subprocess.run([str(env / "bin" / "ocr-robust"), "recognize", "p.pdf"], capture_output=True, text=True,
                         cwd=tmp_path)
    assert got.returncode == 0, got.stderr[-2000:]
    want = subprocess.run([sys.executable, "-m", "ocr_robust", "recognize", "p.pdf"], capture_output=True, text=True,
                          cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert want.returncode == 0, want.stderr[-2000:]
    assert "wheel" in want.stdout and got.stdout == want.stdout
