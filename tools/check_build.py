"""Build the wheel and sdist, install the wheel into a fresh venv, import it there.

Run by ``make test-all``. Exits non-zero on any failure.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run(cmd: list[str], **kw) -> None:
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run(cmd, check=True, **kw)


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
    print("wheel and sdist build, install and import: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
