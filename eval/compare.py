"""``rag eval --compare A.json B.json``: differences between two reports, and regressions beyond a threshold.

Configurations are matched by name (and answer mode). A metric regresses when it moves the wrong way
by more than ``threshold`` (absolute): down for quality metrics, up for ``false_abstention``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

LOWER_IS_BETTER = frozenset({"false_abstention", "queries_without_results"})
IGNORED = frozenset({"answered"})


@dataclass(frozen=True)
class Difference:
    config: str
    metric: str
    before: float
    after: float
    regression: bool

    @property
    def delta(self) -> float:
        return self.after - self.before


def _results(path: Path) -> dict[str, dict[str, float]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {f"{r['config']['name']} [{r['config']['answer_mode']}]": r["metrics"] for r in data["results"]}
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a report.json written by rag eval ({exc})") from exc


def compare(before: Path, after: Path, threshold: float = 0.01) -> list[Difference]:
    a, b = _results(before), _results(after)
    common = [name for name in a if name in b]
    if not common:
        raise ValueError(f"{before} and {after} share no configuration: nothing to compare")
    diffs = []
    for name in common:
        for metric in a[name]:
            if metric in IGNORED or metric not in b[name]:
                continue
            x, y = a[name][metric], b[name][metric]
            worse = (y - x) if metric in LOWER_IS_BETTER else (x - y)
            diffs.append(Difference(name, metric, x, y, worse > threshold))
    return diffs


def format_differences(diffs: list[Difference], threshold: float) -> str:
    lines = [f"{'configuration':<40} {'metric':<26} {'before':>8} {'after':>8} {'delta':>8}"]
    for d in diffs:
        flag = "  REGRESSION" if d.regression else ""
        lines.append(f"{d.config:<40} {d.metric:<26} {d.before:>8.4f} {d.after:>8.4f} {d.delta:>+8.4f}{flag}")
    regressions = sum(d.regression for d in diffs)
    lines.append(f"{regressions} regression(s) beyond {threshold}")
    return "\n".join(lines)
