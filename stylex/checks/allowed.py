"""What a setting accepts beyond its type, declared on the schema's dataclass field in one line:

    num_steps: int = at_least(1)
    init: str = one_of("content", "noise")
    alpha: float = between(0, 1)

The type annotation is checked by OmegaConf (structured configs); the `Allowed` in the field's metadata checks
the range, the choices or the step, and says in words what is allowed. Fields with no constraint are declared
`= MISSING`: the defaults live in the YAML configs, the schema only says what is valid.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any, Callable

from omegaconf import MISSING

INFINITE = math.inf


@dataclass(frozen=True)
class Allowed:
    """A range [low, high] (ends open or closed), a set of choices, a step, a non-empty value, or a predicate;
    `each`: the rule applies to every element of a list."""

    low: float = -INFINITE
    high: float = INFINITE
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] = ()
    multiple: int | None = None
    nonempty: bool = False
    each: bool = False
    length: int | None = None
    predicate: Callable[[Any], bool] | None = None
    words: str = ""  # what the predicate allows, in words

    def accepts_one(self, value: Any) -> bool:
        if self.nonempty and value in ("", None, [], {}):
            return False
        if self.choices and value not in self.choices:
            return False
        if self.predicate is not None and not self.predicate(value):
            return False
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if value < self.low or (self.low_open and value == self.low):
                return False
            if value > self.high or (self.high_open and value == self.high):
                return False
            if self.multiple and value % self.multiple:
                return False
        return True

    def accepts(self, value: Any) -> bool:
        if self.each:
            if not isinstance(value, (list, tuple)):
                return True  # the type check reports it
            if self.length is not None and len(value) != self.length:
                return False
            return all(self.accepts_one(v) for v in value)
        return self.accepts_one(value)

    def describe(self) -> str:
        parts = []
        if self.choices:
            parts.append("one of: " + ", ".join(show(c) for c in self.choices))
        if self.low > -INFINITE and self.high < INFINITE:
            parts.append(f"in {'(' if self.low_open else '['}{show(self.low)}, {show(self.high)}"
                         f"{')' if self.high_open else ']'}")
        elif self.low > -INFINITE:
            parts.append(f"{'>' if self.low_open else '>='} {show(self.low)}")
        elif self.high < INFINITE:
            parts.append(f"{'<' if self.high_open else '<='} {show(self.high)}")
        if self.multiple:
            parts.append(f"a multiple of {self.multiple}")
        if self.words:
            parts.append(self.words)
        if self.nonempty:
            parts.append("not empty")
        text = ", ".join(parts)
        if self.each:
            count = f"{self.length} " if self.length is not None else ""
            return f"{count}values, each {text}" if text else f"{count}values"
        return text


def setting(allowed: Allowed) -> Any:
    """A dataclass field with no default (the YAML config holds it) and what it allows."""
    return dataclasses.field(default=MISSING, metadata={"allowed": allowed})


def at_least(low: float) -> Any:
    return setting(Allowed(low=low))


def above(low: float) -> Any:
    return setting(Allowed(low=low, low_open=True))


def between(low: float, high: float) -> Any:
    return setting(Allowed(low=low, high=high))


def one_of(*choices: Any) -> Any:
    return setting(Allowed(choices=choices))


def multiple_of(step: int, low: int) -> Any:
    return setting(Allowed(low=low, multiple=step))


def nonempty() -> Any:
    return setting(Allowed(nonempty=True))


def each(length: int | None = None, **rule: Any) -> Any:
    """A list whose every element obeys `rule` (keywords of `Allowed`), of `length` elements when given."""
    return setting(Allowed(each=True, length=length, **rule))


def satisfies(predicate: Callable[[Any], bool], words: str) -> Any:
    """A rule no range or choice list expresses (e.g. an int, a list of ints or "auto")."""
    return setting(Allowed(predicate=predicate, words=words))


def nested(schema: type) -> Any:
    """A sub-node checked against its own schema (e.g. method.regions)."""
    return dataclasses.field(default_factory=schema)


def allowed_of(field: dataclasses.Field) -> Allowed | None:
    return field.metadata.get("allowed")


def show(value: Any) -> str:
    """A value as it is typed on the command line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, str):
        return value if value.strip() == value and value else repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{show(v)}" for k, v in value.items()) + "}"
    return str(value)


def describe_type(annotation: Any) -> str:
    """`int` -> "an integer", `Optional[float]` -> "a number or null", `list[str]` -> "a list of strings"."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        return f"{describe_type(inner[0])} or null"
    if origin in (list, tuple):
        return f"a list of {PLURALS.get(args[0], 'values') if args else 'values'}"
    if origin is dict:
        return "a mapping"
    return TYPE_WORDS.get(annotation, "a value")


TYPE_WORDS: dict[Any, str] = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
PLURALS: dict[Any, str] = {int: "integers", float: "numbers", bool: "booleans", str: "strings"}


def describe(annotation: Any, field: dataclasses.Field) -> str:
    """What the setting allows, in words: its type and its rule ("an integer >= 1", "one of: keep, squash")."""
    rule = allowed_of(field)
    words = describe_type(annotation)
    text = rule.describe() if rule else ""
    if not text:
        return words
    if rule.each:
        return f"{words}: {text}"
    if rule.choices or rule.words or words == "a value":
        return text
    return f"{words} {text}" if text[0] in "<>i" else f"{words}, {text}"
