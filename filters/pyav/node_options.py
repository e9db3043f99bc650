"""The options object of a node: given whole (``options=``) or built from the node's keywords, never both.

Each node's keywords default to the fields of its verb's options class
(:class:`~chromaflow.core.options.ColorizeOptions`, ...), so a default is written once and the options object checks
the values when it is built. Defaults are plain values (the signatures users read), so a keyword passed with its
default value cannot be told from one left out: a node given ``options=`` refuses only keywords that say something
else, rather than silently preferring one of the two.
"""

import dataclasses
from typing import Any

from chromaflow.core.errors import UsageError
from chromaflow.core.options import ColorizeOptions, DeepfakeOptions, DeflickerOptions


def node_options[O: (ColorizeOptions, DeflickerOptions, DeepfakeOptions)](
    node: str, cls: type[O], options: O | None, **keywords: Any
) -> O:
    """``options`` when given (every keyword left at its default), else ``cls`` built from the keywords.

    A keyword of None for a field built by a factory (``params``) stands for that field's default; ``node`` names
    the node in messages.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    built_by_factory = {n for n, f in fields.items() if f.default_factory is not dataclasses.MISSING}
    if options is None:
        return cls(**{n: v for n, v in keywords.items() if v is not None or n not in built_by_factory})
    if not isinstance(options, cls):
        raise UsageError(f"{node}: options must be a {cls.__name__}, got {type(options).__name__}")
    defaults = {n: None if n in built_by_factory else f.default for n, f in fields.items()}
    clashing = [n for n, v in keywords.items() if v != defaults[n]]
    if clashing:
        raise UsageError(
            f"{node}: give the options whole (options=) or as keywords, not both "
            f"({', '.join(clashing)} given with options=)"
        )
    return options
