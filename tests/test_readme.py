"""The README's Python code runs as written (each block on its own, as a user pastes it)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_blocks():
    assert len(BLOCKS) >= 2


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_block_runs(index, no_network, capsys):
    code = BLOCKS[index]
    if "torch" in code or "CNNFeatureExtractor" in code or "skmetric.deep" in code:
        pytest.importorskip("torch")
    namespace = {"__name__": "__readme__"}
    exec(compile(code, f"README.md block {index}", "exec"), namespace)  # noqa: S102
    printed = [float(v) for v in re.findall(r"\d+\.\d+", capsys.readouterr().out)]
    # A figure the README states next to a print ("# about 0.97") is the one printed.
    claimed = [float(v) for v in re.findall(r"print\(.*#.*?about (\d+\.\d+)", code)]
    assert len(printed) >= len(claimed)
    for value, claim in zip(printed, claimed):
        assert value == pytest.approx(claim, abs=0.01), (value, claim)
