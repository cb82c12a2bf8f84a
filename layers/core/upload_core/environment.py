"""Settings read from environment variables into frozen dataclasses, with the standard library only.

A settings class is a frozen, keyword-only dataclass that extends `EnvironmentSettings` and declares
each field with `variable(...)`: the variable(s) it is read from (the first one set wins), its
default, how a value is parsed and its bounds. Constructing one (and so `dataclasses.replace`)
parses and checks every field again, then `check()` runs the checks across fields;
`read_environment` reads the variables and reports every bad one, one line each, naming it and the
value it had. No validation library: a function that validates nothing else then starts without
importing one (bench/cold_start.py).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from dataclasses import MISSING, Field, dataclass, fields
from enum import Enum
from typing import Any, cast

_RULE = "environment_rule"

Parse = Callable[[Any], Any]


class SettingsError(ValueError):
    """A setting is missing or malformed; raised at start so a bad deployment fails loudly."""


@dataclass(frozen=True)
class _Rule:
    variables: tuple[str, ...]
    parse: Parse
    ge: float | None
    gt: float | None
    le: float | None
    min_length: int | None


def variable(
    *names: str,
    parse: Parse,
    default: Any = MISSING,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    min_length: int | None = None,
) -> Any:
    """A field read from the variable(s) `names` (none: only given by field name, see read_environment)."""
    return dataclasses.field(default=default, metadata={_RULE: _Rule(names, parse, ge, gt, le, min_length)})


class EnvironmentSettings:
    """The base of a settings dataclass: every field is parsed and checked when one is made."""

    def __post_init__(self) -> None:
        values, problems = _parsed(type(self), {f.name: getattr(self, f.name) for f in _fields(type(self))})
        if problems:
            raise ValueError("\n".join(problems))
        for name, value in values.items():
            object.__setattr__(self, name, value)
        self.check()

    def check(self) -> None:
        """Checks across fields: raise ValueError with a message that names the variables."""


def read_environment[T](model: type[T], env: Mapping[str, str] | None = None, **given: Any) -> T:
    """One settings object from the variables its fields name; `given` supplies values (by
    variable or field name) that the environment may override.

    A blank variable counts as unset, as CloudFormation passes an empty Parameter as "".
    """
    source = os.environ if env is None else env
    raw: dict[str, Any] = {}
    labels: dict[str, str] = {}
    missing: dict[str, str] = {}
    for item in _fields(model):
        names = _rule(item).variables
        label = names[0] if names else item.name
        present = next((name for name in names if source.get(name, "").strip()), None)
        if present is not None:
            raw[item.name], labels[item.name] = source[present].strip(), present
        elif (supplied := next((name for name in (*names, item.name) if name in given), None)) is not None:
            raw[item.name], labels[item.name] = given[supplied], label
        elif item.default is MISSING and item.default_factory is MISSING:
            missing[item.name] = f"{label} must be set"
    values, problems = _parsed(model, raw, labels)
    # One line per bad variable, in the order the fields are declared.
    lines = {**missing, **problems}
    ordered = [lines[item.name] for item in _fields(model) if item.name in lines]
    if ordered:
        raise SettingsError("\n".join(ordered))
    try:
        return model(**values)
    except ValueError as error:  # a check across variables names them itself
        raise SettingsError(str(error)) from None


def _fields(model: type[Any]) -> tuple[Field[Any], ...]:
    found = fields(model)
    if not issubclass(model, EnvironmentSettings) or any(_RULE not in item.metadata for item in found):
        raise TypeError(f"{model.__name__} is not a settings dataclass (EnvironmentSettings with variable() fields)")
    return found


def _rule(item: Field[Any]) -> _Rule:
    return cast(_Rule, item.metadata[_RULE])


def _parsed(
    model: type[Any], raw: Mapping[str, Any], labels: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Each raw value parsed and bounded; problems by field name, each a line naming the variable
    (or, without `labels`, the field)."""
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for item in _fields(model):
        if item.name not in raw:
            continue
        try:
            values[item.name] = _value(_rule(item), raw[item.name])
        except ValueError as error:
            problems[item.name] = f"{(labels or {}).get(item.name, item.name)} {error}"
    return values, problems


def _value(rule: _Rule, raw: Any) -> Any:
    value = rule.parse(raw)
    got = f", got {raw!r}"
    if rule.gt is not None and not value > rule.gt:
        raise ValueError(f"must be more than {_number(rule.gt)}{got}")
    if rule.ge is not None and not value >= rule.ge:
        raise ValueError(f"must be at least {_number(rule.ge)}{got}")
    if rule.le is not None and not value <= rule.le:
        raise ValueError(f"must be at most {_number(rule.le)}{got}")
    if rule.min_length is not None and len(value) < rule.min_length:
        raise ValueError(f"must have at least {rule.min_length} characters{got}")
    return value


def _number(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


# ------------------------------------------------------------------------------------- parsers
# Each takes a variable's text or an already typed value (a default, a `dataclasses.replace`).


def integer(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        with suppress(ValueError):
            return int(value)
    raise ValueError(f"must be an integer, got {value!r}")


def number(value: Any) -> float:
    """A finite number (a timeout: "inf" is not one)."""
    result: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        result = float(value)
    elif isinstance(value, str):
        with suppress(ValueError):
            result = float(value)
    if result is None:
        raise ValueError(f"must be a number, got {value!r}")
    if not math.isfinite(result):
        raise ValueError(f"must be a finite number, got {value!r}")
    return result


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be text, got {value!r}")
    return value


def optional_text(value: Any) -> str | None:
    return None if value is None else text(value)


def true_or_false(value: Any) -> bool:
    """Only 'true' or 'false' (any case), as a template's AllowedValues: not "yes", "1" or "on"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"must be 'true' or 'false', got {value!r}")


def one_of[E: Enum](kind: type[E]) -> Callable[[Any], E]:
    """A member of a string enum, by its value in any case."""

    def parse(value: Any) -> E:
        if isinstance(value, kind):
            return value
        if isinstance(value, str):
            for member in kind:
                if member.value == value.lower():
                    return member
        expected = " or ".join(repr(member.value) for member in kind)
        raise ValueError(f"must be {expected}, got {value!r}")

    return parse


def texts(value: Any) -> frozenset[str]:
    """Any collection of strings, as given."""
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValueError(f"must be a set of strings, got {value!r}")
    return frozenset(text(item) for item in value)
