-- Events for other systems (receipts, notifications), published by a relay that reads
-- unpublished rows in id order.
CREATE TABLE outbox (
  id           BIGSERIAL   PRIMARY KEY,
  aggregate_id UUID        NOT NULL,
  event_type   TEXT        NOT NULL,
  payload      JSONB       NOT NULL,
  created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
  published_at TIMESTAMPTZ,
  UNIQUE (aggregate_id, event_type)
);

CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;
