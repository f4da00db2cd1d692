"""One name for "a value that came out of (or goes into) `json.loads`/`json.dumps`".

Use `JsonValue` for JSON whose shape we do not fix (an upstream's error body, a client's pass-through
content part) and narrow it with `isinstance` where a field is read; use a `TypedDict` where the shape
is ours (log records, error envelopes). `JsonObject` is the common case of a top-level object.

`dict` and `list` are invariant, so a `dict[str, int]` is not a `JsonObject`: annotate the literal
(`body: JsonObject = {...}`) or build it where it is typed. For read-only parameters that should accept
any JSON-like mapping use `Mapping[str, object]`.

Python 3.11 has no `type` statement, so the recursive alias is a `TypeAliasType` (typing_extensions,
which pydantic depends on): mypy checks it like `type JsonValue = ...`, and it is a real object at
runtime, so pydantic models can use it as a field type (it validates as any JSON value).
"""

from __future__ import annotations

from typing import TypeAlias

from typing_extensions import TypeAliasType

JsonValue = TypeAliasType("JsonValue", "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None")
JsonObject: TypeAlias = dict[str, JsonValue]
JsonArray: TypeAlias = list[JsonValue]

__all__ = ["JsonArray", "JsonObject", "JsonValue"]
