"""Evaluation configurations: one point of the grid (chunker x retrieval x re-ranking x expansion x answer mode).

A grid is written ``axis=value,value;axis=value`` with the axes ``chunker``, ``mode``, ``rerank``
(on/off), ``expansion`` (none, decompose, multi-query, hyde, or several joined with ``+``) and
``answer`` (extractive, generative, auto), e.g. ``--grid "mode=bm25,dense,hybrid;rerank=off,on"``.
Axes left out keep the value from the settings.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import get_args

from rag.expansion import EXPANSIONS
from rag.settings import AnswerMode, ChunkerName, Settings

MODES = ("bm25", "dense", "hybrid")
AXES = ("chunker", "mode", "rerank", "expansion", "answer")
# ``--grid`` alone: each retriever alone, fused, and fused + re-ranked.
DEFAULT_GRID = "mode=bm25,dense,hybrid;rerank=off | mode=hybrid;rerank=on"
# Named configurations for ``--config NAME`` (anything else is read as a settings file).
NAMED = {
    "bm25": {"mode": "bm25", "rerank": "off"},
    "dense": {"mode": "dense", "rerank": "off"},
    "hybrid": {"mode": "hybrid", "rerank": "off"},
    "hybrid+rerank": {"mode": "hybrid", "rerank": "on"},
}


@dataclass(frozen=True)
class EvalConfig:
    chunker: ChunkerName
    mode: str
    rerank: bool
    expansion: tuple[str, ...]
    answer_mode: AnswerMode

    @property
    def name(self) -> str:
        parts = [self.chunker, self.mode + ("+rerank" if self.rerank else "")]
        if self.expansion:
            parts.append("+".join(self.expansion))
        return "/".join(parts)

    @property
    def slug(self) -> str:
        return self.name.replace("/", "_").replace("+", "-")

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "chunker": self.chunker, "retrieval_mode": self.mode, "rerank": self.rerank,
                "expansion": list(self.expansion), "answer_mode": self.answer_mode}

    @classmethod
    def from_settings(cls, settings: Settings) -> EvalConfig:
        return cls(settings.chunker, settings.retrieval_mode, settings.rerank, tuple(settings.query_expansion),
                   settings.answer_mode)


def _parse_value(axis: str, value: str) -> object:
    if axis == "chunker":
        if value not in get_args(ChunkerName):
            raise ValueError(f"grid: unknown chunker {value!r}; choose from {list(get_args(ChunkerName))}")
        return value
    if axis == "mode":
        if value not in MODES:
            raise ValueError(f"grid: unknown retrieval mode {value!r}; choose from {list(MODES)}")
        return value
    if axis == "rerank":
        if value not in ("on", "off", "true", "false"):
            raise ValueError(f"grid: rerank takes on/off, got {value!r}")
        return value in ("on", "true")
    if axis == "expansion":
        kinds = () if value == "none" else tuple(value.split("+"))
        if set(kinds) - set(EXPANSIONS):
            raise ValueError(f"grid: unknown expansion {value!r}; choose from none, {', '.join(EXPANSIONS)}")
        return kinds
    if value not in get_args(AnswerMode):
        raise ValueError(f"grid: unknown answer mode {value!r}; choose from {list(get_args(AnswerMode))}")
    return value


def parse_axes(spec: str) -> dict[str, list[object]]:
    axes: dict[str, list[object]] = {}
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        axis, _, values = part.partition("=")
        axis = axis.strip()
        if axis not in AXES or not values:
            raise ValueError(f"grid: expected 'axis=value,value' with axis in {list(AXES)}, got {part!r}")
        axes[axis] = [_parse_value(axis, v.strip()) for v in values.split(",") if v.strip()]
    return axes


def grid(spec: str, settings: Settings) -> list[EvalConfig]:
    """Every combination of the axes in ``spec``; ``A | B`` is the union of two grids (without repeats).

    Chunkers vary slowest, so each index is built once.
    """
    base = EvalConfig.from_settings(settings)
    configs: list[EvalConfig] = []
    for part in spec.split("|"):
        axes = parse_axes(part)
        values = [axes.get("chunker", [base.chunker]), axes.get("mode", [base.mode]),
                  axes.get("rerank", [base.rerank]), axes.get("expansion", [base.expansion]),
                  axes.get("answer", [base.answer_mode])]
        configs.extend(c for c in (EvalConfig(*combo) for combo in itertools.product(*values))  # type: ignore[arg-type]
                       if c not in configs)
    chunkers = list(dict.fromkeys(c.chunker for c in configs))
    return sorted(configs, key=lambda c: chunkers.index(c.chunker))


def named(name: str, settings: Settings) -> EvalConfig:
    spec = ";".join(f"{axis}={value}" for axis, value in NAMED[name].items())
    return grid(spec, settings)[0]
