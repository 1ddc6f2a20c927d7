"""Tables for people, written as XLSX (one sheet per table) or CSV: the one writer of report files.

XLSX: a bold header row, frozen, with an auto-filter; date-times are real date cells (local time,
shown dd/mm/yyyy hh:mm:ss), numbers are numbers; columns wide enough to read. CSV: UTF-8 with a
byte-order mark, so Excel shows Vietnamese diacritics, and a chosen delimiter (`;` for Excel set to a
Vietnamese locale, where `,` is the decimal separator).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from speakerctl.errors import UsageError
from speakerctl.files import PUBLIC, write_atomic
from speakerctl.i18n import _

DATETIME_FORMAT = "dd/mm/yyyy hh:mm:ss"
"""How date cells show: day first, as Vietnamese offices write dates."""
CSV_DATETIME = "%d/%m/%Y %H:%M:%S"
DELIMITERS = (",", ";", "\t")
MAX_WIDTH = 60
SHEET_NAME_LIMIT = 31
"""Excel's limit on a sheet name."""

Cell = str | int | float | datetime | None


@dataclass(frozen=True, slots=True)
class Sheet:
    """One table: a name (the sheet's, or the CSV file's suffix), column titles and rows of cells.

    Date-times must be naive local times (Excel has no time zones): say the zone in the column title.
    """

    name: str
    columns: tuple[str, ...]
    rows: Sequence[tuple[Cell, ...]] = ()


def write_xlsx(sheets: Sequence[Sheet], path: Path) -> None:
    """One sheet per table in one workbook."""
    book = Workbook()
    first = book.active
    if first is not None:
        book.remove(first)
    for table in sheets:
        _fill(book.create_sheet(table.name[:SHEET_NAME_LIMIT]), table)
    buffer = io.BytesIO()
    book.save(buffer)
    write_atomic(path, buffer.getvalue(), mode=PUBLIC)


def _fill(sheet: Worksheet, table: Sheet) -> None:
    sheet.append(list(table.columns))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in table.rows:
        sheet.append(list(row))
    for column in sheet.iter_cols(min_row=2):
        for cell in column:
            if isinstance(cell.value, datetime):
                cell.number_format = DATETIME_FORMAT
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = sheet.dimensions
    for i, width in enumerate(_widths(table), start=1):
        sheet.column_dimensions[get_column_letter(i)].width = width


def _widths(table: Sheet) -> list[int]:
    """Each column as wide as its longest text (a date cell is 19 wide), within reason."""
    widths = [len(c) + 2 for c in table.columns]
    for row in table.rows:
        for i, value in enumerate(row):
            text = 19 if isinstance(value, datetime) else len(str(value if value is not None else ""))
            widths[i] = max(widths[i], text + 2)
    return [min(w, MAX_WIDTH) for w in widths]


def write_csv(table: Sheet, path: Path, delimiter: str = ",") -> None:
    """The table as CSV, UTF-8 with a byte-order mark; date-times as dd/mm/yyyy hh:mm:ss."""
    if delimiter not in DELIMITERS:
        raise UsageError(
            _("cannot write CSV with delimiter {delimiter!r}").format(delimiter=delimiter),
            hint=_("use ',', ';' or a tab"),
        )
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(table.columns)
    writer.writerows([_csv_cell(v) for v in row] for row in table.rows)
    write_atomic(path, "\ufeff" + out.getvalue(), mode=PUBLIC)


def _csv_cell(value: Cell) -> str | int | float:
    if isinstance(value, datetime):
        return value.strftime(CSV_DATETIME)
    return "" if value is None else value
