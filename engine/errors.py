"""Errors that name what is wrong and where.

Every user-facing error in goldenhour is a list of problems, each a JSON path and a message, so
that a planner can fix a scenario file in one pass instead of one error per run.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where (a JSON path or file name) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class InputError(ValueError):
    """Base class: bad input, carrying every problem found at once."""

    def __init__(self, problems: list[Problem] | Problem):
        if isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ScenarioError(InputError):
    """A scenario file (or dict) that does not follow SPEC §4."""


class PlanError(InputError):
    """A plan that breaks the rules of SPEC §5 for its scenario."""


class DeltaError(InputError):
    """An online update that cannot be applied (SPEC §8); the model is left unchanged."""


def json_path(loc: tuple) -> str:
    """Turn a pydantic error location into a JSON path such as ``casualties[3].health``.

    Union tags that goldenhour adds to tell input shapes apart are written ``<like-this>`` and are
    not part of the file, so they are dropped.
    """
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.startswith("<"):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out or "$"
