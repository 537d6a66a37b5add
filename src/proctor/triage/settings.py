"""``[tool.proctor.triage]``: the thresholds of triage and flakiness, checked.

```toml
[tool.proctor.triage]
window_days = 7          # proctor triage: the default window
flaky_window_days = 14   # proctor flaky: the default window
gone_after_runs = 3      # a cluster absent from this many of the newest runs is gone
broken_consecutive = 3   # broken: failed in this many consecutive runs, newest included...
broken_window = 10       # ...or in broken_failures of the newest broken_window runs
broken_failures = 6
recovered_after = 5      # a flaky or broken test drops off after this many passes in a row
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from proctor.config import ConfigError

__all__ = ["TriageSettings"]


@dataclass(frozen=True, slots=True)
class TriageSettings:
    window_days: int = 7
    flaky_window_days: int = 14
    gone_after_runs: int = 3
    broken_consecutive: int = 3
    broken_window: int = 10
    broken_failures: int = 6
    recovered_after: int = 5

    @classmethod
    def from_table(cls, table: Mapping[str, Any], where: str) -> TriageSettings:
        """The settings of a ``[tool.proctor.triage]`` table; ConfigError naming
        ``where`` for an unknown key or a value that is not a positive integer."""
        known = {item.name for item in fields(cls)}
        values: dict[str, int] = {}
        for key, value in table.items():
            name = key.replace("-", "_")
            if name not in known:
                raise ConfigError(
                    f"{where}: unknown setting {key!r}; known settings: {', '.join(sorted(known))}"
                )
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{where}: {key} = {value!r} should be a whole number, 1 or more")
            values[name] = value
        settings = replace(cls(), **values)
        if settings.broken_failures > settings.broken_window:
            raise ConfigError(
                f"{where}: broken_failures ({settings.broken_failures}) cannot be more than "
                f"broken_window ({settings.broken_window})"
            )
        return settings
