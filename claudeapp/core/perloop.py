"""One object per running event loop: made on first use in that loop, forgotten with the loop.

Keyed by the loop object, weakly: a loop's id() can be reused by a later loop once the first is gone,
and an object bound to a dead loop (a connection pool, an asyncio.Event) fails on first use in another.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    def __init__(self, make: Callable[[], T], *, usable: Callable[[T], bool] | None = None) -> None:
        """`make` builds the running loop's object; `usable` (optional) says whether one made earlier
        may still serve (e.g. a session not closed), else a new one replaces it."""
        self._make = make
        self._usable = usable
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = weakref.WeakKeyDictionary()

    def get(self) -> T:
        """The running loop's object (RuntimeError outside a running loop)."""
        loop = asyncio.get_running_loop()
        found = self._by_loop.get(loop)
        if found is None or (self._usable is not None and not self._usable(found)):
            found = self._by_loop[loop] = self._make()
        return found

    def pop(self) -> T | None:
        """Forget the running loop's object and return it (to close it before the loop ends)."""
        return self._by_loop.pop(asyncio.get_running_loop(), None)

    def clear(self) -> None:
        """Forget every loop's object (tests that point settings elsewhere)."""
        self._by_loop.clear()

    def __len__(self) -> int:
        return len(self._by_loop)
