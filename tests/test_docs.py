"""The documentation against the code: README.md's size, every relative link of README.md and
docs/*.md (file and anchor), docs/settings.md against its generator, and the rule that
docs/event-rules.md states for a line split inside a multi-byte character."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drain.settings import Settings, reference_markdown, splice_reference
from tests.support.served import clean_env, drain_command

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def prose(markdown: str) -> str:
    """``markdown`` without its fenced code blocks (their ``#`` lines are no headings)."""
    return _FENCE.sub("", markdown)


def anchors(markdown: str) -> set[str]:
    """The anchors GitHub makes for the headings of ``markdown``: lower case, punctuation
    dropped (letters, digits, ``_``, ``-`` and spaces kept), spaces to ``-``; a repeated
    heading gets ``-1``, ``-2``..."""
    seen: dict[str, int] = {}
    found = set()
    for heading in _HEADING.findall(prose(markdown)):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def relative_links(markdown: str) -> list[str]:
    """Link targets of ``markdown`` outside code that are not URLs (``http:``, ``mailto:``...)."""
    text = _INLINE_CODE.sub("", prose(markdown))
    return [t for t in _LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def test_readme_fits_in_12_kib() -> None:
    assert len(README.read_bytes()) <= 12 * 1024


def test_anchors_follow_github() -> None:
    page = "# Health: `GET /health`\n```\n# TYPE x counter\n```\n## Logs\n## Logs\n## Café, 2\n"
    assert anchors(page) == {"health-get-health", "logs", "logs-1", "café-2"}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    broken = []
    for target in relative_links(text):
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if not linked.exists():
            broken.append(f"{target}: no file {linked.relative_to(ROOT)}")
        elif anchor and anchor not in anchors(linked.read_text(encoding="utf-8")):
            broken.append(f"{target}: no heading makes #{anchor}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_readme_links_every_page_of_docs() -> None:
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in relative_links(README.read_text())}
    assert set(PAGES[1:]) <= linked


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_internal_issue_numbers(page: Path) -> None:
    assert not re.findall(r"\bissue\s*#?\d+", page.read_text(encoding="utf-8"), re.I)


def test_every_setting_has_a_description_and_a_unit() -> None:
    missing = [
        name.upper()
        for name, field in Settings.model_fields.items()
        if not field.description
        or not isinstance(field.json_schema_extra, dict)
        or not field.json_schema_extra.get("unit")
    ]
    assert not missing, "settings without a description or a unit: " + ", ".join(missing)


def test_settings_page_is_what_the_generator_makes() -> None:
    page = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert splice_reference(page) == page, "stale: run `python -m drain.settings`"
    assert reference_markdown() in page


def test_splice_reference_needs_both_markers() -> None:
    with pytest.raises(ValueError, match="needs the line"):
        splice_reference("# Settings\n\nno markers here\n")


def _parse(body: bytes, tmp_path: Path) -> list[dict[str, object]]:
    """``drain parse`` of ``body``: its JSON lines, frames then the summary."""
    path = tmp_path / "body"
    path.write_bytes(body)
    result = subprocess.run(
        [*drain_command(), "parse", str(path)],
        env=clean_env(),
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_a_line_split_inside_a_character_is_invalid_utf8(tmp_path: Path) -> None:
    """docs/event-rules.md: the first part of a JSON object cut inside a multi-byte UTF-8
    character is quarantined ``invalid_utf8``, cut between characters ``invalid_json``; the
    rest of the line is a frame without ``@[``, counted as ``untagged``."""
    rules = (ROOT / "docs" / "event-rules.md").read_text(encoding="utf-8")
    row = next(line for line in rules.splitlines() if "inside a multi-byte character" in line)
    assert "`invalid_utf8`" in row
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    header = f"<134>1 {now} host app web.1 - ".encode()
    line = header + '@[example.cut] {"city":"Zürich","n":1}\n'.encode()

    def split_at(cut: int) -> bytes:
        parts = (line[:cut], header + line[cut:])
        return b"".join(b"%d %s" % (len(part), part) for part in parts)

    inside = line.index("ü".encode()) + 1
    between = line.index(b'","n"')
    for cut, reason in ((inside, "invalid_utf8"), (between, "invalid_json")):
        first, rest, summary = _parse(split_at(cut), tmp_path)
        assert (first["outcome"], first["reason"]) == ("quarantined", reason), first
        assert (rest["outcome"], rest["kind"]) == ("not_an_event", "untagged"), rest
        assert summary["events"] == 0
