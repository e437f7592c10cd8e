"""Storage backends and the quota / typed-value rules of the scripts layer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from firehook.scripts import storage
from firehook.scripts.limits import ScriptLimits
from firehook.scripts.storage import MemoryStorage, QuotaStorage, StorageRuleError


def test_memory_storage_is_a_storage_backend() -> None:
    assert isinstance(MemoryStorage(), storage.StorageBackend)


def test_memory_storage_operations_and_total_bytes() -> None:
    store = MemoryStorage()
    store.set("a", '"x"')
    store.set("é", "1")
    assert store.get("a") == '"x"'
    assert store.get("missing") is None
    assert store.total_bytes() == (1 + 3) + (2 + 1)
    store.remove("a")
    store.remove("missing")
    assert store.items() == {"é": "1"}
    store.clear()
    assert store.total_bytes() == 0


def test_memory_storage_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    assert MemoryStorage.load(path).items() == {}
    path.write_text(json.dumps({"n": 1, "s": "text", "b": True, "f": 1.5}))
    store = MemoryStorage.load(path)
    assert store.items() == {"n": "1", "s": '"text"', "b": "true", "f": "1.5"}
    store.set("n", "2")
    store.save(path)
    assert json.loads(path.read_text()) == {"n": 2, "s": "text", "b": True, "f": 1.5}
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


def test_storage_file_with_an_object_value_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"o": {"a": 1}}))
    with pytest.raises(ValueError, match="JSON.stringify"):
        MemoryStorage.load(path)
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="a storage file holds a JSON object"):
        MemoryStorage.load(path)
    path.write_text("{not json")
    with pytest.raises(ValueError):
        MemoryStorage.load(path)


@pytest.mark.parametrize("value", ["x", 1, 1.5, True, False, ""])
def test_encode_value_accepts_scalars(value: object) -> None:
    assert json.loads(storage.encode_value(value)) == value


@pytest.mark.parametrize("value", [None, [1], {"a": 1}, float("nan"), float("inf")])
def test_encode_value_refuses_the_rest(value: object) -> None:
    with pytest.raises(StorageRuleError) as caught:
        storage.encode_value(value)
    assert caught.value.js_name == "TypeError"


def test_quota_storage_rules() -> None:
    limits = ScriptLimits(storage_key_bytes=4, storage_value_bytes=6, storage_total_bytes=12)
    backend = MemoryStorage()
    quota = QuotaStorage(backend, limits)
    quota.set("k", '"abc"')  # 1 + 5
    with pytest.raises(StorageRuleError, match="storage key is 5 bytes; the limit is 4 bytes"):
        quota.set("kkkkk", "1")
    with pytest.raises(StorageRuleError, match="storage value is 7 bytes; the limit is 6 bytes"):
        quota.set("k", '"abcde"')
    with pytest.raises(
        StorageRuleError, match="would hold 13 bytes; the limit per integration is 12 bytes"
    ):
        quota.set("k2", '"abc"')  # 6 + (2 + 5) > 12
    quota.set("k", '"abcd"')  # replacing counts the new size only: 1 + 6 = 7
    assert backend.items() == {"k": '"abcd"'}
    with pytest.raises(StorageRuleError) as caught:
        quota.set("k", '{"a":1}')
    assert caught.value.js_name == "TypeError"
    with pytest.raises(StorageRuleError):
        quota.set("k", "not json")
    with pytest.raises(StorageRuleError):
        quota.get("")
