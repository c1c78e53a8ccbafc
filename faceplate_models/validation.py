"""Arguments checked before any SQL runs: a `ValidationError` names the field, nothing is written.

Hostile input costs little: a value is measured while it is walked, against a lower bound
of its encoded size, and rejected as soon as that bound passes the cap, so time and memory
follow the cap and not the input. Lengths are checked after normalisation (an email is
lower-cased, and "İ" lower-cases to two characters).
"""

from __future__ import annotations

import enum
import json
import math
import sys
import uuid
from collections.abc import Callable, Mapping
from typing import Final, TypeVar

from faceplate_models.errors import ValidationError
from faceplate_models.ids import uuid7
from faceplate_models.models import EMAIL_MAX, Role

#: Largest text of a message or task description, in characters.
MAX_TEXT_CHARS: Final = 1_000_000
#: Largest JSON value (tool calls, tool results, an MCP config), encoded, in bytes.
MAX_JSON_BYTES: Final = 1_000_000
#: Deepest nesting of a JSON value; PostgreSQL's parser has a stack limit well above it.
MAX_JSON_DEPTH: Final = 64
#: Largest page a list function returns.
MAX_PAGE: Final = 1000
#: Most bytes of content (text, and JSON as text) a page returns: a page ends early, with
#: its cursor, once its messages pass it (its first message is always returned), so a read
#: of a hundred 1 MB messages does not take a hundred megabytes of the caller's memory.
MAX_PAGE_BYTES: Final = 8_000_000
#: Longest tool call id and tool name.
MAX_TOOL_ID: Final = 256
#: Most decimal digits of a JSON integer: what Python reads back (`int()` refuses more).
MAX_INT_DIGITS: Final = sys.get_int_max_str_digits() or 4300
# An integer with more bits than this has more digits than MAX_INT_DIGITS; one with fewer
# is measured exactly with str(), at a cost the bound keeps small.
_MAX_INT_BITS: Final = math.ceil(MAX_INT_DIGITS * math.log2(10)) + 1
# str.lower() and str.strip() never grow a string more than threefold.
_NORMALISATION_GROWTH: Final = 3


class Unset(enum.Enum):
    """The type of `UNSET`, the default of optional update arguments: "leave it as it is",
    unlike None, which clears."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset.UNSET

T = TypeVar("T")


def parsed(
    field: str, parse: Callable[[], T], errors: tuple[type[Exception], ...], problem: str
) -> T:
    """`parse()`, or a `ValidationError` saying `problem`.

    The error is raised after the handler has ended, so the parser's exception (which holds
    the input, as a `JSONDecodeError`'s `doc` or a `UnicodeEncodeError`'s `object` does, an
    import document's secret values included) is neither its `__cause__` nor its `__context__`.
    """
    try:
        return parse()
    except errors:
        pass
    raise ValidationError(field, problem)


def as_uuid(field: str, value: object) -> uuid.UUID:
    """A UUID, or its string form."""
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str) and len(value) <= 45:
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise ValidationError(field, f"must be a UUID, not {_show(value)}")


def new_key(field: str, value: object) -> uuid.UUID:
    """The key of a row to create: the caller's uuid7 (which makes the call repeatable: a
    retry with the same key finds the row instead of writing another), else a new one."""
    if value is None:
        return uuid7()
    key = as_uuid(field, value)
    if key.version != 7:
        raise ValidationError(field, f"must be a uuid7 (time-ordered), not version {key.version}")
    return key


def _show(value: object) -> str:
    """A short description of a rejected value that costs nothing to build."""
    if isinstance(value, str | bytes):
        return f"{type(value).__name__} of length {len(value)}"
    if isinstance(value, bool | float | uuid.UUID) or value is None:
        return f"{type(value).__name__} {value!r}"
    return type(value).__name__


def check_string(field: str, value: str) -> None:
    """Text PostgreSQL can store: no NUL, no lone surrogate."""
    value = str.__str__(value)  # a str subclass may override what is checked here
    if "\x00" in value:
        raise ValidationError(field, "contains a NUL character, which PostgreSQL cannot store")
    problem = "contains a lone surrogate, which is not valid Unicode text"
    parsed(field, value.encode, (UnicodeEncodeError,), problem)


def text(field: str, value: object, max_chars: int, *, strip: bool = False) -> str:
    """A string of at most `max_chars` characters (after stripping, when asked)."""
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, not {_show(value)}")
    value = str.__str__(value)  # a plain str, whatever a subclass overrides
    if strip:
        if len(value) > max_chars * _NORMALISATION_GROWTH:
            raise _too_long(field, len(value), max_chars)
        value = value.strip()
    if len(value) > max_chars:
        raise _too_long(field, len(value), max_chars)
    check_string(field, value)
    return value


def _too_long(field: str, length: int, max_chars: int) -> ValidationError:
    return ValidationError(field, f"is {length} characters long; the limit is {max_chars}")


def required_text(field: str, value: object, max_chars: int) -> str:
    """Stripped, non-empty text."""
    stripped = text(field, value, max_chars, strip=True)
    if not stripped:
        raise ValidationError(field, "must not be empty")
    return stripped


def optional_text(field: str, value: object, max_chars: int) -> str | None:
    """Text, or None."""
    return None if value is None else text(field, value, max_chars)


def email_address(value: object) -> str:
    """An email address, stripped and lower-cased; its length is checked after both."""
    if not isinstance(value, str):
        raise ValidationError("email", f"must be a string, not {_show(value)}")
    if len(value) > EMAIL_MAX * _NORMALISATION_GROWTH:
        raise _too_long("email", len(value), EMAIL_MAX)
    address = text("email", str.__str__(value).strip().lower(), EMAIL_MAX)
    local, at, domain = address.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in address):
        raise ValidationError("email", "is not an email address")
    return address


def role(value: object) -> Role:
    """One of the four message roles."""
    if isinstance(value, str) and value in _ROLES:
        return Role(value)
    allowed = ", ".join(_ROLES)
    raise ValidationError("role", f"must be one of {allowed}, not {_show(value)}")


_ROLES: Final = [r.value for r in Role]


def whole_number(field: str, value: object, low: int, high: int, what: str = "") -> int:
    """A whole number from `low` to `high` (a bool is not one); `what` names its unit."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(field, f"must be a whole number{what} from {low} to {high}")
    return value


def page_size(value: object, most: int = MAX_PAGE) -> int:
    """A page size from 1 to `most` (MAX_PAGE unless a listing allows fewer)."""
    return whole_number("limit", value, 1, most)


def flag(field: str, value: object, *, optional: bool = False) -> bool | None:
    """True or False (or None, when `optional`)."""
    if (value is None and optional) or isinstance(value, bool):
        return value
    raise ValidationError(field, "must be True or False" + (" or None" if optional else ""))


# --- JSON ----------------------------------------------------------------------------------


def nesting(field: str, depth: int) -> None:
    """Refuse a value nested deeper than MAX_JSON_DEPTH, before anything recurses further."""
    if depth > MAX_JSON_DEPTH:
        raise ValidationError(field, f"is nested deeper than {MAX_JSON_DEPTH} levels")


# Python writes integral floats from 1e16 up in exponent form ("3.602879701896397e+16"), which
# JSONB stores as a decimal integer, so they would come back as a different int. Such floats
# are written out in full with a ".0", which JSONB keeps, and which reads back exactly.
_FLOAT_EXPONENT_FROM: Final = 1e16


class _Walk:
    """One walk over a JSON value: a running lower bound of its encoded size."""

    __slots__ = ("field", "inexact", "size")

    def __init__(self, field: str) -> None:
        self.field = field
        self.size = 0
        self.inexact = False

    def grow(self, size: int) -> None:
        self.size += size
        if self.size > MAX_JSON_BYTES:
            raise ValidationError(self.field, f"is larger than {MAX_JSON_BYTES} bytes as JSON")

    def string(self, value: str) -> None:
        self.grow(len(value) + 2)  # each character takes at least one byte, plus quotes
        check_string(self.field, value)

    def value(self, value: object, depth: int) -> None:
        nesting(self.field, depth)
        if value is None or isinstance(value, bool):
            self.grow(5)
        elif isinstance(value, int):
            self.integer(value)
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ValidationError(self.field, f"holds {value}, which JSON cannot represent")
            self.grow(3)
            if value.is_integer() and abs(value) >= _FLOAT_EXPONENT_FROM:
                self.inexact = True
        elif isinstance(value, str):
            self.string(value)
        elif isinstance(value, list | tuple):
            self.grow(len(value) + 1)  # brackets and commas, before walking the items
            for item in value:
                self.value(item, depth + 1)
        elif isinstance(value, dict):
            self.grow(len(value) * 2 + 1)  # braces, colons and commas
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ValidationError(
                        self.field, f"has a {type(key).__name__} key; JSON keys are strings"
                    )
                self.string(key)
                self.value(item, depth + 1)
        else:
            raise ValidationError(
                self.field, f"holds a {type(value).__name__}, which is not a JSON value"
            )

    def integer(self, value: int) -> None:
        huge = f"holds an integer of more than {MAX_INT_DIGITS} digits"
        if value.bit_length() > _MAX_INT_BITS:
            raise ValidationError(self.field, huge)
        # str() refuses more digits than Python converts
        self.grow(len(parsed(self.field, lambda: int.__str__(value), (ValueError,), huge)))


def _exact_json(value: object) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) >= _FLOAT_EXPONENT_FROM:
        return f"{int(value)}.0"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_exact_json(item) for item in value) + "]"
    if isinstance(value, dict):
        items = (f"{json.dumps(k, ensure_ascii=False)}:{_exact_json(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    return json.dumps(value, ensure_ascii=False)


def json_text(field: str, value: object) -> str:
    """Validate a JSON value and encode it for a JSONB parameter.

    Accepts None, booleans, integers of at most MAX_INT_DIGITS digits, finite floats,
    strings, lists, tuples and dicts with string keys; the encoded form is at most
    MAX_JSON_BYTES bytes and MAX_JSON_DEPTH levels deep.
    """
    walk = _Walk(field)
    walk.value(value, 0)
    if walk.inexact:
        encoded = _exact_json(value)
    else:
        encoded = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if len(encoded.encode("utf-8")) > MAX_JSON_BYTES:  # escapes and multi-byte characters
        raise ValidationError(field, f"is larger than {MAX_JSON_BYTES} bytes as JSON")
    return encoded


def json_object(field: str, value: object) -> str:
    """A JSON object (a dict), encoded."""
    if not isinstance(value, dict):
        raise ValidationError(field, f"must be a JSON object (a dict), not {_show(value)}")
    return json_text(field, value)


def string_map(
    field: str, value: object, max_entries: int, max_name: int, max_value: int
) -> dict[str, str]:
    """A dict of non-empty string names (at most `max_name` characters) to string values."""
    if not isinstance(value, Mapping):
        raise ValidationError(field, f"must be a dict of strings, not {_show(value)}")
    if len(value) > max_entries:
        raise ValidationError(field, f"has {len(value)} entries; the limit is {max_entries}")
    result: dict[str, str] = {}
    for name, item in value.items():
        key = text(field, name, max_name)
        if not key:
            raise ValidationError(field, "has an empty name")
        result[key] = text(field, item, max_value)
    return result


__all__ = [
    "MAX_INT_DIGITS",
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_PAGE",
    "MAX_PAGE_BYTES",
    "MAX_TEXT_CHARS",
    "MAX_TOOL_ID",
    "UNSET",
    "Unset",
    "as_uuid",
    "check_string",
    "email_address",
    "flag",
    "json_object",
    "json_text",
    "nesting",
    "new_key",
    "optional_text",
    "page_size",
    "parsed",
    "required_text",
    "role",
    "string_map",
    "text",
]
