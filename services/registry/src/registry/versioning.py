"""Version history kept by the database itself, so no write path can forget it.

A row trigger bumps ``version`` (and ``modified_at``) when a row really changes; a statement
trigger with a transition table then records every new version in ``<table>_version`` and
closes the previous one, set-based, so a bulk merge of a million rows costs one INSERT and one
UPDATE, not a million trigger calls into the history. "As of" reads select the version whose
``[valid_from, valid_to)`` holds the instant.
"""

from __future__ import annotations

__all__ = ["versioning_sql"]


def versioning_sql(table: str, *, key: str = "id") -> list[str]:
    history = f"{table}_version"
    return [
        f"""
        CREATE FUNCTION {table}_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.version := OLD.version + 1;
            NEW.modified_at := clock_timestamp();
            RETURN NEW;
        END $$
        """,
        f"""
        CREATE TRIGGER {table}_bump_version BEFORE UPDATE ON {table} FOR EACH ROW
        WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION {table}_bump_version()
        """,
        f"""
        CREATE FUNCTION {table}_record_versions() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' THEN
                UPDATE {history} AS v SET valid_to = n.modified_at
                FROM new_rows AS n
                WHERE v.{table}_id = n.{key} AND v.valid_to IS NULL AND v.version < n.version;
            END IF;
            INSERT INTO {history} ({table}_id, version, valid_from, data)
            SELECT n.{key}, n.version, n.modified_at, to_jsonb(n) FROM new_rows AS n
            ON CONFLICT DO NOTHING;
            RETURN NULL;
        END $$
        """,
        f"""
        CREATE TRIGGER {table}_versions_on_insert AFTER INSERT ON {table}
        REFERENCING NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION {table}_record_versions()
        """,
        f"""
        CREATE TRIGGER {table}_versions_on_update AFTER UPDATE ON {table}
        REFERENCING NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION {table}_record_versions()
        """,
    ]
