"""Query-plan helpers shared by the rooms that read the library by id."""

from __future__ import annotations

from sqlalchemy import ColumnElement


def by_row(col: ColumnElement[str]) -> ColumnElement[str]:
    """`col` as an expression no index covers (`col || ''`): a filter checked on the rows found
    by id, not walked as an index. SQLite's sampled statistics count about 1,000 rows per owner
    and per status at any size, so at 50k it read an owner's whole (user_id) or (status) index
    instead of a few hundred ids by key (60 ms a table; 200-650 ms for faces at 100k). Exact
    statistics would fix that and break worse plans (an owner's few trashed photos then look
    like 50,000)."""
    return col.concat("")
