"""Reading fac's own saved files, each way one can be broken answered by a ``FacError`` naming it.

Owns: the checks every saved artefact goes through when it is read back (profiles, feature-space
configs and stats, per-feature facts, activations): the file parses (JSON, safetensors; nothing
is ever unpickled), holds the keys and arrays it must, arrays have the width they must, and hold
no NaN, infinite or negative values where none can be. A file that fails says which file, which
entry and what is wrong, and never a raw ``JSONDecodeError`` or ``SafetensorError``. Must not:
know what the artefacts mean beyond their shapes and ranges.

>>> import tempfile, pathlib
>>> bad = pathlib.Path(tempfile.mkdtemp()) / "profile.json"
>>> _ = bad.write_text("{not json")
>>> read_json(bad, "a saved profile")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
fac_metric.errors.FacInputError: .../profile.json is not valid JSON (a saved profile): Expecting property name enclosed in double quotes: line 1 column 2 (char 1); save it again
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from fac_metric.errors import FacInputError


def _err(path: Path, message: str, error: type[Exception]) -> Exception:
    return error(f"{path} {message}")


def read_json(path: str | Path, what: str, *, error: type[Exception] = FacInputError) -> dict:
    """The JSON object in ``path`` (``what`` says what it should be, for the message)."""
    path = Path(path)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise _err(path, f"is not UTF-8 text ({what}): byte {err.start}; save it again", error) from err
    except ValueError as err:
        raise _err(path, f"is not valid JSON ({what}): {err}; save it again", error) from err
    except OSError as err:
        raise _err(path, f"cannot be read ({what}): {err.strerror or err}", error) from err
    if not isinstance(value, dict):
        raise _err(path, f"holds a JSON {type(value).__name__}, not an object ({what})", error)
    return value


def read_jsonl(path: str | Path, what: str, *, error: type[Exception] = FacInputError) -> list[dict]:
    """The JSON objects of a JSON-lines file, one per non-empty line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise _err(path, f"is not UTF-8 text ({what}): byte {err.start}", error) from err
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as err:
            raise _err(path, f"line {number} is not valid JSON ({what}): {err}", error) from err
        if not isinstance(value, dict):
            raise _err(path, f"line {number} is a JSON {type(value).__name__}, not an object ({what})", error)
        out.append(value)
    return out


def read_arrays(path: str | Path, what: str, *, required: Sequence[str] = (),
                error: type[Exception] = FacInputError) -> dict[str, np.ndarray]:
    """The arrays of a safetensors file, with ``required`` names present."""
    from safetensors.numpy import load_file

    path = Path(path)
    try:
        arrays = load_file(str(path))
    except Exception as err:  # SafetensorError, OSError, or a header that is not JSON
        raise _err(path, f"is not a readable safetensors file ({what}): {str(err)[:200]}", error) from err
    missing = [name for name in required if name not in arrays]
    if missing:
        raise _err(path, f"lacks the arrays {missing} ({what}); it has {sorted(arrays)}", error)
    return arrays


def check_array(path: str | Path, name: str, array: np.ndarray, *, length: int | None = None,
                finite: bool = True, minimum: float | None = None, above: float | None = None,
                error: type[Exception] = FacInputError) -> np.ndarray:
    """``array`` (entry ``name`` of ``path``) if it is 1-D of ``length``, finite, and ``>= minimum``
    (``> above``) wherever given; else an error saying which rule it breaks."""
    path = Path(path)
    if array.ndim != 1 or (length is not None and array.shape[0] != length):
        want = f"{length} values" if length is not None else "a vector"
        raise _err(path, f"entry {name!r} has shape {list(array.shape)}, not {want}: it belongs to another "
                         "feature space or was damaged", error)
    if array.dtype.kind == "f" and finite and not np.isfinite(array).all():
        bad = int(np.flatnonzero(~np.isfinite(array))[0])
        raise _err(path, f"entry {name!r} holds NaN or infinite values (first at {bad}): the file is damaged", error)
    if minimum is not None and array.size and array.min() < minimum:
        bad = int(np.argmin(array))
        raise _err(path, f"entry {name!r} holds {array[bad]!r} at {bad}, below {minimum:g}: the file is damaged", error)
    if above is not None and array.size and array.min() <= above:
        bad = int(np.argmin(array))
        raise _err(path, f"entry {name!r} holds {array[bad]!r} at {bad}; every value must exceed {above:g}", error)
    return array


def require(path: str | Path, meta: dict, types: dict[str, Any], what: str,
            *, error: type[Exception] = FacInputError) -> None:
    """Refuse ``meta`` (read from ``path``) unless each key of ``types`` is there with that type."""
    for key, kind in types.items():
        value = meta.get(key)
        if key not in meta or isinstance(value, bool) or not isinstance(value, kind):
            raise _err(Path(path), f"has {key}={value!r}, not a valid value ({what})", error)


__all__ = ["read_json", "read_jsonl", "read_arrays", "check_array", "require"]
