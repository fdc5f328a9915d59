"""The issue's targets, checked against one run's figures: one line each, met or not.

Ratios are to B of the same size's run; "1m within 2 x of 1k" compares p50s.
"""

from __future__ import annotations

from dataclasses import dataclass

# (scenario name prefix, the least ratio to B)
RATIO_FLOORS = (
    ("ping++ webhook fresh", 0.5),
    ("ping++ webhook duplicate", 0.8),
    ("alipay webhook fresh", 0.5),
    ("alipay webhook duplicate", 0.8),
    ("wechatpay webhook fresh", 0.5),
    ("wechatpay webhook duplicate", 0.8),
    ("stripe webhook fresh", 0.4),
    ("stripe webhook duplicate", 0.8),
    ("order create", 0.3),
    ("pay start", 0.3),
)
# (scenario, the scenario it is compared with, the least ratio of their rates)
RELATIVE_FLOORS = (("order create with a coupon", "order create (API)", 0.8),)
P99_OVER_P50 = 10
GROWTH = 2.0
RSS_MB = 100


@dataclass(frozen=True)
class Measured:
    name: str
    size: int
    ratio: float  # rate over B's
    p50: float  # ms
    p99: float
    queries: tuple[int, ...]
    read: bool


def report(measured: list[Measured], rss_mib: list[float]) -> list[str]:
    """One line per target: "met" or "MISSED", and the figures behind it."""
    lines = []

    def verdict(ok: bool) -> str:
        return "met   " if ok else "MISSED"

    for prefix, floor in RATIO_FLOORS:
        for m in (m for m in measured if m.name.startswith(prefix)):
            lines.append(
                f"{verdict(m.ratio >= floor)} {m.name} at {m.size:,} orders: "
                f"{m.ratio:.2f} x B (target >= {floor})"
            )
    for prefix, other, floor in RELATIVE_FLOORS:
        for m in (m for m in measured if m.name.startswith(prefix)):
            base = next((b for b in measured if b.name == other and b.size == m.size), None)
            if base is None or not base.ratio:
                continue
            relative = m.ratio / base.ratio
            lines.append(
                f"{verdict(relative >= floor)} {m.name} at {m.size:,} orders: "
                f"{relative:.2f} x {other} (target >= {floor})"
            )
    spread = [m for m in measured if m.name != "reference B" and m.p99 >= P99_OVER_P50 * m.p50]
    lines.append(
        f"{verdict(not spread)} p99 < {P99_OVER_P50} x p50 in every scenario"
        + "".join(f"; {m.name} at {m.size:,}: {m.p99 / m.p50:.1f} x" for m in spread)
    )
    varying = {m.name for m in measured if m.read and len(set(m.queries)) > 1}
    by_page: dict[int, set[int]] = {}
    for m in measured:
        if m.name.startswith("order list") and m.queries:
            by_page.setdefault(m.size, set()).add(max(m.queries))
    if by_page:
        constant = all(len(counts) == 1 for counts in by_page.values())
        lines.append(
            f"{verdict(constant)} queries per request constant in page size (order list "
            f"20 and 100 a page: {', '.join(str(sorted(c)) for c in by_page.values())})"
        )
    if varying:
        lines.append(f"       queries varied between requests in: {', '.join(sorted(varying))}")
    sizes = sorted({m.size for m in measured})
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        first = {m.name: m for m in measured if m.read and m.size == small}
        for m in (m for m in measured if m.read and m.size == large and m.name in first):
            growth = m.p50 / first[m.name].p50
            lines.append(
                f"{verdict(growth <= GROWTH)} {m.name}: p50 at {large:,} orders is "
                f"{growth:.2f} x its p50 at {small:,} (target <= {GROWTH:g} x)"
            )
    if rss_mib:
        largest = max(rss_mib) * 2**20 / 1e6
        lines.append(
            f"{verdict(largest <= RSS_MB)} RSS per web worker after load: largest "
            f"{largest:.0f} MB (target <= {RSS_MB} MB)"
        )
    return lines
