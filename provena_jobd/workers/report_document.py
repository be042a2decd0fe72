"""The GENERATE_REPORT document: a Word (.docx) study close-out report, built with python-docx
in the reference's layout (a title, the item, then a table of team, inputs, model runs and
outputs), followed by each model run's record as readable `field: value` lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

import msgspec
from docx import Document

if TYPE_CHECKING:
    from ..queue.store import NewRecord

TITLE = "Model Run Study Close Out Report"
TEAM_PLACEHOLDER = "<enter your team name here>"
HANDLE_URL = "http://hdl.handle.net/"


@dataclass(frozen=True)
class Node:
    """One item the report names: its kind ("Model Run", "Dataset"...), name and id."""

    kind: str
    name: str
    id: str


@dataclass
class ReportContent:
    """What a report lists, each item once, in the order found."""

    origin: Node
    records: list[NewRecord]
    inputs: list[Node] = field(default_factory=list)
    model_runs: list[Node] = field(default_factory=list)
    outputs: list[Node] = field(default_factory=list)

    def add_run(self, node: Node, record: NewRecord) -> bool:
        """Add a model run and its record; False if it is already listed."""
        if node in self.model_runs:
            return False
        self.model_runs.append(node)
        self.records.append(record)
        return True

    def add_input(self, node: Node) -> None:
        """Add an input, once."""
        if node not in self.inputs:
            self.inputs.append(node)

    def add_output(self, node: Node) -> None:
        """Add an output, once."""
        if node not in self.outputs:
            self.outputs.append(node)


def readable_lines(value: Any, prefix: str = "") -> list[str]:
    """A JSON value as `path: value` lines (`inputs[0].dataset_id: 10378.1/x`), not a repr."""
    if isinstance(value, dict):
        if not value:
            return [f"{prefix}: (none)"] if prefix else []
        return [
            line
            for key, item in value.items()
            for line in readable_lines(item, f"{prefix}.{key}" if prefix else str(key))
        ]
    if isinstance(value, list):
        if not value:
            return [f"{prefix}: (none)"]
        return [
            line for i, item in enumerate(value) for line in readable_lines(item, f"{prefix}[{i}]")
        ]
    text = value if isinstance(value, str) else msgspec.json.encode(value).decode()
    return [f"{prefix}: {text}"]


def write_docx(content: ReportContent, path: str | IO[bytes]) -> None:
    """Write the report to `path` (a file name or a binary stream)."""
    document = Document()
    document.add_heading(TITLE, 0)
    document.add_heading(f"Report for {content.origin.kind}: {content.origin.name}", level=1)
    document.add_paragraph(f"Handle: {HANDLE_URL}{content.origin.id}")
    rows = [
        ("Modelling Team", None),
        ("Inputs", content.inputs),
        ("Model Runs", content.model_runs),
        ("Outputs", content.outputs),
    ]
    table = document.add_table(rows=len(rows), cols=2)
    table.style = "Table Grid"
    for index, (label, nodes) in enumerate(rows):
        table.cell(index, 0).paragraphs[0].add_run(label).bold = True
        cell = table.cell(index, 1)
        if nodes is None:
            cell.paragraphs[0].add_run(TEAM_PLACEHOLDER).italic = True
            continue
        for number, node in enumerate(nodes):
            paragraph = cell.paragraphs[0] if number == 0 else cell.add_paragraph()
            paragraph.add_run(node.kind).bold = True
            paragraph.add_run(f": {node.name}, {node.id}")
    for record in content.records:
        document.add_heading(f"Model run record {record.record_id}", level=2)
        document.add_paragraph(f"Lodged by {record.username}.")
        for line in readable_lines(record.data):
            document.add_paragraph(line, style="List Bullet")
    document.save(path)
