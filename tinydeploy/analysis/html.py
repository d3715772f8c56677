"""The self-contained HTML report of `tinydeploy compare`: tables, recommendations, the figures
embedded as base64 PNG, inline CSS; no script, no file or network reference (a CI artifact)."""
from __future__ import annotations

import base64
import datetime
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tinydeploy.analysis.compare import CompareResult

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1400px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
th { background: #f2f2f2; } td.l, th.l { text-align: left; }
tr.recommended td { background: #eaf6ea; font-weight: 600; }
tr.bad td { background: #fdecea; } tr.notrun td { color: #777; }
.note { color: #555; font-size: 0.85em; } .reason { margin: 0.3em 0 0.3em 1em; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
code { background: #f5f5f5; padding: 0 3px; }
"""


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _cell(value, left: bool = False) -> str:
    return f'<td{" class=l" if left else ""}>{escape("-" if value is None else str(value))}</td>'


def _board_table(result: CompareResult, board_name: str) -> str:
    from tinydeploy.analysis.compare import OK, params_text
    from tinydeploy.platforms import boards as boards_mod
    board = boards_mod.get(board_name)
    power = board.power
    head = ("variant", "technique", "params", "parameters", "int8 accuracy (firmware)", "vectors", "mismatches",
            "code B", "weights B", "arena B", "RAM B", "instructions / inference", "est. ms", "est. uJ",
            "compression", "status", "cost")
    parts = [f"<h3>{escape(board_name)}: {escape(board.description)}, {board.clock_hz / 1e6:g} MHz, "
             f"{board.flash.size:,} B flash, {board.ram.size:,} B RAM</h3>",
             "<table><tr>" + "".join(f'<th{" class=l" if i < 3 else ""}>{escape(h)}</th>'
                                     for i, h in enumerate(head)) + "</tr>"]
    reasons = []
    for r in (r for r in result.rows if r.board == board_name):
        m = r.measurement
        css = "recommended" if r.recommended else ("notrun" if m is None else ("" if r.status == OK else "bad"))
        cells = [_cell(r.variant + (" (recommended)" if r.recommended else ""), True), _cell(r.technique, True),
                 _cell(params_text(r.overrides) if r.overrides else "defaults", True),
                 _cell(None if r.parameters is None else f"{r.parameters:,}")]
        if m is None:
            cells += [_cell(None)] * 11 + [_cell(r.status), _cell(None)]
        else:
            cells += [_cell(None if m.accuracy is None else f"{100 * m.accuracy:.2f}%"), _cell(m.vectors),
                      _cell(m.mismatches.values), _cell(None if m.flash.code is None else f"{m.flash.code:,}"),
                      _cell(f"{m.flash.weights:,}"), _cell(f"{m.ram.arena:,}"),
                      _cell(None if m.ram.total is None else f"{m.ram.total:,}"),
                      _cell(None if r.instructions is None else f"{r.instructions:,.0f}"),
                      _cell(None if r.latency_ms is None else f"{r.latency_ms:.4f}"),
                      _cell(None if r.energy is None else f"{r.energy.uj:.3f}"),
                      _cell(None if r.compression_ratio is None else f"{r.compression_ratio:.2f}x"),
                      _cell("fits, bit-exact" if r.status == OK else r.status),
                      _cell(None if r.cost is None else f"{r.cost:.3f}")]
        parts.append(f'<tr class="{css}">' + "".join(cells) + "</tr>")
        if r.reason:
            reasons.append(f"<li><b>{escape(r.variant)}</b>: {escape(r.status)}: {escape(r.reason)}</li>")
    parts.append("</table>")
    if reasons:
        parts.append("<ul class=note>" + "".join(reasons) + "</ul>")
    energy = (f"active power {power.active_mw:g} mW, {escape(power.source)}" if power
              else "no power figure for this board: energy not estimated")
    parts.append(f"<p class=note>Instructions: exact counts under QEMU -icount, not cycles. ms: an estimate at 1 "
                 f"instruction per cycle at {board.clock_hz / 1e6:g} MHz. uJ: an estimate, {energy}, x the "
                 f"estimated time.</p>")
    return "\n".join(parts)


def report(result: CompareResult, overview_png: bytes, pareto_png: bytes) -> str:
    """The whole report as one HTML string."""
    from tinydeploy.analysis.compare import params_text, tinydeploy_version
    from tinydeploy.analysis.recommend import FORMULA
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sample = (f"the first {result.vectors} of the {result.test_split} test vectors" if result.vectors and
              result.test_split and result.vectors < result.test_split else "the whole test split"
              + (f" ({result.test_split} vectors)" if result.test_split else ""))
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>tinydeploy compare: {escape(result.dataset)}</title><style>{CSS}</style></head><body>",
             f"<h1>tinydeploy compare: {escape(result.dataset)} on {escape(', '.join(result.boards))}</h1>",
             f"<p class=note>{escape(when)}; tinydeploy {escape(tinydeploy_version())}; "
             f"{'--quick' if result.quick else 'full run'}; accuracy from the firmware's own int8 outputs in QEMU on "
             f"{escape(sample)}; every output checked against the TFLite Micro reference.</p>",
             "<h2>Recommendation per board</h2>"]
    for rec in result.recommendations:
        parts.append(f"<p class=reason><b>{escape(rec.board)}</b>: "
                     f"{escape(rec.variant or 'none')} &mdash; {escape(rec.reason)}</p>")
    parts.append(f"<p class=note>Cost weights {escape(str(result.weights))}. {escape(FORMULA)}.</p>")
    parts.append("<h2>Results</h2>")
    for board in result.boards:
        parts.append(_board_table(result, board))
    parts.append("<h2>Figures</h2>")
    parts.append(_img(overview_png, "accuracy, size, latency and compression vs accuracy per variant and board"))
    parts.append(_img(pareto_png, "Pareto plots: accuracy against estimated latency and flash, per board"))
    parts.append("<h2>Variants</h2><table><tr><th class=l>variant</th><th class=l>technique</th>"
                 "<th class=l>params</th><th>epochs</th><th>weights</th><th>parameters</th><th>float accuracy (Keras)</th>"
                 "<th>int8 accuracy (TFLM reference, whole split)</th><th class=l>problem</th></tr>")
    for v in result.variants:
        parts.append("<tr>" + "".join([
            _cell(v.name, True), _cell(v.technique, True), _cell(params_text(v.params), True), _cell(v.epochs),
            _cell(v.weights_format), _cell(None if v.parameters is None else f"{v.parameters:,}"),
            _cell(None if v.float_accuracy is None else f"{100 * v.float_accuracy:.2f}%"),
            _cell(None if v.reference_accuracy is None else f"{100 * v.reference_accuracy:.2f}%"),
            _cell(v.error, True)]) + "</tr>")
    parts.append("</table>")
    if result.notes:
        parts.append("<h2>Notes</h2><ul class=note>" + "".join(f"<li>{escape(n)}</li>" for n in result.notes)
                     + "</ul>")
    cache = ", ".join(f"{k}: {v['hits']} cached, {v['made']} made" for k, v in result.cache.items())
    timings = ", ".join(f"{k.removesuffix('_s')} {v:.1f} s" for k, v in result.timings.items())
    parts.append(f"<p class=note>Cache: {escape(cache or 'unused')}. Time: {escape(timings)}.</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
