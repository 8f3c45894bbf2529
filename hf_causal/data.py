"""Reading tabular data: CSV, Parquet, JSON Lines, a saved ``datasets`` folder, or a DataFrame."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from .errors import DataError

__all__ = ["load_table"]


def load_table(data: Any, graph=None) -> pd.DataFrame:
    """Return a DataFrame from a path (``.csv``, ``.parquet``, ``.jsonl``/``.json``, a
    ``datasets.save_to_disk`` folder), a ``datasets.Dataset``, a DataFrame or a dict of columns.

    Sequence columns stored as strings (``"U D L R"``) are kept as strings; the kinds split them.
    With ``graph``, CSV columns are read with their declared kinds: every non-continuous column as
    strings (so an integer-coded categorical with an empty cell stays ``"0"``/``"1"`` and the empty
    cell is reported as missing at its own row), and an empty cell of a sequence or text variable is
    the empty value, not missing.
    """
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, (list, tuple)) and all(isinstance(r, dict) for r in data):
        return pd.DataFrame(list(data))
    if isinstance(data, dict):
        return pd.DataFrame(data)
    try:
        import datasets

        if isinstance(data, datasets.Dataset):
            return data.to_pandas()
    except ImportError:  # pragma: no cover
        pass
    if not isinstance(data, (str, Path)):
        raise DataError(
            f"data must be a file path, a DataFrame, a dict of columns or a list of rows, got {type(data).__name__}"
        )
    path = Path(str(data))
    if not path.exists():
        raise DataError(f"data file {path} does not exist")
    if path.is_dir():
        import datasets

        try:
            ds = datasets.load_from_disk(str(path))
        except Exception as e:  # noqa: BLE001
            raise DataError(f"{path} is a folder but not a saved `datasets` dataset: {e}") from e
        if isinstance(ds, datasets.DatasetDict):
            ds = ds["train"] if "train" in ds else next(iter(ds.values()))
        return ds.to_pandas()
    suf = "".join(path.suffixes[-2:]) if path.suffix == ".gz" else path.suffix

    def read_csv(p):
        if graph is None:
            return pd.read_csv(p)
        keep = [n for n, v in graph.variables.items() if v.kind.read_as_text]
        as_str = [n for n, v in graph.variables.items() if v.type != "continuous"]
        head = pd.read_csv(p, nrows=0).columns
        na = {c: ["", "NA", "NaN", "nan", "null", "None"] for c in head if c not in keep}
        return pd.read_csv(p, keep_default_na=False, na_values=na, dtype={c: str for c in as_str if c in head})

    readers = {
        ".csv": read_csv,
        ".csv.gz": read_csv,
        ".parquet": pd.read_parquet,
        ".jsonl": lambda p: pd.read_json(p, lines=True),
        ".json": lambda p: pd.read_json(p, lines=True),
    }
    if suf not in readers:
        raise DataError(
            f"data file {path}: unsupported format {suf!r}; use .csv, .parquet, .jsonl or a datasets folder"
        )
    try:
        return readers[suf](path)
    except pd.errors.EmptyDataError:
        raise DataError(f"data file {path} is empty (not even a header row)") from None
    except Exception as e:  # noqa: BLE001
        raise DataError(f"could not read data file {path}: {e}") from e


def source_name(data: Any) -> str:
    """How an error names a table: its file, or "the data"."""
    return str(data) if isinstance(data, (str, Path)) else "the data"
