"""Storage for activity scripts (SPEC §4.4): the backend protocol, a dict-backed backend, and
the quota and typed-value rules, which live here rather than in each backend.

A backend stores opaque strings: the JSON encoding of a string, number or boolean. The rules
(what may be stored, how big) are enforced by :class:`QuotaStorage`, which the runtime puts
between the script and the backend, so every backend behaves the same.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Protocol, runtime_checkable

from firehook.scripts.limits import ScriptLimits


@runtime_checkable
class StorageBackend(Protocol):
    """Key/value store of one integration; values are JSON encodings of typed scalars."""

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, encoded: str) -> None: ...

    def remove(self, key: str) -> None: ...

    def clear(self) -> None: ...

    def total_bytes(self) -> int:
        """Sum of ``len(key) + len(encoded)`` in UTF-8 bytes over every entry."""
        ...


def entry_bytes(key: str, encoded: str) -> int:
    """The bytes one entry counts against the integration's quota."""
    return len(key.encode("utf-8")) + len(encoded.encode("utf-8"))


class MemoryStorage:
    """A dict-backed backend, optionally loaded from and saved to a JSON file.

    The file holds ``{key: value}`` with the typed values themselves (``{"counter": 3}``), so
    it is easy to read and edit by hand; it is what ``script:run --storage FILE`` uses.
    """

    def __init__(self, entries: dict[str, str] | None = None) -> None:
        self._entries: dict[str, str] = dict(entries or {})

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> MemoryStorage:
        """Read a storage file; a missing file is an empty storage.

        Raises ValueError when the file is not a JSON object of strings, numbers and booleans.
        """
        file = Path(path)
        if not file.exists():
            return cls()
        data = json.loads(file.read_text(encoding="utf-8") or "{}")
        if not isinstance(data, dict):
            raise ValueError(f"{file}: a storage file holds a JSON object")  # noqa: TRY004
        entries: dict[str, str] = {}
        for key, value in data.items():
            try:
                entries[str(key)] = encode_value(value)
            except StorageRuleError as exc:
                raise ValueError(f"{file}: {key!r}: {exc.message}") from None
        return cls(entries)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the storage file atomically (a crash never leaves half a file)."""
        file = Path(path)
        data = {k: json.loads(v) for k, v in self._entries.items()}
        fd, tmp = tempfile.mkstemp(dir=file.parent or Path("."), prefix=file.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out, indent=2, ensure_ascii=False)
                out.write("\n")
            os.replace(tmp, file)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def items(self) -> dict[str, str]:
        """A copy of the entries, key → encoded value."""
        return dict(self._entries)

    def get(self, key: str) -> str | None:
        return self._entries.get(key)

    def set(self, key: str, encoded: str) -> None:
        self._entries[key] = encoded

    def remove(self, key: str) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    def total_bytes(self) -> int:
        return sum(entry_bytes(k, v) for k, v in self._entries.items())


class StorageRuleError(Exception):
    """A storage call broke a rule; ``js_name`` is the JavaScript error the script sees."""

    def __init__(self, js_name: str, message: str) -> None:
        super().__init__(message)
        self.js_name = js_name
        self.message = message


def encode_value(value: object) -> str:
    """JSON-encode a typed storage value, refusing what the typed-value rule refuses."""
    if isinstance(value, bool | str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise StorageRuleError("TypeError", "storage values must be finite numbers")
        return json.dumps(value)
    raise StorageRuleError(
        "TypeError",
        "storage values must be strings, numbers or booleans; "
        "use JSON.stringify(value) to store an object or an array",
    )


def check_encoded(encoded: str) -> None:
    """Check that ``encoded`` is the JSON encoding of a string, number or boolean."""
    try:
        value = json.loads(encoded)
    except (ValueError, TypeError):
        raise StorageRuleError("TypeError", "storage value is not a valid encoding") from None
    encode_value(value)


class QuotaStorage:
    """The script's view of a backend: key, value and total quotas, and the typed-value rule."""

    def __init__(self, backend: StorageBackend, limits: ScriptLimits) -> None:
        self._backend = backend
        self._limits = limits

    def _check_key(self, key: str) -> None:
        if not key:
            raise StorageRuleError("TypeError", "storage keys must be non-empty strings")
        if "\x00" in key:  # no database stores it in a text column: refused here, not at recording
            raise StorageRuleError("TypeError", "storage keys cannot contain NUL characters")
        size = len(key.encode("utf-8"))
        if size > self._limits.storage_key_bytes:
            raise StorageRuleError(
                "RangeError",
                f"storage key is {size} bytes; the limit is {self._limits.storage_key_bytes} bytes",
            )

    def get(self, key: str) -> str | None:
        self._check_key(key)
        return self._backend.get(key)

    def set(self, key: str, encoded: str) -> None:
        self._check_key(key)
        check_encoded(encoded)
        size = len(encoded.encode("utf-8"))
        if size > self._limits.storage_value_bytes:
            raise StorageRuleError(
                "RangeError",
                f"storage value is {size} bytes; the limit is "
                f"{self._limits.storage_value_bytes} bytes",
            )
        old = self._backend.get(key)
        total = self._backend.total_bytes() - (entry_bytes(key, old) if old is not None else 0)
        total += entry_bytes(key, encoded)
        if total > self._limits.storage_total_bytes:
            raise StorageRuleError(
                "RangeError",
                f"storage would hold {total} bytes; the limit per integration is "
                f"{self._limits.storage_total_bytes} bytes",
            )
        self._backend.set(key, encoded)

    def remove(self, key: str) -> None:
        self._check_key(key)
        self._backend.remove(key)

    def clear(self) -> None:
        self._backend.clear()
