"""Eval output: a terminal table, latest.md, latest.json and a chart comparing the systems."""

from __future__ import annotations

import json
from pathlib import Path

COLUMNS = ["hit@k", "mrr", "correctness", "citation_recall", "citation_precision", "evidence_overlap", "support",
           "abstention_precision", "abstention_recall", "false_abstention", "truthfulness", "answer_chars",
           "latency_p50_ms", "latency_p95_ms"]
CHART_METRICS = ["hit@k", "correctness", "citation_recall", "citation_precision", "support", "abstention_recall",
                 "truthfulness"]


def _fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if isinstance(value, float) and abs(value) >= 10 else f"{value:.2f}"


def _table(rows: list[tuple[str, dict]], first: str) -> list[str]:
    head = [first] + COLUMNS
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, metrics in rows:
        lines.append("| " + " | ".join([name] + [_fmt(metrics.get(c)) for c in COLUMNS]) + " |")
    return lines


def _guard_line(system: str, r: dict) -> str:
    g = r["guard"]
    share = "-" if g["removed_share"] is None else f"{g['removed_share']:.2f}"
    return (f"Grounding guard ({system}): removed {g['sentences_removed']} of {g['sentences_generated']} generated "
            f"sentences (share {share}); {g['fallbacks']} answers fell back to the extractive one.")


def render_markdown(result: dict) -> str:
    judge = result["judge"]
    out = ["# Grounding eval", "",
           f"k = {result['k']}; support judge threshold {result['support_threshold']}, "
           f"accuracy {judge['accuracy']:.1%} on {judge['pairs']} hand-labelled pairs "
           f"(wrong: {', '.join(judge['wrong']) or 'none'}).", ""]
    for name, run in result["runs"].items():
        out += [f"## {name}: {run['set']} ({run['items']} items)", ""]
        out += _table([(s, r["overall"]) for s, r in run["systems"].items()], "system")
        out += [line for system, r in run["systems"].items() if "guard" in r for line in ("", _guard_line(system, r))]
        out += ["", "Per type (ours):", ""]
        out += _table(list(run["systems"]["ours (hybrid)"]["by_type"].items()), "type")
        out += ["", f"Floors missed: {', '.join(run['floors_missed']) or 'none'}",
                f"Targets missed: {', '.join(run['targets_missed']) or 'none'}", ""]
        wrong = [i for i in run["systems"]["ours (hybrid)"]["items"]
                 if (i["answerable"] and not i["correct"]) or (not i["answerable"] and not i["abstained"])]
        if wrong:
            out += ["Items ours got wrong:", ""]
            out += [f"- {i['id']} ({i['type']}): {'abstained' if i['abstained'] else i['answer'][:160]}" for i in wrong]
            out.append("")
    return "\n".join(out)


def render_chart(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = list(result["runs"].items())
    fig, axes = plt.subplots(len(runs), 1, figsize=(11, 4 * len(runs)), squeeze=False)
    for ax, (name, run) in zip(axes[:, 0], runs):
        systems = list(run["systems"])
        width = 0.8 / len(systems)
        for i, system in enumerate(systems):
            values = [run["systems"][system]["overall"].get(m) or 0 for m in CHART_METRICS]
            ax.bar([x + i * width for x in range(len(CHART_METRICS))], values, width, label=system)
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(CHART_METRICS))], CHART_METRICS, fontsize=8)
        lowest = min(min(run["systems"][sy]["overall"].get(m) or 0 for m in CHART_METRICS) for sy in systems)
        ax.set_ylim(min(-0.1, lowest - 0.1), 1.05)
        ax.axhline(0, color="grey", linewidth=0.5)
        ax.set_title(f"{name} ({run['items']} items)")
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_reports(result: dict, out_dir: Path) -> str:
    """Write latest.md, latest.json and latest.png under out_dir; return the terminal table."""
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = render_markdown(result)
    (out_dir / "latest.md").write_text(markdown + "\n", encoding="utf-8")
    (out_dir / "latest.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    render_chart(result, out_dir / "latest.png")
    lines = []
    for name, run in result["runs"].items():
        lines.append(f"{name} ({run['set']}, {run['items']} items)")
        lines += _table([(s, r["overall"]) for s, r in run["systems"].items()], "system")
        lines += [_guard_line(s, r) for s, r in run["systems"].items() if "guard" in r]
        lines.append("")
    return "\n".join(lines)
