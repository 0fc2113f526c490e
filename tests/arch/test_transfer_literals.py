"""No transfer state is spelled as a string outside `p2pim/transfer/state.py`.

Every comparison, default and display of a transfer's state uses `TransferState`, so the
table in state.py is the one place the lifecycle is written.  A few other vocabularies
share a word with it (a message's delivery mark "failed", a file's outcome "cancelled",
a declined room invitation): each is a named definition of its own, listed below.
"""

from __future__ import annotations

import ast
from pathlib import Path

from p2pim.transfer.state import TransferState

PACKAGE = Path(__file__).resolve().parents[2] / "p2pim"
HOME = "transfer/state.py"
STATES = {state.value for state in TransferState}

# (module, where the string is bound or used, the string): other vocabularies that
# share a word with the lifecycle, not transfer states.
OTHER_VOCABULARIES = {
    ("sessions.py", "Adoption.FAILED", "failed"),  # a session that could not be recorded
    ("wire/messages.py", "Outcome.CANCELLED", "cancelled"),  # a file cut short
    ("wire/messages.py", "CANCEL_EXPIRED", "expired"),  # a TransferCancel reason
    ("wire/messages.py", "CANCEL_DEFAULT", "cancelled"),  # a TransferCancel reason
    ("ui/model.py", "Mark", "failed"),  # the delivery marks of a message
    ("ui/model.py", "FAILED_MARK", "failed"),
    ("ui/format.py", "DELIVERY_MARK", "failed"),
    ("commands/rooms.py", "room_decline", "declined"),  # a room invitation declined
    ("commands/files.py", "def follow", "accepted"),  # OfferAnswered's field `accepted`
}


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring nodes: prose may name a state."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _spelled_states(path: Path) -> list[tuple[str, int, str]]:
    """(where it is bound, line, the string) of every state spelled in `path`."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings = _docstrings(tree)
    found: list[tuple[str, int, str]] = []

    def visit(node: ast.AST, scope: str, binding: str | None) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value in STATES and id(node) not in docstrings:
                found.append((binding or scope, node.lineno, node.value))
            return
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            inner = f"{scope}.{node.name}" if scope else node.name
            kind = "class" if isinstance(node, ast.ClassDef) else "def"
            for child in ast.iter_child_nodes(node):
                visit(child, inner if kind == "class" else f"def {inner}", None)
            return
        if (
            binding is None
            and not scope.startswith("def ")
            and isinstance(node, ast.Assign | ast.AnnAssign)
        ):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            if names:
                binding = f"{scope}.{names[0]}" if scope else names[0]
        for child in ast.iter_child_nodes(node):
            visit(child, scope, binding)

    visit(tree, "", None)
    return found


def test_no_transfer_state_is_spelled_outside_its_table() -> None:
    spelled = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        if module == HOME:
            continue
        for where, line, value in _spelled_states(path):
            if (module, where, value) not in OTHER_VOCABULARIES:
                spelled.append(f"{module}:{line} {value!r} in {where}")
    assert spelled == []


def test_the_scan_finds_a_spelled_state(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""Docstrings may say offered."""\n'
        "LABEL = 'offered'\n"
        "def f(t):\n"
        "    return t.state == 'accepted'\n"
    )
    assert _spelled_states(sample) == [("LABEL", 2, "offered"), ("def f", 4, "accepted")]
