"""``report.png`` of a build (``qsnn-hw synth``): how full the device is, resource by
resource, and the Fmax each clock domain achieved against its constraint."""

from __future__ import annotations

from .._plot import pyplot

# rows of the utilisation panel: the device's resources (I/O and the PLL say little)
SKIP = ("io", "pll")


def report_figure(report: dict):
    """The figure of a build report (the dict ``report.json`` holds)."""
    plt = pyplot()
    rows = [(k, r) for k, r in report["resources"].items() if k not in SKIP and r["available"]]
    fmax = report.get("fmax", {})
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, max(3.2, 1.4 + 0.4 * len(rows))),
                                   gridspec_kw={"width_ratios": [3, 2]})
    ys = list(range(len(rows)))[::-1]
    pct = [100 * r["used"] / r["available"] for _, r in rows]
    colors = ["tab:red" if p > 100 else "tab:orange" if p > 85 else "tab:blue" for p in pct]
    ax1.barh(ys, pct, color=colors)
    for y, p, (_, r) in zip(ys, pct, rows, strict=True):
        ax1.text(min(p, 100) + 1, y, f"{r['used']:,} / {r['available']:,}", va="center",
                 fontsize=8)
    ax1.set_yticks(ys, [r["label"] for _, r in rows], fontsize=8)
    ax1.set_xlim(0, 130)
    ax1.axvline(100, color="k", lw=0.8)
    ax1.set_xlabel("used (% of the device)")
    ax1.set_title(f"{report['board']} ({report['device']}): resources", fontsize=10)

    names = list(fmax)
    xs = range(len(names))
    got = [fmax[n]["achieved_mhz"] for n in names]
    want = [fmax[n]["constraint_mhz"] for n in names]
    ax2.bar(xs, got, width=0.5, label="achieved Fmax",
            color=["tab:green" if fmax[n]["pass"] else "tab:red" for n in names])
    for x, g in zip(xs, got, strict=True):
        ax2.text(x, g, f"{g:.1f}", ha="center", va="bottom", fontsize=8)
    ax2.scatter(xs, want, marker="_", s=1500, color="k", zorder=3, label="clock constraint")
    ax2.set_xticks(list(xs), names, fontsize=8)
    ax2.set_xlim(-0.6, len(names) - 0.4)
    ax2.set_ylabel("MHz")
    title = "timing " + ("met" if report.get("timing_pass") else "MISSED")
    tp = report.get("throughput")
    if tp:
        title += f"; {tp['us_per_sample']:,.1f} us per sample"
    ax2.set_title(title, fontsize=10)
    ax2.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig
