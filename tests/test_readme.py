"""The README's code runs as written, and its commands exist."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run(capsys):
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})
    alignment, scores = capsys.readouterr().out.split("\n")[:2]
    assert 0.9 < float(alignment) <= 1.0
    score, bound = map(float, scores.split())
    assert score <= bound  # the mean log-likelihood never beats -H


def test_readme_shows_the_setup_and_test_commands():
    text = README.read_text()
    assert 'pip install -e ".[dev]" && python -m sklearn_ntp reproduce' in text
    assert "\npytest" in text
    figure = re.search(r"!\[[^\]]*\]\(([^)]+)\)", text).group(1)
    assert (README.parent / figure).is_file()


def test_readme_relates_the_general_limit_names_to_the_papers_once():
    paragraph = " ".join(README.read_text().split())
    statement = ("`L*`, `W~`, `U~` and `G` are the names for any data (`reproduce`'s tables use "
                 "them): when both conditions hold they are `H`, `W*`, `W^mm` and `F`.")
    assert paragraph.count(statement) == 1


def test_readme_says_why_the_iris_snippet_skips_the_limit():
    text = README.read_text()
    snippet_end = text.index("compute_implicit_bias=False))")
    assert "`compute_implicit_bias=False` skips the implicit-bias limit" in text[snippet_end:]


def test_readme_names_exactly_the_formats_check_reads():
    from sklearn_ntp.datasets._files import READERS

    text = " ".join(README.read_text().split())
    sentence = text[text.index("python -m sklearn_ntp check"):]
    sentence = sentence[:sentence.index("python -m sklearn_ntp corpus")]
    assert "exactly two formats" in sentence and len(READERS) == 2
    assert all(f"`{suffix}`" in sentence for suffix in READERS)
