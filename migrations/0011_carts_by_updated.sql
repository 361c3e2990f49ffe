-- migrate: no-transaction
-- Operators list every shopper's carts, most recently changed first (GET /v1/admin/carts without
-- a status): without an index leading with updated_at that read and sorted the whole table.
-- Built concurrently, as carts is large and written by every cart edit and webhook. IF NOT
-- EXISTS: a run that built it but stopped before recording it finds it made (one left INVALID
-- by a failed build is reported by the runner, to be dropped first).
CREATE INDEX CONCURRENTLY IF NOT EXISTS carts_by_updated ON carts (updated_at DESC, id);
