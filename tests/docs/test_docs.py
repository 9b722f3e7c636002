"""The docs stay honest: links resolve, every command and every config section is documented.

Reads ``README.md`` and every ``docs/**/*.md``; no network (absolute ``http(s)://`` links are
not checked). Anchors follow GitHub's heading slugs: lowercase, punctuation dropped except ``-``
and ``_``, each space a ``-``, and ``-1``, ``-2`` ... appended to repeated headings.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from dmt.cli.main import build_parser
from dmt.config.schema import ExperimentConfig

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

_FENCE = re.compile(r"^(```|~~~)")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_INLINE_CODE = re.compile(r"(`+)(.+?)\1")
# [text](target) and ![alt](target), with an optional "title"; text may hold `code` or [brackets]
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REF_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")


def _prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks (a ``# comment`` in a bash block is no heading)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text (before de-duplication)."""
    text = _INLINE_CODE.sub(lambda m: m.group(2), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading: its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)  # \w keeps letters, digits and _
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading anchor of a markdown text, repeated headings numbered as GitHub does."""
    seen: dict[str, int] = {}
    out = set()
    for line in _prose_lines(text):
        m = _HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(text: str) -> list[str]:
    """Every link and image target outside code (fenced blocks and inline code spans)."""
    out = []
    for line in _prose_lines(text):
        m = _REF_DEF.match(line)
        if m:
            out.append(m.group(1))
            continue
        out.extend(_LINK.findall(_INLINE_CODE.sub("", line)))
    return out


def broken_links(page: Path) -> list[str]:
    """The relative links of ``page`` whose file or heading anchor does not exist."""
    problems = []
    for target in links(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http(s):, mailto: ...: not checked
            continue
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / unquote(path_part)).resolve() if path_part else page
        if not dest.exists():
            problems.append(f"{target}: no file {_shown(dest)} (in {_shown(page)})")
        elif anchor and dest.suffix == ".md" and unquote(anchor) not in anchors(dest.read_text(encoding="utf-8")):
            problems.append(f"{target}: no heading #{anchor} in {_shown(dest)} (in {_shown(page)})")
    return problems


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def all_docs_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in PAGES)


def cli_commands() -> list[str]:
    """The subcommands of the real ``dmt`` parser (aliases included)."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(sub.choices)


def config_sections() -> list[str]:
    """The top-level fields of ``ExperimentConfig`` that are themselves dataclasses."""
    cfg = ExperimentConfig()
    return [f.name for f in dataclasses.fields(cfg) if dataclasses.is_dataclass(getattr(cfg, f.name))]


def test_there_are_pages_to_check():
    assert (ROOT / "README.md").is_file()
    assert len(PAGES) > 1


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    assert broken_links(page) == []


def test_every_command_is_documented():
    text = all_docs_text()
    commands = cli_commands()
    assert {"run", "demo", "predict", "eval"} <= set(commands)  # the parser was read
    missing = [c for c in commands if not re.search(rf"\bdmt {re.escape(c)}(?![\w-])", text)]
    assert missing == [], f"`dmt <command>` named on no page (README.md, docs/): {missing}"


def test_every_config_section_is_documented():
    text = all_docs_text()
    sections = config_sections()
    assert {"data", "model", "phases"} <= set(sections)  # the dataclass was read
    missing = [s for s in sections if not re.search(rf"(?<![\w.]){re.escape(s)}\.[a-z_]", text)]
    assert missing == [], f"config sections with no `<section>.<key>` on any page: {missing}"


# The checker itself, on hand-made pages: each check can fail.


def test_slug_follows_github():
    assert slug("Classification: `dmt demo` (what `make demo` runs)") == "classification-dmt-demo-what-make-demo-runs"
    assert slug("The field's common benchmark") == "the-fields-common-benchmark"
    assert slug("AVX512-BF16 + AMX, torch 2.14.1") == "avx512-bf16--amx-torch-2141"
    assert slug("data_and weights") == "data_and-weights"
    assert anchors("# A\n## A\n```\n# A\n```\n### A\n") == {"a", "a-1", "a-2"}


def test_broken_links_are_found(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n\n## Part two\n")
    (tmp_path / "img.png").write_bytes(b"")
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n[ok](other.md) [ok](other.md#part-two) [ok](#title) ![ok](img.png)\n"
        "[web](https://example.com/missing) `[code](nowhere.md)`\n"
        "```\n[fenced](nowhere.md)\n```\n"
        "[bad file](missing.md) [bad anchor](other.md#part-three) [bad self](#nope) ![bad](gone.png)\n"
    )
    problems = broken_links(page)
    assert len(problems) == 4, problems
    assert [p.split(":")[0] for p in problems] == ["missing.md", "other.md#part-three", "#nope", "gone.png"]
