"""BPS reconciliation: apply a DTSEN snapshot or delta file to the registry, in bulk.

RECONCILIATION.md beside the service describes the file format and the semantics; this package is
the pipeline behind ``python -m registry import`` and ``POST /v1/imports``:

1. **Stage.** The file goes as text into an unlogged table with PostgreSQL's own CSV parser
   (``COPY ... FROM STDIN (FORMAT csv)``, no Python per row). A file COPY refuses (a row with
   the wrong number of fields, a blank line, text that is not UTF-8) or whose records are not
   one per physical line (a quoted line break) is staged again through Python's csv module,
   which numbers the physical lines and flags such rows.
2. **Validate, set-based.** One statement judges every row (``validation.judge_sql``, which
   PostgreSQL may run with parallel workers, hence the unlogged table): the NIK and KK rules of
   :mod:`registry.nik` (the KK issue dates it accepts are computed from
   :func:`registry.nik.kk_problems` itself), the village and district codes against the region
   table, dates, enumerations, lengths. The same statement joins the registry and marks which
   rows differ from it. Rows it refuses are judged again with every field trimmed; those still
   refused are explained by ``validation.explain_row`` with the words of :mod:`registry.nik`
   and go to ``import_error``. Tests compare the SQL verdicts with :mod:`registry.nik` on the
   same cases. Only the rows of households that differ are then typed in full (``recon_typed``).
3. **Cross-row checks, set-based.** Household columns must be equal on every member row, a NIK
   may appear once per file, a KK has at most one living head, and a household must not end up
   with two living heads in the registry. A household with any bad row is skipped whole: its
   other rows are reported as skipped, so nothing of it is half-applied.
4. **The work, and batches.** The comparison with the registry gives the households
   where anything differs (new card or person, changed value, a member on another card; in a
   snapshot, a member no longer listed): only those are locked and written, the other rows are
   counted unchanged. The work is packed into batches of about ``batch_size`` rows, households
   never split; households linked by a person moving between them share a batch, so a move is
   applied at once on both sides.
5. **Apply, one transaction per batch.** Lock the rows, compute the difference against the
   registry into a plan table, then INSERT/UPDATE set-based. Each data-modifying statement also
   inserts the outbox rows of what it changed (``INSERT INTO outbox_event ... SELECT`` from its
   ``RETURNING`` rows, the CloudEvents envelope built with ``jsonb_build_object``), so an event
   exists exactly when its change committed. The import's counters are updated in the same
   transaction. A batch that fails rolls back whole; its rows are reported with the database's
   reason and the import goes on with the next batch.

Only rows that really differ are written, so importing the same file again changes nothing and
emits nothing. Business code here never commits a caller's session: the pipeline owns one
dedicated asyncpg connection and its transactions (the API only queues the import).

One module per phase: :mod:`.staging` (1), :mod:`.validation` (2, 3), :mod:`.apply` (4, 5),
:mod:`.pipeline` (the driver), :mod:`.service` (what the API and the CLI call), :mod:`.scheduled`
(the job that runs a staged import), :mod:`.errors`.
"""
