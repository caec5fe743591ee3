"""The Agent Skill the gateway distributes: its frontmatter, files and their digests."""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

SKILL_NAME = "killa-tamata"
ENTRYPOINT = "SKILL.md"
# The skill lives at the top of the source tree (the product card fixes the layout).
DEFAULT_SKILL_DIR = Path(__file__).resolve().parents[2] / "skill" / SKILL_NAME


@dataclass(frozen=True)
class SkillFile:
    path: str
    sha256: str
    size: int
    media_type: str


class Skill:
    def __init__(self, root: Path = DEFAULT_SKILL_DIR) -> None:
        if not (root / ENTRYPOINT).is_file():
            raise FileNotFoundError(f"no {ENTRYPOINT} in skill folder {root}")
        self.root = root

    @cached_property
    def frontmatter(self) -> dict[str, Any]:
        text = (self.root / ENTRYPOINT).read_text(encoding="utf-8")
        _, header, _ = text.split("---", 2)
        data = yaml.safe_load(header)
        if not isinstance(data, dict):
            raise ValueError(f"{ENTRYPOINT} frontmatter is not a mapping")
        return data

    @property
    def name(self) -> str:
        return str(self.frontmatter["name"])

    @property
    def description(self) -> str:
        return str(self.frontmatter["description"])

    @property
    def version(self) -> str:
        return str(self.frontmatter["metadata"]["version"])

    @property
    def compatible_api_version(self) -> str:
        return str(self.frontmatter["metadata"]["compatibleApiVersion"])

    @cached_property
    def files(self) -> list[SkillFile]:
        found = []
        for path in sorted(p for p in self.root.rglob("*") if p.is_file()):
            data = path.read_bytes()
            relative = path.relative_to(self.root).as_posix()
            media_type = (
                "text/markdown"
                if path.suffix == ".md"
                else (mimetypes.guess_type(path.name)[0] or "application/octet-stream")
            )
            found.append(
                SkillFile(relative, hashlib.sha256(data).hexdigest(), len(data), media_type)
            )
        return found

    def file(self, relative: str) -> SkillFile | None:
        return next((f for f in self.files if f.path == relative), None)
