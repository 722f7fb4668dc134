"""The versioned SQL migrations each backend keeps beside its driver."""

from __future__ import annotations

from importlib import resources


def migration_scripts(package: str) -> list[tuple[int, str]]:
    """``(version, sql)`` for every ``NNN_name.sql`` in ``package``'s ``migrations`` folder."""
    folder = resources.files(package) / "migrations"
    found = [(int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8"))
             for entry in folder.iterdir() if entry.name.endswith(".sql")]
    return sorted(found)
