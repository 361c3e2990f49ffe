-- The scheduled job reads Stripe's undelivered events in two passes (worker/src/lost-events.ts):
-- the news since the newest event a run has read, paged towards the newest (`ending_before`), and
-- the walk through older ones (`starting_after`). Each keeps its own place, so that news more
-- than one run can read is taken up again where it stopped, not left until the walk comes round.
-- Either may be unset: a run without a news mark reads the newest page, one without a walk
-- position starts the walk from the newest.
ALTER TABLE undelivered_events_cursor
  ALTER COLUMN starting_after DROP NOT NULL,
  ADD COLUMN newest_read text;
