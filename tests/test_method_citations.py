"""The method notes the code cites ship in the repository: every "docs/method.md §n" names a section that
exists, every source tag used in the code is defined there, and nothing cites the old out-of-repo notes."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTES = ROOT / "docs" / "method.md"
CITING = [*ROOT.glob("engine/**/*.py"), *ROOT.glob("app/**/*.py"), *ROOT.glob("scripts/*.py"),
          *ROOT.glob("tests/*.py"), *ROOT.glob("docs/*.md"), ROOT / "README.md"]


def citing_texts():
    for path in CITING:
        if path not in (NOTES, Path(__file__).resolve()) and path.is_file():  # this file names the old notes
            yield path.relative_to(ROOT), path.read_text(encoding="utf-8")


def test_every_cited_section_exists():
    sections = set(re.findall(r"^## (\d+)\. ", NOTES.read_text(encoding="utf-8"), re.MULTILINE))
    assert {"1", "2", "3", "4", "5", "6"} <= sections
    cited = []
    for path, text in citing_texts():
        for match in re.finditer(r"docs/method\.md((?:'s)? ?§[0-9][^)\n:;]*)", text):
            for number in re.findall(r"(\d+)", match.group(1).split("§", 1)[1][:8]):
                cited.append((path, number))
    assert cited, "no citation found: the pattern no longer matches the code's citations"
    missing = [(str(path), number) for path, number in cited if number not in sections]
    assert not missing, f"citations of sections docs/method.md lacks: {missing}"


def test_every_tag_used_is_defined():
    notes = NOTES.read_text(encoding="utf-8")
    for tag in ("[paper]", "[SalUn]", "[K]", "[choice]"):
        assert f"**{tag}**" in notes, f"docs/method.md does not define {tag}"


def test_nothing_cites_the_out_of_repo_notes():
    stale = [str(path) for path, text in citing_texts()
             if re.search(r"(?<![\w/])METHOD\.md|METHOD notes", text)]
    assert not stale, f"still citing METHOD.md / METHOD notes (not in the repository): {stale}"
