"""The grade table: a CSV for the gradebook and an HTML page to read, with the same columns."""

from __future__ import annotations

import csv
import html
from pathlib import Path

from .batch import Row


def columns(labels: list[str]) -> list[str]:
    """Header: submission, one column per exercise, total, seconds, status, reason, feedback."""
    return ["submission", *labels, "total", "out_of", "seconds", "status", "reason", "feedback"]


def records(rows: list[Row], labels: list[str]) -> list[dict[str, object]]:
    """One dict per row, keyed by :func:`columns`."""
    out = []
    for row in rows:
        notes = [f"{label}: {row.messages[label]}" for label in labels if row.messages.get(label)]
        out.append({"submission": row.submission, **{label: row.verdicts.get(label, "") for label in labels},
                    "total": row.total, "out_of": len(labels), "seconds": row.seconds, "status": row.status,
                    "reason": row.reason, "feedback": " | ".join(notes)})
    return out


def write_csv(rows: list[Row], labels: list[str], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf8") as file:
        writer = csv.DictWriter(file, fieldnames=columns(labels))
        writer.writeheader()
        writer.writerows(records(rows, labels))


_COLOURS = {"pass": "#d8f0d8", "fail": "#f8dcdc", "error": "#f0c8f0", "uses-reference": "#f8ecc8",
            "not attempted": "#eeeeee"}


def to_html(rows: list[Row], labels: list[str], title: str = "Grades") -> str:
    """A self-contained HTML page: the table, then each submission's feedback."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns(labels)[:-1])
    body = []
    for record in records(rows, labels):
        cells = []
        for column in columns(labels)[:-1]:
            value = str(record[column])
            colour = _COLOURS.get(value, "")
            style = f' style="background:{colour}"' if colour else ""
            cells.append(f"<td{style}>{html.escape(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    notes = []
    for row in rows:
        items = "".join(f"<li><code>{html.escape(label)}</code> ({html.escape(row.verdicts.get(label, ''))}): "
                        f"{html.escape(row.messages[label])}</li>" for label in labels if row.messages.get(label))
        if items or row.reason:
            reason = f"<p>{html.escape(row.reason)}</p>" if row.reason else ""
            notes.append(f"<h3>{html.escape(row.submission)}</h3>{reason}<ul>{items}</ul>")
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>" + html.escape(title) + "</title>"
            "<style>table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px}</style>"
            f"</head><body><h1>{html.escape(title)}</h1><table><tr>{head}</tr>{''.join(body)}</table>"
            f"<h2>Feedback</h2>{''.join(notes)}</body></html>\n")


def write_html(rows: list[Row], labels: list[str], path: Path, title: str = "Grades") -> None:
    path.write_text(to_html(rows, labels, title), encoding="utf8")
