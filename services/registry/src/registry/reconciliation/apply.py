"""Stages 4 and 5, the work and its application: plan tables of what differs from the registry,
then INSERT/UPDATE set-based, each statement staging the outbox rows of what it changed."""

from __future__ import annotations

from registry import events
from registry.reconciliation.staging import HOUSEHOLD_COLUMNS
from registry.reconciliation.validation import PERSON_FIELDS

__all__ = [
    "BATCH_COUNTS",
    "CHECK_HEAD_IN_REGISTRY",
    "DROP_SKIPPED_WORK",
    "FAIL_BATCH",
    "HOUSEHOLDS_DDL",
    "HOUSEHOLD_PLAN",
    "INSERT_HOUSEHOLDS",
    "INSERT_PERSONS",
    "LOCK_HOUSEHOLDS",
    "LOCK_MEMBERS",
    "LOCK_PERSONS",
    "MOVE_EDGES",
    "PENDING_PERSONS",
    "PERSON_PLAN",
    "SAVE_PROGRESS",
    "UPDATE_HEADS",
    "UPDATE_HOUSEHOLDS",
    "UPDATE_LEAVERS",
    "WORK_DDL",
    "WORK_ROWS_DDL",
]

# The work: households of the file where anything differs from the registry (a new card or
# person, a changed value, a person on another card; in a snapshot, a living member who is
# nowhere in the file). Every other valid row is unchanged and needs no lock and no write.
WORK_DDL = """
CREATE TEMP TABLE recon_work AS
SELECT kk FROM recon_row WHERE ok AND differs
UNION
SELECT f.kk
FROM (SELECT DISTINCT kk, household_id FROM recon_row WHERE $1 AND ok) f
JOIN person p ON p.household_id = f.household_id
WHERE p.status = 'alive' AND NOT EXISTS (SELECT 1 FROM recon_row r WHERE r.nik = p.nik)
"""
DROP_SKIPPED_WORK = """
DELETE FROM recon_work w WHERE NOT EXISTS (SELECT 1 FROM recon_row r WHERE r.kk = w.kk AND r.ok)
"""
# A living head in the registry whom the file leaves in place (not in the file's valid rows and,
# in a snapshot, not about to be moved out for being absent) clashes with the file's new head.
CHECK_HEAD_IN_REGISTRY = """
WITH new_heads AS MATERIALIZED (  -- the file's living heads of the work (a few thousand)
    SELECT f.line, f.kk, f.nik FROM recon_row f
    WHERE f.ok AND f.relationship = 'head' AND f.status = 'alive'
      AND f.kk IN (SELECT kk FROM recon_work)
), heads AS MATERIALIZED (  -- the registry's living head beside each of them
    SELECT n.line, p.nik
    FROM new_heads n
    JOIN household h ON h.kk = n.kk
    JOIN person p ON p.household_id = h.id AND p.relationship = 'head' AND p.status = 'alive'
    WHERE p.nik <> n.nik
), in_file AS (  -- few heads: look them up in the file, not the file up in them
    SELECT r.nik, bool_or(r.ok) AS valid FROM recon_row r
    WHERE r.nik IN (SELECT nik FROM heads) GROUP BY r.nik
)
INSERT INTO import_error (batch_id, line, field, reason)
SELECT $1, heads.line, 'relationship',
       'the KK already has a living head in the registry whom this file does not change; '
       'give that member''s new relationship or status in the same file'
FROM heads LEFT JOIN in_file ON in_file.nik = heads.nik
WHERE NOT coalesce(in_file.valid, false) AND (NOT $2 OR in_file.nik IS NOT NULL)
RETURNING line
"""
HOUSEHOLDS_DDL = f"""
CREATE TEMP TABLE recon_household AS
SELECT DISTINCT ON (r.kk) r.kk, r.line AS first_line,
       {", ".join(f"r.{c}" for c in HOUSEHOLD_COLUMNS)},
       count(*) OVER (PARTITION BY r.kk) AS rows, 0 AS batch_no
FROM recon_typed r WHERE r.ok AND r.kk IN (SELECT kk FROM recon_work)
ORDER BY r.kk, r.line
"""
# People who move between two households of the work tie the two into one batch.
MOVE_EDGES = """
SELECT DISTINCT r.kk, old.kk AS old_kk
FROM recon_row r
JOIN recon_household rh ON rh.kk = r.kk
JOIN person p ON p.nik = r.nik
JOIN household old ON old.id = p.household_id
JOIN recon_household oh ON oh.kk = old.kk
WHERE r.ok AND old.kk <> r.kk
"""
WORK_ROWS_DDL = """
CREATE TEMP TABLE recon_work_row AS
SELECT r.*, h.batch_no FROM recon_typed r JOIN recon_household h ON h.kk = r.kk
WHERE r.ok ORDER BY h.batch_no, r.line
"""
_SOURCE = f"'{events.SOURCE}'"


def _outbox(changes: str) -> str:
    """Tail of a statement: outbox rows for the CTE ``changes`` (topic, id, type, data)."""
    return f"""
, ev AS (
    INSERT INTO outbox_event (event_id, topic, key, event_type, envelope)
    SELECT e.event_id, e.topic, e.key, e.type, jsonb_build_object(
        'id', e.event_id, 'source', {_SOURCE}, 'type', e.type, 'specversion', '1.0',
        'time', to_char(statement_timestamp() AT TIME ZONE 'UTC',
                        'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'subject', e.key, 'datacontenttype', 'application/json', 'traceparent', $1::text,
        'data', e.data)
    FROM (SELECT gen_random_uuid()::text AS event_id, c.topic, c.id::text AS key, c.type, c.data
          FROM {changes} c) e
    RETURNING event_type
)
SELECT event_type, count(*)::int AS n FROM ev GROUP BY event_type
"""


def _household_data(alias: str) -> str:
    columns: tuple[str, ...] = ("village_code", "decile", "house_fit", "floor", "wall", "roof")
    columns += ("water",)
    columns += ("sanitation", "electricity", "status", "version")
    pairs = ", ".join(f"'{c}', {alias}.{c}" for c in columns)
    return f"jsonb_build_object('household_id', {alias}.id, {pairs})"


def _person_data(alias: str) -> str:
    columns: tuple[str, ...] = ("household_id", "village_code", "birth_date", "sex", "status")
    columns += ("relationship",)
    columns += ("disability", "version")
    pairs = ", ".join(f"'{c}', {alias}.{c}" for c in columns)
    return f"jsonb_build_object('person_id', {alias}.id, {pairs})"


LOCK_HOUSEHOLDS = """
SELECT 1 FROM household h JOIN recon_household r ON r.kk = h.kk
WHERE r.batch_no = $1 ORDER BY h.id FOR UPDATE OF h
"""
_HOUSEHOLD_DIFF = " ".join(
    f"CASE WHEN h.{c} IS DISTINCT FROM r.{c} THEN '{c}' END," for c in HOUSEHOLD_COLUMNS
).rstrip(",")
HOUSEHOLD_PLAN = f"""
CREATE TEMP TABLE recon_household_plan ON COMMIT DROP AS
SELECT coalesce(h.id, gen_random_uuid()) AS id, h.id IS NULL AS is_new, r.kk,
       {", ".join(f"r.{c}" for c in HOUSEHOLD_COLUMNS)}, h.decile AS old_decile,
       CASE WHEN h.id IS NULL THEN ARRAY[]::text[]
            ELSE array_remove(ARRAY[{_HOUSEHOLD_DIFF}], NULL) END AS changed
FROM recon_household r LEFT JOIN household h ON h.kk = r.kk
WHERE r.batch_no = $1
"""
INSERT_HOUSEHOLDS = f"""
WITH ins AS (
    INSERT INTO household (id, kk, {", ".join(HOUSEHOLD_COLUMNS)})
    SELECT id, kk, {", ".join(HOUSEHOLD_COLUMNS)} FROM recon_household_plan WHERE is_new
    RETURNING *
), changes AS (
    SELECT '{events.HOUSEHOLD_TOPIC}' AS topic, i.id, '{events.HOUSEHOLD_REGISTERED}' AS type,
           {_household_data("i")} AS data
    FROM ins i
)
{_outbox("changes")}
"""
# A decile change is its own event (with previous_decile); other changed facts are one
# household.updated beside it, both carrying the same row version (as the change API does).
UPDATE_HOUSEHOLDS = f"""
WITH upd AS (
    UPDATE household h SET {", ".join(f"{c} = p.{c}" for c in HOUSEHOLD_COLUMNS)}
    FROM recon_household_plan p
    WHERE h.id = p.id AND NOT p.is_new AND cardinality(p.changed) > 0
    RETURNING h.*, p.old_decile, p.changed
), changes AS (
    SELECT '{events.HOUSEHOLD_TOPIC}' AS topic, u.id, '{events.HOUSEHOLD_DECILE_CHANGED}' AS type,
           {_household_data("u")} || jsonb_build_object('previous_decile', u.old_decile) AS data
    FROM upd u WHERE 'decile' = ANY(u.changed)
    UNION ALL
    SELECT '{events.HOUSEHOLD_TOPIC}', u.id, '{events.HOUSEHOLD_UPDATED}',
           {_household_data("u")}
           || jsonb_build_object('changed', to_jsonb(array_remove(u.changed, 'decile')))
    FROM upd u WHERE cardinality(array_remove(u.changed, 'decile')) > 0
)
{_outbox("changes")}
"""
LOCK_PERSONS = """
SELECT 1 FROM person p JOIN recon_work_row r ON r.nik = p.nik
WHERE r.batch_no = $1 ORDER BY p.id FOR UPDATE OF p
"""
LOCK_MEMBERS = """
SELECT 1 FROM person p JOIN recon_household_plan hp ON p.household_id = hp.id
WHERE p.status = 'alive' ORDER BY p.id FOR UPDATE OF p
"""
_PERSON_DIFF = " ".join(
    f"CASE WHEN p.{c} IS DISTINCT FROM s.{c} THEN '{c}' END," for c in PERSON_FIELDS
).rstrip(",")
# The plan: every person of the batch with new and old values, what changed and which event.
# Rows of the file, plus (snapshot) living members of the batch's households whose NIK is
# nowhere in the file: they are moved out of the card (status moved, no household).
PERSON_PLAN = f"""
CREATE TEMP TABLE recon_person_plan ON COMMIT DROP AS
WITH wanted AS (
    SELECT r.line, r.nik, hp.id AS household_id, r.village_code, r.full_name, r.birth_date,
           r.sex, r.relationship, r.status, r.death_date, r.disability, r.education,
           r.occupation, hp.is_new OR cardinality(hp.changed) > 0 AS household_changed,
           false AS missing
    FROM recon_work_row r JOIN recon_household_plan hp ON hp.kk = r.kk
    WHERE r.batch_no = $2
    UNION ALL
    SELECT NULL, p.nik, NULL, p.village_code, p.full_name, p.birth_date, p.sex, p.relationship,
           'moved', p.death_date, p.disability, p.education, p.occupation, false, true
    FROM person p JOIN recon_household_plan hp ON p.household_id = hp.id
    WHERE $1 AND NOT hp.is_new AND p.status = 'alive'
      AND NOT EXISTS (SELECT 1 FROM recon_row r WHERE r.nik = p.nik)
), diff AS (
    SELECT s.*, coalesce(p.id, gen_random_uuid()) AS id, p.id IS NULL AS is_new,
           p.village_code AS old_village_code, p.household_id AS old_household_id,
           p.status AS old_status,
           CASE WHEN p.id IS NULL THEN ARRAY[]::text[]
                ELSE array_remove(ARRAY[{_PERSON_DIFF}], NULL) END AS changed
    FROM wanted s LEFT JOIN person p ON p.nik = s.nik
)
SELECT d.*,
       CASE
           WHEN d.is_new THEN '{events.PERSON_REGISTERED}'
           WHEN cardinality(d.changed) = 0 THEN NULL
           WHEN d.status = 'deceased' AND d.old_status <> 'deceased' THEN '{events.PERSON_DIED}'
           WHEN (d.status = 'moved' AND d.old_status <> 'moved')
                OR d.changed && ARRAY['village_code', 'household_id'] THEN '{events.PERSON_MOVED}'
           ELSE '{events.PERSON_UPDATED}'
       END AS kind,
       d.relationship = 'head' AND d.status = 'alive' AS head_alive,
       false AS applied
FROM diff d
"""
_PERSON_PAYLOAD = f"""
{_person_data("u")} || CASE u.kind
    WHEN '{events.PERSON_DIED}' THEN
        jsonb_build_object('death_date', u.death_date, 'source', 'bps_reconciliation')
    WHEN '{events.PERSON_MOVED}' THEN
        jsonb_build_object('from_village_code', u.old_village_code,
                           'from_household_id', u.old_household_id)
    ELSE jsonb_build_object('changed', to_jsonb(u.changed))
END
"""


def _update_persons(condition: str) -> str:
    """Apply the plan's changed, not yet applied people that meet ``condition``."""
    assignments = ", ".join(f"{c} = x.{c}" for c in PERSON_FIELDS)
    return f"""
WITH upd AS (
    UPDATE person p SET {assignments}
    FROM recon_person_plan x
    WHERE p.id = x.id AND NOT x.is_new AND x.kind IS NOT NULL AND NOT x.applied
      AND ({condition})
    RETURNING p.*, x.kind, x.changed, x.old_village_code, x.old_household_id
), mark AS (
    UPDATE recon_person_plan x SET applied = true FROM upd WHERE x.id = upd.id
), changes AS (
    SELECT '{events.PERSON_TOPIC}' AS topic, u.id, u.kind AS type, {_PERSON_PAYLOAD} AS data
    FROM upd u
)
{_outbox("changes")}
"""


# One living head per KK is a unique index checked row by row, so people who stop being a living
# head are updated first, then new heads in rounds: a head whose card is still held by a leaving
# head waits for the round after that head has left.
UPDATE_LEAVERS = _update_persons("NOT x.head_alive")
UPDATE_HEADS = _update_persons(
    "x.head_alive AND NOT EXISTS (SELECT 1 FROM person o WHERE o.household_id = x.household_id "
    "AND o.relationship = 'head' AND o.status = 'alive' AND o.id <> x.id)"
)
PENDING_PERSONS = """
SELECT count(*) FROM recon_person_plan WHERE NOT is_new AND kind IS NOT NULL AND NOT applied
"""
INSERT_PERSONS = f"""
WITH ins AS (
    INSERT INTO person (id, nik, {", ".join(PERSON_FIELDS)})
    SELECT id, nik, {", ".join(PERSON_FIELDS)} FROM recon_person_plan WHERE is_new
    RETURNING *
), changes AS (
    SELECT '{events.PERSON_TOPIC}' AS topic, i.id, '{events.PERSON_REGISTERED}' AS type,
           {_person_data("i")} AS data
    FROM ins i
)
{_outbox("changes")}
"""
BATCH_COUNTS = """
SELECT count(*) FILTER (WHERE NOT missing)::int AS rows,
       count(*) FILTER (WHERE NOT missing AND (kind IS NOT NULL OR household_changed))::int
           AS changed,
       count(*) FILTER (WHERE missing AND kind IS NOT NULL)::int AS moved_out
FROM recon_person_plan
"""
SAVE_PROGRESS = """
UPDATE import_batch SET changed_rows = $2, unchanged_rows = $3, moved_out = $4,
       events_emitted = $5, event_counts = $6::jsonb, modified_at = now()
WHERE id = $1
"""
FAIL_BATCH = """
WITH failed AS (
    INSERT INTO import_error (batch_id, line, field, reason)
    SELECT $1, r.line, '', $3 FROM recon_work_row r WHERE r.batch_no = $2
    RETURNING 1
)
UPDATE import_batch SET batches_failed = batches_failed + 1, modified_at = now()
WHERE id = $1
RETURNING (SELECT count(*) FROM failed)::int AS rows
"""
