"""A small name -> builder registry with metadata, shared by every pluggable piece.

Why one class: architectures, datasets, checkpoint formats and pruning methods are all "a
name, a function and a few facts about it"; adding one must be one decorated function, or,
where the entries live in other modules than the registry, one declared ``Entry`` that the
registry's owner collects (``Registry.from_entries``), so no module imports its registry back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterable, Iterator, TypeVar

from common.errors import UnknownName

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Entry(Generic[F]):
    """One registered builder and the facts declared with it."""

    name: str
    fn: F
    meta: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[F]):
    """Maps names to builders; unknown names are errors that list the known ones."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[F]] = {}

    @classmethod
    def from_entries(cls, kind: str, entries: Iterable[Entry[F]]) -> Registry[F]:
        """A registry holding ``entries`` in order (declared elsewhere, collected here)."""
        registry: Registry[F] = cls(kind)
        for entry in entries:
            registry.add(entry)
        return registry

    def add(self, entry: Entry[F]) -> Entry[F]:
        """Register an already built entry; a name may be registered once."""
        if entry.name in self._entries:
            raise ValueError(f"{self.kind} {entry.name!r} is registered twice")
        self._entries[entry.name] = entry
        return entry

    def register(self, name: str, **meta: Any) -> Callable[[F], F]:
        """Decorator: ``@REG.register("gmp", family="progressive")``."""

        def deco(fn: F) -> F:
            self.add(Entry(name=name, fn=fn, meta=dict(meta)))
            return fn

        return deco

    def get(self, name: str) -> Entry[F]:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownName(  # a name from a study or option: bad input, still a KeyError
                f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._entries))}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[F]]:
        return iter(self._entries.values())

    def names(self) -> list[str]:
        return list(self._entries)
