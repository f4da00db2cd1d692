"""The README and docs/*.md cannot drift from the code (datasette's habit).

Every relative link resolves (and its #anchor names a heading), every repository path named exists,
every `LIVESIGHT_*` variable and README settings-table row is a Settings field (literal defaults
match), every `livesight …` command and flag parses, every `make` target exists, every benchmark
module exists. Commands are checked against livesight.cli's parser, not run.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from livesight.cli import build_parser
from livesight.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Variables the docs name that are not Settings fields: the config path (settings.py reads it) and the
# client-side ones `livesight ask` / `publish` read (cli/ask.py, cli/publish.py).
NOT_SETTINGS = {"LIVESIGHT_API_KEY", "LIVESIGHT_CONFIG", "LIVESIGHT_URL"}

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
PATH = re.compile(r"(?<![\w./-])((?:bench|docs|notes|scripts|src|tests|shared)/[\w./-]*\w)")
CODE = re.compile(r"```.*?```|`[^`]+`", re.S)
COMMAND = re.compile(r"(?<![\w/-])(?:\.venv/bin/)?livesight((?: +[^\s`|;&#]+)+)")
MAKE = re.compile(r"(?<![\w-])make +([a-z][\w-]*)")
BENCH = re.compile(r"python -m (bench\.\w+)|(bench/\w+\.py)")


def doc_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def code_of(text: str) -> str:
    """The code of a page, one command a line: fenced blocks keep their lines (a trailing `\\` joins
    the next), an inline span that wraps in the source is one line."""
    parts = []
    for m in CODE.finditer(text):
        code = m.group(0)
        parts.append(
            code.strip("`").replace("\\\n", " ") if code.startswith("```") else code.strip("`").replace("\n", " ")
        )
    return "\n".join(parts)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", path.read_text(), re.M)}


@pytest.mark.parametrize("doc", DOCS, ids=doc_id)
def test_relative_links_resolve(doc: Path) -> None:
    broken = []
    for target in LINK.findall(doc.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (doc.parent / file).resolve() if file else doc
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{doc_id(doc)}: broken links {broken}"


@pytest.mark.parametrize("doc", DOCS, ids=doc_id)
def test_named_repository_paths_exist(doc: Path) -> None:
    missing = [p for p in PATH.findall(doc.read_text()) if not (ROOT / p.rstrip(".")).exists()]
    assert not missing, f"{doc_id(doc)}: names paths not in the repository {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=doc_id)
def test_environment_variables_are_settings(doc: Path) -> None:
    fields = set(Settings.model_fields)
    named = set(re.findall(r"LIVESIGHT_[A-Z0-9_]*[A-Z0-9]", doc.read_text())) - NOT_SETTINGS
    unknown = sorted(v for v in named if v.removeprefix("LIVESIGHT_").lower() not in fields)
    assert not unknown, f"{doc_id(doc)}: no such setting {unknown}"


def settings_tables(doc: Path) -> list[tuple[list[str], list[str]]]:
    """(names, shown defaults) of each row of every `| setting | default | … |` table in `doc`."""
    rows: list[tuple[list[str], list[str]]] = []
    lines = doc.read_text().splitlines()
    for start, header in enumerate(lines):
        if not header.startswith("| setting | default |"):
            continue
        for line in lines[start + 2 :]:
            if not line.startswith("|"):
                break
            names, default = [c.strip() for c in line.strip("|").split("|")][:2]
            rows.append((re.findall(r"`([^`]+)`", names), [d.strip().strip("`") for d in default.split(", ")]))
    return rows


def literal(text: str) -> object:
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"-?\d+\.\d+", text):
        return float(text)
    return {"true": True, "false": False, "[]": []}.get(text, text)


def test_settings_tables_name_real_settings_with_their_defaults() -> None:
    rows = [row for doc in DOCS for row in settings_tables(doc)]
    assert len(settings_tables(ROOT / "README.md")) > 10
    fields = Settings.model_fields
    compared = 0
    for names, defaults in rows:
        unknown = [n for n in names if n not in fields]
        assert not unknown, f"settings table: no such setting {unknown}"
        if len(defaults) != len(names):
            continue  # one prose default for several names ("from the request", …)
        for name, shown in zip(names, defaults, strict=True):
            actual = fields[name].get_default(call_default_factory=True)
            value = literal(shown)
            if isinstance(value, int | float | bool | list) or (isinstance(actual, str) and shown == actual):
                assert value == actual, f"docs say {name} defaults to {shown}, Settings says {actual!r}"
                compared += 1
    assert compared > 10  # the literal defaults really were compared


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def check_command(words: list[str]) -> str | None:
    """None if `livesight WORDS…` names a subcommand path that exists and only options it has."""
    parser = build_parser()
    path = ["livesight"]
    rest = list(words)
    if rest and not re.fullmatch(r"-?-?[a-z][\w-]*", rest[0]):
        return None  # `livesight demo: server running…`: a program's output, not a command
    while rest and (choices := subparsers(parser)) and not rest[0].startswith("-"):
        if rest[0] not in choices:
            return f"`{' '.join(path)} {rest[0]}`: no such subcommand"
        parser = choices[rest.pop(0)]
        path.append(parser.prog.split()[-1])
    options = {o for a in parser._actions for o in a.option_strings}
    for flag in rest:
        if re.fullmatch(r"--?[a-z][\w-]*", flag.split("=")[0]) and flag.split("=")[0] not in options:
            return f"`{' '.join(path)} {flag}`: no such option"
    return None


@pytest.mark.parametrize("doc", DOCS, ids=doc_id)
def test_commands_parse(doc: Path) -> None:
    errors = []
    for line in code_of(doc.read_text()).splitlines():
        for m in COMMAND.finditer(line):
            error = check_command(m.group(1).split())
            if error:
                errors.append(error)
    assert not errors, f"{doc_id(doc)}: {errors}"


@pytest.mark.parametrize("doc", DOCS, ids=doc_id)
def test_make_targets_and_benchmarks_exist(doc: Path) -> None:
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    text = doc.read_text()
    missing = [f"make {t}" for t in MAKE.findall(code_of(text)) if t not in targets]
    for module, file in BENCH.findall(text):
        name = file or module.replace(".", "/") + ".py"
        if not (ROOT / name).exists():
            missing.append(name)
    assert not missing, f"{doc_id(doc)}: {missing}"


def test_the_checks_catch_drift() -> None:
    """The matchers find what they look for (a check that matches nothing cannot fail)."""
    assert check_command(["serve", "--port", "1"]) is None
    assert check_command(["serve", "--no-such-flag"]) is not None
    assert check_command(["bench"]) is not None
    assert check_command(["keys", "create", "--name", "x"]) is None
    assert check_command(["keys", "create", "--nope"]) is not None
    assert check_command(["--version"]) is None
    assert check_command(["demo:", "server", "running"]) is None
    found = COMMAND.search("`.venv/bin/livesight publish clip.mp4 --loop`")
    assert found and found.group(1).split() == ["publish", "clip.mp4", "--loop"]
    assert not COMMAND.search("`livesight/ocr`")
    assert code_of("x `livesight ask A\n--model m` y") == "livesight ask A --model m"
    assert PATH.findall("see notes/x.md.") == ["notes/x.md"]
    assert slug("Connection limits") == "connection-limits"
    assert "connection-limits" in anchors(ROOT / "docs" / "architecture.md")
