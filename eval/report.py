"""Files a run leaves in ``--out DIR``: report.json, run.trec, report.md and PNG plots.

Retrieval runs are written as ``qid Q0 docid rank score tag`` (tag: the configuration): one file per
configuration in ``runs/``, and ``run.trec`` for the best configuration by NDCG@10 (the only one
when a single configuration ran), ready for ``trec_eval``.
Scores are made strictly decreasing within a query so that no outside tool can reorder ties.
"""

from __future__ import annotations

import json
from pathlib import Path

from eval.runner import ConfigResult, EvalReport

# Metrics shown in the Markdown tables and plots, when present.
RETRIEVAL_COLUMNS = ("hit_rate@10", "mrr@10", "ndcg@10", "recall@100")
ANSWER_COLUMNS = ("exact_match", "token_f1", "answer_contains_gold", "citation_accuracy", "faithfulness",
                  "false_abstention", "abstention_unanswerable")


def trec_lines(result: ConfigResult) -> list[str]:
    tag = result.config.slug
    lines = []
    for qid in sorted(result.run):
        previous = float("inf")
        for rank, (doc, score) in enumerate(result.run[qid], start=1):
            score = min(score, previous - 1e-6) if previous != float("inf") else score
            previous = score
            lines.append(f"{qid} Q0 {doc} {rank} {score:.6f} {tag}")
    return lines


def markdown(report: EvalReport) -> str:
    lines = [f"# Evaluation: {report.dataset}", "",
             f"Layout {report.layout}, split `{report.split}`, {report.queries} queries.", ""]
    rows = [r for r in report.results if r.run]
    if rows:
        columns = [c for c in RETRIEVAL_COLUMNS if c in rows[0].metrics]
        lines += ["## Retrieval", "", "| configuration | " + " | ".join(columns) + " | p50 ms |",
                  "|---|" + "---:|" * (len(columns) + 1)]
        for r in rows:
            cells = [f"{r.metrics[c]:.4f}" for c in columns]
            lines.append(f"| {r.config.name} | " + " | ".join(cells) +
                         f" | {r.latency_ms.get('retrieval_p50', 0):.0f} |")
        lines.append("")
    answered = [r for r in report.results if r.rows]
    if answered:
        columns = [c for c in ANSWER_COLUMNS if any(c in r.metrics for r in answered)]
        lines += ["## Answers", "", "| configuration | answer mode | " + " | ".join(columns) + " | p50 s |",
                  "|---|---|" + "---:|" * (len(columns) + 1)]
        for r in answered:
            cells = [f"{r.metrics[c]:.3f}" if c in r.metrics else "-" for c in columns]
            lines.append(f"| {r.config.name} | {r.config.answer_mode} | " + " | ".join(cells) +
                         f" | {r.latency_ms.get('answer_p50', 0) / 1000:.2f} |")
        lines.append("")
    notes = sorted({n for r in report.results for n in r.notes})
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    lines += ["## Time", "", "| step | seconds |", "|---|---:|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in report.timings_s.items()] + [""]
    return "\n".join(lines)


def plots(report: EvalReport, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    written = []
    names = [r.config.name + (f" [{r.config.answer_mode}]" if r.rows else "") for r in report.results]
    metrics = [c for c in RETRIEVAL_COLUMNS + ANSWER_COLUMNS if any(c in r.metrics for r in report.results)][:6]
    if metrics:
        fig, ax = plt.subplots(figsize=(min(18, max(6, 1.1 * len(names))), 5))
        width = 0.8 / len(metrics)
        for i, metric in enumerate(metrics):
            ax.bar([x + i * width for x in range(len(names))], [r.metrics.get(metric, 0) for r in report.results],
                   width, label=metric)
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(names))], names, rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_title(f"{report.dataset}: metric by configuration")
        ax.legend(fontsize=8)
        fig.tight_layout()
        written.append(out / "metrics.png")
        fig.savefig(written[-1], dpi=120)
        plt.close(fig)
    key = "answer_p50" if any("answer_p50" in r.latency_ms for r in report.results) else "retrieval_p50"
    fig, ax = plt.subplots(figsize=(min(18, max(6, 0.9 * len(names))), 4.5))
    ax.bar(names, [r.latency_ms.get(key, 0) for r in report.results], color="tab:gray")
    ax.set_ylabel(f"{key.replace('_', ' ')} (ms)")
    ax.set_title(f"{report.dataset}: latency by configuration")
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    fig.tight_layout()
    written.append(out / "latency.png")
    fig.savefig(written[-1], dpi=120)
    plt.close(fig)
    return written


def write_report(report: EvalReport, out: Path) -> list[Path]:
    """Write every file of the report; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "report.json", out / "report.md"]
    data = report.to_dict()
    data["rows"] = {r.config.name + f" [{r.config.answer_mode}]": r.rows for r in report.results if r.rows}
    written[0].write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    written[1].write_text(markdown(report), encoding="utf-8")
    runs = [r for r in report.results if r.run]
    if runs:
        (out / "runs").mkdir(exist_ok=True)
        for r in runs:
            path = out / "runs" / f"{r.config.slug}.trec"
            path.write_text("\n".join(trec_lines(r)) + "\n", encoding="utf-8")
            written.append(path)
        best = max(runs, key=lambda r: r.metrics.get("ndcg@10", 0.0))
        (out / "run.trec").write_text("\n".join(trec_lines(best)) + "\n", encoding="utf-8")
        written.append(out / "run.trec")
    written.extend(plots(report, out))
    return written
