"""The built wheel ships one import name, `tiermem`, and nothing else at the top level."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_the_wheel_has_tiermem_as_its_only_top_level_import_name(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)],
        check=True, capture_output=True, timeout=300,
    )
    [wheel] = tmp_path.glob("tiermem-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top_level == {"tiermem"}
    assert "tiermem/adapters/__init__.py" in names and "tiermem/session/_migrations.py" in names
    assert "tiermem/py.typed" in names and "tiermem/cli/demo_script.json" in names
    # data the Claude paths read at run time (the model table also sets context()'s cache minimum)
    assert "tiermem/claude/models.json" in names and "tiermem/claude/prompts/extract.md" in names
    assert "tiermem/adapters/anthropic.py" in names and "tiermem/adapters/_memory_tool.py" in names
    info = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
    assert zipfile.ZipFile(wheel).read(info).decode().split() == ["tiermem"]
    assert not any(n.startswith(("agents/", "tests/", "bench/", "memory/", "adapters/")) for n in names)
    # every subpackage of the source tree, and the data the embedder checks its model against
    for init in (ROOT / "memory").rglob("__init__.py"):
        assert "tiermem/" + init.relative_to(ROOT / "memory").as_posix() in names, init
    assert "tiermem/embed/minilm_reference.json" in names
