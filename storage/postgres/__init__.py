"""PostgreSQL storage: the driver and its migrations (``migrations/*.sql``) beside it."""

from storage.postgres.driver import PostgresStorage

__all__ = ["PostgresStorage"]
