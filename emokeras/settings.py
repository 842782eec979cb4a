"""How the configuration's settings (`emokeras.config`) become absl flags.

Command lines, TensorBoard's hyper-parameters and a run's identity (no TensorFlow here).

Each dataclass field declared with `setting(...)` carries its help text, flag name, choices and bounds;
`settings(config_class)` lists them, nested configurations flattened; `flat`, `from_flat` and `command_line` go
between a configuration and its flags; `identity_differences` says how a run's recorded configuration differs from
another in what shapes a result.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing

NONE = "none"  # how a flag spells an optional choice left unset


def setting(default, help: str, *, flag: str | None = None, choices=None, lower=None, upper=None,
            identity: bool = True, exposed: bool = True):
    """A dataclass field that is also a setting.

    Args:
      default: the paper's value (a tuple for several).
      help: the flag's help text.
      flag: the flag's name when it is not the field's.
      choices: the allowed values (an optional field also takes "none").
      lower: the least value of a number.
      upper: the greatest value of a number.
      identity: whether the value shapes a run's result (its identity), as opposed to where outputs go.
      exposed: whether it is a command-line flag.
    """
    return dataclasses.field(default=default, metadata=dict(help=help, flag=flag, choices=choices, lower=lower,
                                                            upper=upper, identity=identity, exposed=exposed))


@dataclasses.dataclass(frozen=True)
class Setting:
    """One flag: its name, where it lives in the configuration, its type and the field's metadata."""

    name: str
    path: tuple[str, ...]
    type: typing.Any
    default: typing.Any
    help: str
    choices: tuple | None
    lower: typing.Any
    upper: typing.Any
    identity: bool

    @property
    def optional(self) -> bool:
        """Whether the setting may be None."""
        return type(None) in typing.get_args(self.type)

    @property
    def base_type(self):
        """`int`, `float`, `bool`, `str` or `tuple` (`tuple[int, ...]`), without the `| None`."""
        args = [arg for arg in typing.get_args(self.type) if arg is not type(None)]
        base = args[0] if self.optional else self.type
        return typing.get_origin(base) or base

    @property
    def item_type(self):
        """For a tuple setting, the type of its items."""
        return typing.get_args(self.type)[0]


@functools.cache
def settings(config_class, exclude: tuple[str, ...] = ()) -> tuple[Setting, ...]:
    """The command-line settings of `config_class`, nested configurations flattened, in field order."""
    found = []
    hints = typing.get_type_hints(config_class)
    for field in dataclasses.fields(config_class):
        kind = hints[field.name]
        if dataclasses.is_dataclass(kind):
            found += [dataclasses.replace(item, path=(field.name, *item.path)) for item in settings(kind)]
            continue
        meta = field.metadata
        if not meta.get("exposed", False):
            continue
        found.append(Setting(meta["flag"] or field.name, (field.name,), kind, field.default, meta["help"],
                             meta["choices"], meta["lower"], meta["upper"], meta["identity"]))
    names = [item.name for item in found]
    duplicated = {name for name in names if names.count(name) > 1}
    if duplicated:
        raise TypeError(f"{config_class.__name__}: settings share flag names {sorted(duplicated)}")
    return tuple(item for item in found if item.name not in exclude)


def _unused(config) -> set[str]:
    return config.unused_settings() if hasattr(config, "unused_settings") else set()


def _get(config, path):
    for name in path:
        config = getattr(config, name)
    return config


def flat(config) -> dict:
    """`{flag name: value}` for every setting of `config`."""
    return {item.name: _get(config, item.path) for item in settings(type(config))}


def from_flat(config_class, values: dict, **fields):
    """The `config_class` whose settings take `values` and whose top-level fields take `fields`.

    `values` are keyed by flag name; missing ones keep their defaults.

    Raises:
      ValueError: a value outside a setting's choices or bounds, naming the flag.
    """
    nested: dict = {}
    for item in settings(config_class):
        if item.name not in values:
            continue
        value = check(item, values[item.name])
        target = nested
        for name in item.path[:-1]:
            target = target.setdefault(name, {})
        target[item.path[-1]] = value
    hints = typing.get_type_hints(config_class)
    arguments = {name: (hints[name](**value) if isinstance(value, dict) else value) for name, value in nested.items()}
    return config_class(**{**arguments, **fields})


def check(item: Setting, value):
    """`value` if `item` allows it (tuples as tuples); else a ValueError naming the flag."""
    if value is None:
        if item.optional:
            return None
        raise ValueError(f"--{item.name} needs a value")
    values = tuple(value) if item.base_type is tuple else (value,)
    for one in values:
        if isinstance(one, float) and not math.isfinite(one):
            raise ValueError(f"--{item.name} must be a finite number, got {one!r}")
        if item.choices is not None and one not in item.choices:
            raise ValueError(f"--{item.name} must be one of {', '.join(map(str, item.choices))}, got {one!r}")
        if (item.lower is not None and one < item.lower) or (item.upper is not None and one > item.upper):
            bounds = (f"lie in [{item.lower}, {item.upper}]" if item.lower is not None and item.upper is not None
                      else f"be at least {item.lower}" if item.lower is not None else f"be at most {item.upper}")
            raise ValueError(f"--{item.name} must {bounds}, got {one!r}")
    return values if item.base_type is tuple else value


def identity_differences(recorded: dict, config) -> list[str]:
    """`"--name: recorded X, asked for Y"` for each identity setting on which `config` differs from `recorded`.

    `recorded` is a configuration as `dataclasses.asdict` gives it, as a run's `config.json` holds it.

    A setting the record lacks (written by an older emokeras) counts as its default.
    """
    differences = []
    for item in settings(type(config)):
        if not item.identity or item.name in _unused(config):
            continue
        old = recorded
        for name in item.path:
            old = old.get(name, item.default) if isinstance(old, dict) else item.default
        old = tuple(old) if isinstance(old, list) else old
        new = _get(config, item.path)
        if old != new:
            differences.append(f"--{item.name}: recorded {old!r}, asked for {new!r}")
    return differences


def command_line(config, command: str = "python -m emokeras.train", always=("fold",)) -> str:
    """The command that gives `config`: `always` settings, then every setting off its default."""
    words = [command]
    for item in settings(type(config)):
        value = _get(config, item.path)
        if item.name in always or (value != item.default and item.name not in _unused(config)):
            if isinstance(value, bool):  # absl's booleans: --name or --noname
                words.append(f"--{'' if value else 'no'}{item.name}")
                continue
            shown = NONE if value is None else ",".join(map(str, value)) if isinstance(value, tuple) else value
            words.append(f"--{item.name} {shown}")
    return " ".join(words)
