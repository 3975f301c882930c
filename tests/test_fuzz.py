"""The atheris fuzz targets under fuzz/, each for 1M runs (--runslow only: minutes each).

A target that finds a crash exits non-zero and leaves the input in its artifact folder. Each
run starts from fuzz/corpus/<target> (copy what a run grows back there by hand to keep it).
Figures are in bench/RESULTS.md.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

RUNS = int(os.environ.get("CAMROLL_FUZZ_RUNS", "1000000"))


@pytest.mark.slow
@pytest.mark.parametrize("target", ["metadata", "sniff", "tus"])
def test_fuzz_target_survives_a_million_runs(target: str, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    # Seeded with the committed corpus (what earlier runs reached, and inputs that once crashed).
    shutil.copytree(REPO / "fuzz" / "corpus" / target, corpus)
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "fuzz" / f"fuzz_{target}.py"),
            f"-atheris_runs={RUNS}",
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
        ],
        cwd=REPO,
        env={**os.environ, "CAMROLL_DATA_DIR": str(tmp_path / "data")},
        capture_output=True,
        text=True,
        timeout=3600,
    )
    log = proc.stderr
    done = re.findall(r"Done (\d+) in (\d+) second", log)
    cov = re.findall(r"cov: (\d+) ft: (\d+) corp: (\d+)", log)
    last = cov[-1] if cov else "?"
    print(f"\n{target}: {done[-1] if done else '?'} (runs, s); last cov/ft/corpus {last}")
    crashes = list(tmp_path.glob("crash-*"))
    assert proc.returncode == 0 and not crashes, log[-3000:]
    assert done and int(done[-1][0]) >= RUNS
