"""The benchmark's figures: each round's summary, the budget's verdicts, the table and chart."""

from __future__ import annotations

import statistics
from pathlib import Path

# The performance budget of an endpoint measured against a floor, by the floor's kind, on both
# databases: the ratio to the floor's requests/s and the service's p99. A verdict, not asserted.
BUDGET = {
    "read": {"floor_ratio": 0.80, "p99_ms": 15.0},
    "write": {"floor_ratio": 0.70, "p99_ms": 25.0},
    # The API key check: against its write floor (the key's user's counter in one UPDATE).
    "verify": {"floor_ratio": 0.65, "p99_ms": 25.0},
}


def round_summary(rounds: list[dict]) -> dict:
    """Medians over the rounds (each ratio is the median of the per-round ratios)."""

    def median(server: str, key: str) -> float:
        return statistics.median(r[server][key] for r in rounds)

    summary = {
        "rps": median("service", "rps"),
        "p50_ms": median("service", "p50_ms"),
        "p99_ms": median("service", "p99_ms"),
        "ceiling_rps": median("ceiling", "rps"),
        "ceiling_p50_ms": median("ceiling", "p50_ms"),
        "ceiling_p99_ms": median("ceiling", "p99_ms"),
        "ratio": statistics.median(r["ratio"] for r in rounds),
    }
    if "floor" in rounds[0]:
        summary |= {
            "floor_rps": median("floor", "rps"),
            "floor_p50_ms": median("floor", "p50_ms"),
            "floor_p99_ms": median("floor", "p99_ms"),
            "floor_ratio": statistics.median(r["floor_ratio"] for r in rounds),
            "stack_rps": median("stack", "rps"),
            "stack_ratio": statistics.median(r["stack_ratio"] for r in rounds),
            "stack_floor_ratio": statistics.median(r["stack_floor_ratio"] for r in rounds),
        }
    return summary


def verdicts(report: dict) -> list[dict]:
    """The budget against the medians: one verdict per endpoint with a floor, per database."""
    found = []
    for kind, results in report["results"].items():
        for label, result in results.items():
            budget = BUDGET.get(result["floor"] or "")
            if budget is None:
                continue
            m = result["median"]
            ratio_met = m["floor_ratio"] >= budget["floor_ratio"]
            p99_met = m["p99_ms"] < budget["p99_ms"]
            found.append(
                {
                    "database": kind,
                    "endpoint": label,
                    "floor": result["floor"],
                    "floor_ratio": m["floor_ratio"],
                    "floor_ratio_budget": budget["floor_ratio"],
                    "floor_ratio_met": ratio_met,
                    # The most this stack allows: the stack floor's own ratio to the floor.
                    "stack_floor_ratio": m["stack_floor_ratio"],
                    "p99_ms": m["p99_ms"],
                    "p99_ms_budget": budget["p99_ms"],
                    "p99_met": p99_met,
                }
            )
    return found


def print_table(report: dict) -> None:
    """Print the medians per database and endpoint, and the budget's verdict."""
    print("\nMedians of", report["config"]["rounds"], "rounds,", report["config"]["load"])
    print(
        f"{'database':10s} {'endpoint':38s} {'rps':>6s} {'p50 ms':>7s} {'p99 ms':>7s} "
        f"{'floor':>5s} {'floor rps':>9s} {'/floor':>6s} {'/stack':>6s} {'stack/floor':>11s} "
        f"{'ceiling rps':>11s} {'/ceiling':>8s}"
    )
    for kind, results in report["results"].items():
        for label, result in results.items():
            m = result["median"]
            floor = (
                f"{result['floor']:>5s} {m['floor_rps']:9.0f} {m['floor_ratio']:6.3f} "
                f"{m['stack_ratio']:6.3f} {m['stack_floor_ratio']:11.3f}"
                if result["floor"]
                else f"{'-':>5s} {'-':>9s} {'-':>6s} {'-':>6s} {'-':>11s}"
            )
            print(
                f"{kind:10s} {label:38s} {m['rps']:6.0f} {m['p50_ms']:7.2f} {m['p99_ms']:7.2f} "
                f"{floor} {m['ceiling_rps']:11.0f} {m['ratio']:8.3f}"
            )
    for v in report["budget"]:
        print(
            f"budget {v['endpoint']} on {v['database']}: {v['floor']} floor ratio "
            f"{v['floor_ratio']:.3f} >= {v['floor_ratio_budget']}: "
            f"{'met' if v['floor_ratio_met'] else 'NOT MET'}; p99 {v['p99_ms']:.2f} ms "
            f"< {v['p99_ms_budget']}: {'met' if v['p99_met'] else 'NOT MET'} "
            f"(the stack floor reaches {v['stack_floor_ratio']:.3f})"
        )


def draw_chart(report: dict, path: Path) -> None:
    """Draw throughput against the floor and the ceiling, and latency, per endpoint and
    database."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(report["results"])
    fig, axes = plt.subplots(2, len(kinds), figsize=(7 * len(kinds), 9), squeeze=False)
    for column, kind in enumerate(kinds):
        results = report["results"][kind]
        labels = [label.replace(" /api", "\n/api") for label in results]
        medians = [r["median"] for r in results.values()]
        x = range(len(medians))
        top = axes[0][column]
        width = 0.27
        top.bar([i - width for i in x], [m["rps"] for m in medians], width, label="service")
        top.bar(
            list(x),
            [m.get("floor_rps", 0) for m in medians],
            width,
            label="floor (bare Flask, same database work)",
            color="#7a9cc6",
        )
        top.bar(
            [i + width for i in x],
            [m["ceiling_rps"] for m in medians],
            width,
            label="ceiling (bare Flask, no work)",
            color="#bbbbbb",
        )
        for i, m in zip(x, medians, strict=True):
            if "floor_ratio" in m:
                top.annotate(
                    f"{m['floor_ratio']:.2f}", (i - width, m["rps"]), ha="center", va="bottom"
                )
        top.set_title(f"{kind}: requests/s (ratio to the floor above the service's bar)")
        top.set_xticks(list(x), labels, fontsize=8)
        top.set_ylabel("requests per second")
        # Headroom above the tallest bar for the legend.
        top.set_ylim(0, 1.35 * max(max(m["rps"], m["ceiling_rps"]) for m in medians))
        top.legend(loc="upper right", fontsize=8)
        bottom = axes[1][column]
        half = width * 1.4 / 2
        bottom.bar([i - half for i in x], [m["p50_ms"] for m in medians], width * 1.4, label="p50")
        bottom.bar([i + half for i in x], [m["p99_ms"] for m in medians], width * 1.4, label="p99")
        for floor, budget in BUDGET.items():
            bottom.axhline(
                budget["p99_ms"],
                color="red",
                linestyle="--" if floor == "read" else ":",
                label=f"p99 budget, {floor}s",
            )
        bottom.set_title(f"{kind}: service latency (ms)")
        bottom.set_xticks(list(x), labels, fontsize=8)
        bottom.set_ylabel("milliseconds")
        bottom.set_ylim(0, 1.35 * max(max(m["p99_ms"] for m in medians), BUDGET["write"]["p99_ms"]))
        bottom.legend(loc="upper left", fontsize=8)
    config = report["config"]
    gunicorn = config["gunicorn"].split(" --bind")[0]
    fig.suptitle(
        f"SmartCV Account hot path vs its database floor, {gunicorn}, {config['load']}, "
        f"median of {config['rounds']} rounds ({report['machine']['cpus']} CPUs)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
