"""Installed, ami claims one top-level name: `pip install .` in a fresh venv beside two local stand-in
distributions that install top-level `memory` and `envs` packages (both names are other projects on PyPI), and
both ami's and theirs import; the checkout also runs with PYTHONPATH alone (a GPU box without registry access).

The fresh venv gets ami and the stand-ins only (`--no-deps`): what lands in its site-packages is the question.
Their dependencies (torch, ray, ...) are read from this test's own environment, placed on PYTHONPATH, where no
copy of ami lies (its editable install is a .pth hook, which PYTHONPATH entries never run): installing them again
would take a minute of CI and test nothing of ours."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("ami", "agent", "envs", "memory", "telemetry", "actors", "learner", "cluster")


def _standin(where: Path, name: str) -> Path:
    """A tiny distribution `standin-<name>` whose one package is top-level `name`."""
    src = where / f"standin-{name}"
    (src / name).mkdir(parents=True)
    (src / name / "__init__.py").write_text(f"WHO = 'standin-{name}'\n")
    (src / "pyproject.toml").write_text(
        f'[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "standin-{name}"\nversion = "1.0"\n\n[tool.setuptools]\npackages = ["{name}"]\n')
    return src


@pytest.mark.slow
def test_pip_install_claims_only_ami_beside_other_memory_and_envs(tmp_path: Path) -> None:
    src = tmp_path / "src"  # a copy: building in the checkout would leave build/ and egg-info behind
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".*", "__pycache__", "runs", "tests", "benchmarks",
                                                             "deploy", "docs", "build", "*.egg-info"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = str(env_dir / "bin" / "python")
    deps = next(p for p in map(Path, sys.path) if p.name == "site-packages")
    env = {"PATH": f"{env_dir / 'bin'}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")}
    pip = [py, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "setuptools>=68"], check=True, timeout=300, env=env)  # one build backend for all three
    subprocess.run([*pip, "--no-deps", "--no-build-isolation", str(src), str(_standin(tmp_path, "memory")),
                    str(_standin(tmp_path, "envs"))], check=True, timeout=600, env=env)
    env["PYTHONPATH"] = str(deps)
    site = Path(subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True, env=env).stdout.strip())
    top = {p.name for p in site.iterdir() if (p / "__init__.py").exists()}
    assert top & set(OURS) == {"ami", "memory", "envs"}, top  # ours is ami alone; memory and envs are theirs
    code = ("import memory, envs, ami.memory, ami.envs, ami.cluster.cli\n"
            "assert memory.WHO == 'standin-memory' and envs.WHO == 'standin-envs'\n"
            "assert ami.memory.LocalReplay and ami.envs.ENV_IDS\n")
    subprocess.run([py, "-c", code], check=True, cwd=tmp_path, timeout=120, env=env)
    res = subprocess.run([str(env_dir / "bin" / "ami"), "train", "--steps", "ten"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120, env=env)
    assert res.returncode == 2 and res.stderr.startswith("ami: error:"), res.stderr


def test_the_checkout_runs_with_pythonpath_alone(tmp_path: Path) -> None:
    # -S: no site processing, so no installed copy of ami (this venv's editable one included) is on the path;
    # the dependencies' directory is put there by hand, after the checkout
    deps = next(p for p in map(Path, sys.path) if p.name == "site-packages")
    res = subprocess.run([sys.executable, "-S", "-c", "import ami.cluster.cli, ami.memory; print(ami.memory.__file__)"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=60,
                         env={"PYTHONPATH": f"{ROOT}:{deps}", "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr
    assert Path(res.stdout.strip()) == ROOT / "memory" / "__init__.py"
