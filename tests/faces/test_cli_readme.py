"""README's first two commands and CI agree: CI runs README's test command verbatim, and
checks README's first command against the system Python (.ci/first-command)."""

from __future__ import annotations

import re

from tests.support import REPO


def readme_commands() -> list[str]:
    block = re.search(r"^```sh\n(.*?)^```", (REPO / "README.md").read_text(), re.M | re.S)
    assert block is not None, "README.md starts with a ```sh block"
    return [re.sub(r"\s+#.*$", "", line) for line in block.group(1).splitlines()]


def test_ci_runs_readmes_test_command_verbatim_and_checks_its_first_command() -> None:
    first, test = readme_commands()[:2]
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert test in ci  # a line of its own, exactly
    assert ".ci/first-command" in (line.strip() for line in ci)
    assert "pipx install ." in first
    assert not first.startswith("pip install")
