"""docs/ARCHITECTURE.md stays true: every path, function and class it names exists in the code."""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOC = (REPO / "docs" / "ARCHITECTURE.md").read_text()
CODE = "\n".join(p.read_text() for d in ("core", "filters", "plugins") for p in (REPO / d).rglob("*.py"))
SPANS = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", DOC, flags=re.DOTALL))


def _paths() -> list[str]:
    found = set()
    for span in SPANS:
        for token in re.findall(r"(?:core|filters|plugins|tests|tools|benchmarks|docs)/[\w./]*", span):
            found.add(token.rstrip("."))
    return sorted(found)


def _callables() -> list[str]:
    return sorted({m for span in SPANS for m in re.findall(r"^(?:\w+\.)?(\w+)\(", span)})


def _classes() -> list[str]:
    return sorted({s for s in SPANS if re.fullmatch(r"[A-Z][a-z]+[A-Z]\w*", s)})


def test_the_doc_names_enough_to_be_checked() -> None:
    assert len(_paths()) > 40 and len(_callables()) > 10 and len(_classes()) > 10


@pytest.mark.parametrize("path", _paths())
def test_named_path_exists(path: str) -> None:
    assert (REPO / path).exists(), f"docs/ARCHITECTURE.md names {path}, which does not exist"


@pytest.mark.parametrize("name", _callables())
def test_named_function_exists(name: str) -> None:
    assert re.search(rf"\bdef {name}\b", CODE), f"docs/ARCHITECTURE.md names {name}(), defined nowhere"


@pytest.mark.parametrize("name", _classes())
def test_named_class_exists(name: str) -> None:
    assert re.search(rf"\bclass {name}\b", CODE), f"docs/ARCHITECTURE.md names class {name}, defined nowhere"
