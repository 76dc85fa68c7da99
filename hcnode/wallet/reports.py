"""Tables for ``hcwallet billing report`` and ``hcwallet trials report``: rows, aligned text, CSV.

Owns: turning the ``billing.report`` and ``trials.report`` query answers into rows for people
and spreadsheets (shares as percentages are computed here: the chain returns counts only).
Must not know the RPC, the keystore or the command line.
"""

from __future__ import annotations

import csv
import io
from typing import Any

__all__ = ["billing_tables", "trials_tables", "to_csv", "to_text"]

Table = tuple[str, list[str], list[list[Any]]]


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def billing_tables(report: dict[str, Any]) -> list[Table]:
    """Per provider and per payer totals (amounts in minor units of the currency), then the top flags."""
    header = ["side", "org", "currency", "claims", "billed", "flagged_claims", "flagged_share", "flagged_billed",
              "above_schedule_excess", "allowed", "paid", "disputes", "denied_claims", "top_flags"]
    rows = []
    for side, entries in (("provider", report["providers"]), ("payer", report["payers"])):
        for t in entries:
            flags = sorted(t["flags"].items(), key=lambda kv: (-kv[1], kv[0]))[:3]
            rows.append([side, t["org"], t["currency"], t["claims"], t["billed"], t["flagged_claims"],
                         _share(t["flagged_claims"], t["claims"]), t["flagged_billed"],
                         t["above_schedule_excess"], t["allowed"], t["paid"], t["disputes"], t["denied_claims"],
                         " ".join(f"{name}={count}" for name, count in flags)])
    top = [[f["flag"], f["claims"]] for f in report["top_flags"]]
    return [("totals", header, rows), ("top flags", ["flag", "claims"], top)]


def trials_tables(report: dict[str, Any]) -> list[Table]:
    """Each trial's status, the share of due trials unreported, and the sponsor league table."""
    trials = [[t["trial"], t["sponsor"], t["status"], " ".join(t["labels"][1:]), t["primary_completion"], t["due"],
               t["results_posted"] or "", t["enrolled"], t["outcome_switches"], t["title"]]
              for t in report["trials"]]
    summary = [[report["as_of"], len(report["trials"]), report["due"], report["unreported"],
                _share(report["unreported"], report["due"])]]
    league = [[s["sponsor"], s["trials"], s["due"], s["reported_on_time"], s["reported_late"], s["unreported"],
               _share(s["reported_on_time"], s["due"]), s["outcome_switched"]] for s in report["sponsors"]]
    return [
        ("trials", ["trial", "sponsor", "status", "also", "primary_completion", "due", "results_posted",
                    "enrolled", "outcome_switches", "title"], trials),
        ("unreported", ["as_of", "trials", "due", "unreported", "share_unreported"], summary),
        ("sponsor league (share of due trials reported on time)",
         ["sponsor", "trials", "due", "on_time", "late", "unreported", "on_time_share", "outcome_switched"], league),
    ]


def to_text(tables: list[Table]) -> list[str]:
    lines: list[str] = []
    for title, header, rows in tables:
        if lines:
            lines.append("")
        lines.append(f"{title}:")
        if not rows:
            lines.append("  (none)")
            continue
        cells = [header] + [[str(c) for c in row] for row in rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
        for row in cells:
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return lines


def to_csv(table: Table) -> str:
    """One table as a CSV document (a header row, then one row per line) for a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table[1])
    writer.writerows(table[2])
    return out.getvalue()
