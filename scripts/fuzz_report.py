"""The fuzz's per-operation figures and its verdict, from what fuzz_hooks.py recorded.

Usage: python scripts/fuzz_report.py report RECORD DOCUMENT REPORTS
       python scripts/fuzz_report.py linked DOCUMENT

RECORD holds a line per answer (fuzz_hooks.py), DOCUMENT is the OpenAPI document, REPORTS a
directory with a schemathesis NDJSON report per pass (`REPORTS/<pass>/*.ndjson`). `linked`
prints a regular expression of the operation ids the document's links join.

Prints, for each pass, every operation with how many answers of each status it got, and how
often the stateful phase followed each link the document declares. Fails (exit status 1) when
an operation that needs a session only ever answered 401 in a pass (its session was gone, so
nothing behind the session check was fuzzed), when a documented operation was never called, or
when the stateful phase followed none of the document's links.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any


def read_record(path: Path) -> dict[str, dict[str, Counter[int]]]:
    """pass -> operation -> status -> how many answers."""
    counts: dict[str, dict[str, Counter[int]]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, operation, status = line.split("\t")
        counts.setdefault(name, {}).setdefault(operation, Counter())[int(status)] += 1
    return counts


def documented_operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`METHOD /path` -> the operation object, for every operation of the document."""
    return {
        f"{method.upper()} {path}": operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method != "parameters"
    }


def needs_session(operation: dict[str, Any]) -> bool:
    """Whether the operation is only for a signed-in user."""
    return any("session" in requirement for requirement in operation.get("security", []))


def _links(operations: dict[str, dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    """(source `METHOD /path`, link name, link object) of every link of the document."""
    return [
        (label, name, link)
        for label, operation in operations.items()
        for response in operation["responses"].values()
        for name, link in response.get("links", {}).items()
    ]


def declared_links(operations: dict[str, dict[str, Any]]) -> list[str]:
    """`SOURCE -> link name` of every link of the document."""
    return [f"{label} -> {name}" for label, name, _ in _links(operations)]


def linked(document: str) -> int:
    """Print `^(id|id|...)$`: the operation ids at either end of a link of the document."""
    operations = documented_operations(json.loads(Path(document).read_text(encoding="utf-8")))
    ids = set()
    for label, _, link in _links(operations):
        ids |= {operations[label]["operationId"], link["operationId"]}
    print("^(" + "|".join(sorted(ids)) + ")$")
    return 0


def _transitions(event: Any) -> list[dict[str, Any]]:
    """The transitions (links followed) an NDJSON event records."""
    if isinstance(event, dict):
        found = [event] if {"id", "parent_id", "is_inferred"} <= event.keys() else []
        return found + [item for value in event.values() for item in _transitions(value)]
    if isinstance(event, list):
        return [item for value in event for item in _transitions(value)]
    return []


def followed_links(reports: Path) -> dict[str, Counter[str]]:
    """pass -> `SOURCE -> link name` -> how often the stateful phase followed that declared link.

    A transition's id reads `GET /api/account -> [200] updateAccount -> PUT /api/account`.
    """
    followed: dict[str, Counter[str]] = {}
    for report in sorted(reports.glob("*/*.ndjson")):
        seen = set()
        for line in report.read_text(encoding="utf-8").splitlines():
            for transition in _transitions(json.loads(line)):
                if not transition["is_inferred"]:
                    seen.add((transition["parent_id"], transition["id"]))
        counter = followed.setdefault(report.parent.name, Counter())
        for _, identifier in seen:
            source, step, _target = identifier.split(" -> ")
            counter[f"{source} -> {step.split('] ', 1)[1]}"] += 1
    return followed


def verdict(
    counts: dict[str, dict[str, Counter[int]]],
    operations: dict[str, dict[str, Any]],
    followed: dict[str, Counter[str]],
) -> list[str]:
    """What makes the run a failure, in sentences (none: it passes)."""
    problems = []
    for name, by_operation in counts.items():
        for label, statuses in sorted(by_operation.items()):
            if set(statuses) == {401} and needs_session(operations[label]):
                problems.append(f"{label} only ever answered 401 in the {name} pass")
    called = {label for by_operation in counts.values() for label in by_operation}
    problems += [f"{label} was never called" for label in operations if label not in called]
    if not any(followed.values()):
        problems.append("the stateful phase followed none of the document's links")
    return problems


def report(record: str, document: str, reports: str) -> int:
    """Print the figures and the verdict; return the exit status."""
    counts = read_record(Path(record))
    operations = documented_operations(json.loads(Path(document).read_text(encoding="utf-8")))
    followed = followed_links(Path(reports))
    for name, by_operation in counts.items():
        print(f"fuzz: {name} pass, answers per operation (status: count)")
        width = max(map(len, by_operation))
        for label, statuses in sorted(by_operation.items()):
            figures = "  ".join(f"{status}: {count}" for status, count in sorted(statuses.items()))
            print(f"  {label:<{width}}  {figures}")
    total = sum(sum(statuses.values()) for by in counts.values() for statuses in by.values())
    print(f"fuzz: {total} requests answered")
    print("fuzz: links followed by the stateful phase (per pass)")
    for link in declared_links(operations):
        times = ", ".join(f"{name}: {links[link]}" for name, links in followed.items())
        print(f"  {link}  {times}")
    problems = verdict(counts, operations, followed)
    for problem in problems:
        print(f"fuzz: FAILED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    sys.exit({"report": report, "linked": linked}[command](*arguments))
