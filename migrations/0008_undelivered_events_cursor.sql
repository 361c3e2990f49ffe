-- Where the scheduled job's walk through the events Stripe could not deliver stands between runs
-- (worker/src/lost-events.ts). Each run reads a few pages, newest first; without this, every run
-- started again from the newest and never reached a backlog older than those pages. No row: the
-- next run starts from the newest.
CREATE TABLE undelivered_events_cursor (
  one boolean PRIMARY KEY DEFAULT true CHECK (one),
  -- The last event a run read: the next one lists those older than it (`starting_after`).
  starting_after text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
