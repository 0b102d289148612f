"""docs/deploy.md read as data: its `sh` blocks (the commands a deployment runs, in order) and its secrets table.

The doc is the one owner of the deployment's steps: the rehearsal (production/test_deploy_rehearsal.py) runs
the commands these functions read, and test_container.py holds the secrets table to dlt_platform/settings.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from dlt_platform.settings import PROJECT_ROOT

DEPLOY_DOC = PROJECT_ROOT / "docs" / "deploy.md"


@dataclass(frozen=True)
class DocCommand:
    section: str  # the `## ` heading the block is under
    line: int  # 1-based line in the doc
    text: str  # the command, its trailing `# comment` removed


def shell_commands(path: Path = DEPLOY_DOC) -> list[DocCommand]:
    """Every command of every fenced `sh` block, in the doc's order."""
    commands, section, in_block = [], "", False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not in_block and line.startswith("## "):
            section = line[3:].strip()
        elif line.strip() == "```sh":
            in_block = True
        elif in_block and line.strip() == "```":
            in_block = False
        elif in_block:
            text = re.sub(r"\s+#\s.*$", "", line).strip()
            if text and not text.startswith("#"):
                commands.append(DocCommand(section, number, text))
    return commands


def secrets_table(path: Path = DEPLOY_DOC) -> dict[str, str]:
    """Step 4's table: each secret named in its first column, with its `needed` cell. Rows whose names the
    definitions choose (webhook signing secrets, rest_api credentials) have no fixed name and are left out."""
    doc = path.read_text(encoding="utf-8")
    section = doc[doc.index("## 4. Secrets"):]
    section = section[:section.index("\n## ", 1)]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].startswith("`"):
            continue
        for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", cells[0]):
            rows[name] = cells[1]
    return rows
