"""Dependency-free inline SVG charts for the HTML report.

Every chart is a single ``<svg class="plot" data-plot="...">`` element meant to be
inlined in an HTML document: no external resources, all text escaped, a ``viewBox``
so it scales with the page. Time is on the x axis in seconds relative to some t0
(the caller converts); fault windows are shaded bands, markers are dashed vertical
lines, and both carry labels that are stacked into rows so they do not overlap.

Data points may be anything: non-numeric or non-finite values are dropped, gaps in
sampling (more than 3x the usual interval) break the line instead of bridging it, and
long series are reduced to at most ``MAX_POINTS`` min/max buckets so a one-hour run
still gives a small file.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from html import escape
from statistics import median

__all__ = [
    "PALETTE",
    "Marker",
    "Series",
    "Window",
    "band_plot",
    "fmt_count",
    "fmt_rate",
    "fmt_seconds",
    "line_plot",
    "nice_ticks",
    "no_data_plot",
    "to_float",
]

WIDTH = 1000
LEFT = 70
RIGHT = 18
BOTTOM = 44
LABEL_ROW = 14
MAX_POINTS = 800

PALETTE = (
    "#2563eb",
    "#e8590c",
    "#0f9d58",
    "#9333ea",
    "#db2777",
    "#0891b2",
    "#a16207",
    "#4b5563",
)
FAULT_FILL = "#ef4444"
FAULT_TEXT = "#b91c1c"
MARKER_COLORS = {
    "ejection": "#d97706",
    "failover": "#7c3aed",
    "recovery": "#16a34a",
}
MARKER_DEFAULT = "#475569"
NONE_HOLDER = "(none)"


@dataclass(frozen=True)
class Window:
    """A fault window in x units. ``end is None`` means instantaneous."""

    label: str
    start: float
    end: float | None = None
    open_ended: bool = False  # injected but never rolled back: runs to the plot's end


@dataclass(frozen=True)
class Marker:
    x: float
    label: str
    kind: str = ""


@dataclass
class Series:
    name: str
    points: list[tuple[float, float]] = field(default_factory=list)
    color: str = PALETTE[0]


# --------------------------------------------------------------------------- numbers


def to_float(value: object) -> float | None:
    """``float(value)`` if it is a finite number (or numeric string), else None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _trim(text: str) -> str:
    if "." in text and "e" not in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def fmt_count(v: float) -> str:
    a = abs(v)
    if a >= 1e9:
        return _trim(f"{v / 1e9:.2f}") + "G"
    if a >= 1e6:
        return _trim(f"{v / 1e6:.2f}") + "M"
    if a >= 1e4:
        return _trim(f"{v / 1e3:.1f}") + "k"
    if a >= 100 or a == 0:
        return _trim(f"{v:.0f}")
    if a >= 1:
        return _trim(f"{v:.2f}")
    return _trim(f"{v:.3g}")


def fmt_rate(v: float) -> str:
    return fmt_count(v)


def fmt_seconds(v: float) -> str:
    a = abs(v)
    if a == 0:
        return "0"
    if a < 1e-3:
        return _trim(f"{v * 1e6:.3g}") + " µs"
    if a < 1:
        return _trim(f"{v * 1e3:.3g}") + " ms"
    if a < 120:
        return _trim(f"{v:.3g}") + " s"
    return _trim(f"{v / 60:.3g}") + " min"


def fmt_x(v: float, span: float) -> str:
    if span >= 600:
        sign = "-" if v < 0 else ""
        m, s = divmod(int(round(abs(v))), 60)
        return f"{sign}{m}:{s:02d}"
    return _trim(f"{v:.1f}") + " s" if span < 10 else f"{v:.0f} s"


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (the last tick is >= hi)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        pad = abs(hi) * 0.5 or 1.0
        lo, hi = lo - pad if lo != 0 else 0.0, hi + pad
    raw = (hi - lo) / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = mag
    for mult in (1, 2, 2.5, 5, 10):
        step = mult * mag
        if step >= raw:
            break
    first = math.floor(lo / step + 1e-9) * step
    ticks: list[float] = []
    v = first
    while v < hi + step * 1e-9 or len(ticks) < 2:
        ticks.append(round(v, 12))
        v += step
    if ticks[-1] < hi:
        ticks.append(round(ticks[-1] + step, 12))
    return ticks


# --------------------------------------------------------------------------- helpers


def _f(v: float) -> str:
    """Compact coordinate."""
    return f"{v:.1f}".rstrip("0").rstrip(".") if v != int(v) else str(int(v))


def _clean_points(points: Iterable[object]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for p in points:
        if not isinstance(p, list | tuple) or len(p) < 2:
            continue
        x, y = to_float(p[0]), to_float(p[1])
        if x is None or y is None:
            continue
        out.append((x, y))
    out.sort(key=lambda xy: xy[0])
    return out


def typical_step(xs: Sequence[float]) -> float:
    diffs = [b - a for a, b in zip(xs, xs[1:], strict=False) if b > a]
    return median(diffs) if diffs else 0.0


def _segments(points: list[tuple[float, float]]) -> list[list[tuple[float, float]]]:
    """Split where the sampling has a gap of more than 3x the usual interval."""
    if not points:
        return []
    step = typical_step([x for x, _ in points])
    limit = step * 3 if step > 0 else math.inf
    segs: list[list[tuple[float, float]]] = [[points[0]]]
    for prev, cur in zip(points, points[1:], strict=False):
        if cur[0] - prev[0] > limit:
            segs.append([])
        segs[-1].append(cur)
    return segs


def _downsample(seg: list[tuple[float, float]], budget: int) -> list[tuple[float, float]]:
    """Min/max bucketing: keeps spikes visible, caps the point count."""
    if len(seg) <= budget or budget < 4:
        return seg
    buckets = max(budget // 2, 1)
    size = len(seg) / buckets
    out: list[tuple[float, float]] = []
    for b in range(buckets):
        chunk = seg[int(b * size) : int((b + 1) * size)] or seg[int(b * size) : int(b * size) + 1]
        lo = min(chunk, key=lambda p: p[1])
        hi = max(chunk, key=lambda p: p[1])
        out.extend(sorted({lo, hi}, key=lambda p: p[0]))
    return out


def _text_width(text: str) -> float:
    """Rough rendered width of a 11.5 px semi-bold label."""
    return 6.9 * len(text)


def _place_label(px: float, text: str, x_min: float, x_max: float) -> tuple[float, float, str]:
    """(left edge, text x, anchor): right of the line, or left of it near the right edge."""
    width = _text_width(text)
    if px + 3 + width <= x_max or px - 3 - width < x_min:
        return px + 3, px + 3, "start"
    return px - 3 - width, px - 3, "end"


def _label_rows(items: list[tuple[float, str]], x_min: float, x_max: float) -> list[int]:
    """Greedy row assignment so labels placed by :func:`_place_label` do not overlap."""
    rows_end: list[float] = []
    result = []
    for px, text in items:
        start = _place_label(px, text, x_min, x_max)[0]
        end = start + _text_width(text) + 10
        for i, row_end in enumerate(rows_end):
            if start > row_end:
                rows_end[i] = end
                result.append(i)
                break
        else:
            rows_end.append(end)
            result.append(len(rows_end) - 1)
    return result


class _Frame:
    """Pixel mapping and shared decorations of one chart."""

    def __init__(
        self,
        x_domain: tuple[float, float],
        windows: Sequence[Window],
        markers: Sequence[Marker],
        plot_height: float,
    ) -> None:
        x0, x1 = x_domain
        if not x1 > x0:
            x1 = x0 + 1.0
        self.x0, self.x1 = x0, x1
        self.left, self.right = LEFT, WIDTH - RIGHT
        self.windows = [w for w in windows if self.x0 <= w.start <= self.x1]
        self.markers = [m for m in markers if self.x0 <= m.x <= self.x1]
        labels = [(self.px(w.start), w.label) for w in self.windows] + [
            (self.px(m.x), m.label) for m in self.markers
        ]
        order = sorted(
            range(len(labels)),
            key=lambda i: _place_label(labels[i][0], labels[i][1], self.left, self.right)[0],
        )
        rows = _label_rows([labels[i] for i in order], self.left, self.right)
        self.label_row = {order[k]: rows[k] for k in range(len(order))}
        n_rows = max(rows) + 1 if rows else 0
        self.top = 30 + n_rows * LABEL_ROW
        self.bottom = self.top + plot_height
        self.height = self.bottom + BOTTOM

    def px(self, x: float) -> float:
        return self.left + (x - self.x0) / (self.x1 - self.x0) * (self.right - self.left)

    def open_svg(self, plot_id: str, title: str, extra: str = "") -> list[str]:
        return [
            f'<svg class="plot" data-plot="{escape(plot_id)}" viewBox="0 0 {WIDTH} {_f(self.height)}"'
            f' width="100%" role="img" aria-label="{escape(title)}"'
            f' data-x0="{self.x0:g}" data-x1="{self.x1:g}" data-left="{self.left}"'
            f' data-right="{self.right}"{extra}>',
            f"<title>{escape(title)}</title>",
            f'<text class="ptitle" x="{LEFT}" y="18">{escape(title)}</text>',
        ]

    def x_axis(self, label: str) -> list[str]:
        out = []
        ticks = [t for t in nice_ticks(self.x0, self.x1, 10) if self.x0 <= t <= self.x1]
        span = self.x1 - self.x0
        for t in ticks:
            p = _f(self.px(t))
            out.append(
                f'<line class="grid" x1="{p}" x2="{p}" y1="{_f(self.top)}" y2="{_f(self.bottom)}"/>'
            )
            out.append(
                f'<text class="tick" x="{p}" y="{_f(self.bottom + 16)}" text-anchor="middle">'
                f"{escape(fmt_x(t, span))}</text>"
            )
        out.append(
            f'<line class="axis" x1="{self.left}" x2="{self.right}" y1="{_f(self.bottom)}"'
            f' y2="{_f(self.bottom)}"/>'
        )
        out.append(
            f'<text class="axlabel" x="{_f((self.left + self.right) / 2)}" y="{_f(self.bottom + 36)}"'
            f' text-anchor="middle">{escape(label)}</text>'
        )
        return out

    def fault_shading(self) -> list[str]:
        out = []
        for w in self.windows:
            x = self.px(w.start)
            end = self.x1 if w.open_ended else w.end
            title = escape(w.label + (" (not rolled back)" if w.open_ended else ""))
            if end is None or end <= w.start:
                out.append(
                    f'<line class="fault-line" x1="{_f(x)}" x2="{_f(x)}" y1="{_f(self.top)}"'
                    f' y2="{_f(self.bottom)}" stroke="{FAULT_FILL}"><title>{title}</title></line>'
                )
            else:
                x2 = self.px(min(end, self.x1))
                cls = "fault-window open" if w.open_ended else "fault-window"
                out.append(
                    f'<rect class="{cls}" x="{_f(x)}" y="{_f(self.top)}" width="{_f(max(x2 - x, 1))}"'
                    f' height="{_f(self.bottom - self.top)}" fill="{FAULT_FILL}"'
                    f' fill-opacity="0.11"><title>{title}</title></rect>'
                )
        return out

    def decorations(self) -> list[str]:
        """Marker lines and all labels, drawn over the data."""
        out = []
        for m in self.markers:
            x = _f(self.px(m.x))
            color = MARKER_COLORS.get(m.kind, MARKER_DEFAULT)
            out.append(
                f'<line class="marker" data-kind="{escape(m.kind)}" x1="{x}" x2="{x}"'
                f' y1="{_f(self.top)}" y2="{_f(self.bottom)}" stroke="{color}"'
                f' stroke-dasharray="5 4"><title>{escape(m.label)}</title></line>'
            )
        labels: list[tuple[float, str, str, str]] = [
            (self.px(w.start), w.label, FAULT_TEXT, "fault-label") for w in self.windows
        ] + [
            (self.px(m.x), m.label, MARKER_COLORS.get(m.kind, MARKER_DEFAULT), "marker-label")
            for m in self.markers
        ]
        for i, (px, text, color, cls) in enumerate(labels):
            row = self.label_row.get(i, 0)
            y = self.top - 6 - row * LABEL_ROW
            _, tx, anchor = _place_label(px, text, self.left, self.right)
            out.append(
                f'<line class="leader" x1="{_f(px)}" x2="{_f(px)}" y1="{_f(y + 3)}"'
                f' y2="{_f(self.top)}" stroke="{color}"/>'
            )
            out.append(
                f'<text class="{cls}" x="{_f(tx)}" y="{_f(y)}" fill="{color}"'
                f' text-anchor="{anchor}">{escape(text)}</text>'
            )
        return out


def no_data_plot(plot_id: str, title: str, reason: str = "no data") -> str:
    h = 120
    return "".join(
        [
            f'<svg class="plot nodata" data-plot="{escape(plot_id)}" viewBox="0 0 {WIDTH} {h}"'
            f' width="100%" role="img" aria-label="{escape(title)}: {escape(reason)}">',
            f"<title>{escape(title)}</title>",
            f'<text class="ptitle" x="{LEFT}" y="18">{escape(title)}</text>',
            f'<rect class="nodata-box" x="{LEFT}" y="30" width="{WIDTH - LEFT - RIGHT}" height="{h - 44}"'
            ' rx="6"/>',
            f'<text class="nodata-text" x="{WIDTH / 2:g}" y="{30 + (h - 44) / 2 + 5:g}"'
            f' text-anchor="middle">{escape(reason)}</text>',
            "</svg>",
        ]
    )


# --------------------------------------------------------------------------- charts


def line_plot(
    plot_id: str,
    title: str,
    series: Sequence[Series],
    *,
    x_domain: tuple[float, float],
    windows: Sequence[Window] = (),
    markers: Sequence[Marker] = (),
    y_format: Callable[[float], str] = fmt_count,
    y_label: str = "",
    x_label: str = "seconds since load start",
    unit: str = "",
    legend: bool = False,
    fill: bool = True,
    height: float = 200,
) -> str:
    """Line chart of one or more series. Returns a ``no data`` chart if all are empty."""
    cleaned = [(s, _clean_points(s.points)) for s in series]
    cleaned = [(s, [p for p in pts if x_domain[0] <= p[0] <= x_domain[1]]) for s, pts in cleaned]
    if not any(pts for _, pts in cleaned):
        return no_data_plot(plot_id, title)

    frame = _Frame(x_domain, windows, markers, height)
    ys = [y for _, pts in cleaned for _, y in pts]
    y_ticks = nice_ticks(min(0.0, min(ys)), max(ys), 4)
    y_lo, y_hi = y_ticks[0], y_ticks[-1]

    def py(y: float) -> float:
        return frame.bottom - (y - y_lo) / (y_hi - y_lo) * (frame.bottom - frame.top)

    out = frame.open_svg(
        plot_id,
        title,
        f' data-y0="{y_lo:g}" data-y1="{y_hi:g}" data-top="{_f(frame.top)}"'
        f' data-bottom="{_f(frame.bottom)}" data-unit="{escape(unit)}"',
    )
    if legend:
        out.extend(_legend([(s.name, s.color) for s, _ in cleaned], frame.right))
    out.extend(frame.fault_shading())
    for t in y_ticks:
        y = _f(py(t))
        out.append(f'<line class="grid" x1="{frame.left}" x2="{frame.right}" y1="{y}" y2="{y}"/>')
        out.append(
            f'<text class="tick" x="{frame.left - 8}" y="{_f(py(t) + 4)}" text-anchor="end">'
            f"{escape(y_format(t))}</text>"
        )
    if y_label:
        cy = _f((frame.top + frame.bottom) / 2)
        out.append(
            f'<text class="axlabel" x="14" y="{cy}" text-anchor="middle"'
            f' transform="rotate(-90 14 {cy})">{escape(y_label)}</text>'
        )
    out.extend(frame.x_axis(x_label))

    budget = max(MAX_POINTS // max(len(cleaned), 1), 100)
    base_y = _f(py(max(y_lo, 0.0)))
    for s, pts in cleaned:
        out.append(f'<g class="series" data-name="{escape(s.name)}">')
        for seg in _segments(pts):
            seg = _downsample(seg, budget)
            coords = " ".join(f"{_f(frame.px(x))},{_f(py(y))}" for x, y in seg)
            if len(seg) == 1:
                lone_x, lone_y = seg[0]
                out.append(
                    f'<circle cx="{_f(frame.px(lone_x))}" cy="{_f(py(lone_y))}" r="2.5"'
                    f' fill="{s.color}"/>'
                )
            if fill and len(cleaned) == 1 and len(seg) > 1:
                first, last = _f(frame.px(seg[0][0])), _f(frame.px(seg[-1][0]))
                out.append(
                    f'<path class="area" d="M{first},{base_y} L{coords.replace(" ", " L")}'
                    f' L{last},{base_y} Z" fill="{s.color}" fill-opacity="0.09"/>'
                )
            out.append(
                f'<polyline class="line" points="{coords}" fill="none" stroke="{s.color}"'
                ' stroke-width="1.8" stroke-linejoin="round" stroke-linecap="round"/>'
            )
        out.append("</g>")
    out.extend(frame.decorations())
    out.append('<line class="hover-line" x1="0" x2="0" y1="0" y2="0" style="display:none"/>')
    out.append("</svg>")
    return "".join(out)


def _legend(items: list[tuple[str, str]], right: float) -> list[str]:
    out = ['<g class="legend">']
    x = right
    for name, color in reversed(items):
        w = 6.4 * len(name) + 24
        x -= w
        out.append(
            f'<rect x="{_f(x)}" y="9" width="12" height="4" rx="1" fill="{color}"/>'
            f'<text class="legend-text" x="{_f(x + 16)}" y="15">{escape(name)}</text>'
        )
    out.append("</g>")
    return out


def band_plot(
    plot_id: str,
    title: str,
    steps: Sequence[tuple[float, str | None]],
    *,
    x_domain: tuple[float, float],
    windows: Sequence[Window] = (),
    markers: Sequence[Marker] = (),
    x_label: str = "seconds since load start",
    colors: dict[str, str] | None = None,
) -> str:
    """State timeline: one lane per state (e.g. VIP holder), a band where it holds.

    ``steps`` are samples ``(x, state)``; each state lasts until the next sample (the
    last one for one typical sampling interval). ``None``/empty state means "nobody"
    and gets its own lane. A sampling gap (> 3x the usual interval) is left blank.
    """
    pts: list[tuple[float, str]] = []
    for x, state in steps:
        if x_domain[0] <= x <= x_domain[1]:
            pts.append((x, NONE_HOLDER if state in (None, "") else str(state)))
    pts.sort(key=lambda p: p[0])
    if not pts:
        return no_data_plot(plot_id, title)

    lanes: list[str] = []
    for _, state in pts:
        if state not in lanes:
            lanes.append(state)
    real = sorted(s for s in lanes if s != NONE_HOLDER)
    lanes = real + ([NONE_HOLDER] if NONE_HOLDER in lanes else [])
    lane_h, gap = 26.0, 8.0
    height = len(lanes) * lane_h + (len(lanes) + 1) * gap
    frame = _Frame(x_domain, windows, markers, height)
    palette = dict(colors or {})
    for i, s in enumerate(real):
        palette.setdefault(s, PALETTE[i % len(PALETTE)])
    palette[NONE_HOLDER] = "#9ca3af"

    step = typical_step([x for x, _ in pts])
    limit = step * 3 if step > 0 else math.inf
    # merge consecutive equal states into intervals
    intervals: list[tuple[float, float, str]] = []
    for i, (x, state) in enumerate(pts):
        if i + 1 < len(pts):
            nxt = pts[i + 1][0]
            end = nxt if nxt - x <= limit else x + step
        else:
            end = min(x + step, x_domain[1]) if step > 0 else x_domain[1]
        if intervals and intervals[-1][2] == state and abs(intervals[-1][1] - x) < 1e-9:
            intervals[-1] = (intervals[-1][0], end, state)
        else:
            intervals.append((x, end, state))

    out = frame.open_svg(plot_id, title)
    lane_y = {s: frame.top + gap + i * (lane_h + gap) for i, s in enumerate(lanes)}
    for s in lanes:
        y = lane_y[s]
        out.append(
            f'<rect class="lane" x="{frame.left}" y="{_f(y)}" width="{frame.right - frame.left}"'
            f' height="{_f(lane_h)}"/>'
        )
        out.append(
            f'<text class="tick lane-label" x="{frame.left - 8}" y="{_f(y + lane_h / 2 + 4)}"'
            f' text-anchor="end">{escape(s)}</text>'
        )
    out.extend(frame.x_axis(x_label))
    out.extend(frame.fault_shading())
    for a, b, s in intervals:
        xa, xb = frame.px(a), frame.px(max(b, a))
        y = lane_y[s]
        w = max(xb - xa, 1.5)
        fill_opacity = "0.45" if s == NONE_HOLDER else "0.85"
        label = f"{s}: {a:.1f} s → {b:.1f} s"
        out.append(
            f'<path class="band" data-state="{escape(s)}" d="M{_f(xa)},{_f(y)} h{_f(w)} v{_f(lane_h)}'
            f' h{_f(-w)} Z" fill="{palette[s]}" fill-opacity="{fill_opacity}">'
            f"<title>{escape(label)}</title></path>"
        )
    out.extend(frame.decorations())
    out.append("</svg>")
    return "".join(out)
