"""Build the wheel and sdist, install the wheel into a fresh venv, import it there.

Run by ``make test-all``. Exits non-zero on any failure.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import tarfile
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run(cmd: list[str], **kw) -> None:
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run(cmd, check=True, **kw)


#: tests that read files from the repository (test data, the glossary, the examples):
#: run from the unpacked sdist, they show that it carries what they need
SDIST_TESTS = [
    "tests/test_vocabulary.py",
    "tests/test_architecture.py",
    "tests/test_kronecker_sbl.py",
    "tests/test_examples.py::test_examples_found",
]


def check_sdist(sdist: pathlib.Path, tmp: pathlib.Path) -> None:
    """Unpack the sdist and run the tests that read repository files from it."""
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp / "sdist", filter="data")
    (root,) = (tmp / "sdist").iterdir()
    for needed in ("Makefile", "requirements/constraints.txt", "tests/data", "docs/glossary.rst"):
        assert (root / needed).exists(), f"the sdist lacks {needed}"
    env = dict(os.environ, PYTHONPATH=str(root))
    run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SDIST_TESTS],
        cwd=root,
        env=env,
    )


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        dist = tmp / "dist"
        run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)])
        wheels = sorted(dist.glob("*.whl"))
        sdists = sorted(dist.glob("*.tar.gz"))
        assert wheels and sdists, f"build produced {list(dist.iterdir())}"
        venv = tmp / "venv"
        run([sys.executable, "-m", "venv", str(venv)])
        py = venv / "bin" / "python"
        constraints = ROOT / "requirements" / "constraints.txt"
        run([str(py), "-m", "pip", "install", "-q", "-c", str(constraints), str(wheels[0])])
        code = (
            "import sparsestat, sys; "
            "from sparsestat.linear_model import IHTRegressor; "
            "print('sparsestat', sparsestat.__version__, 'imports from', sparsestat.__file__)"
        )
        run([str(py), "-c", code], cwd=tmp)
        check_sdist(sdists[0], tmp)
    print("wheel and sdist build, install and import: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
