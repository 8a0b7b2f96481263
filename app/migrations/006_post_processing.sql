-- Post-processing: the relay publishes outbox events to RabbitMQ, consumers write receipts
-- and the sender's fraud history.
--
-- The outbox row keeps the trace context of the payment that wrote it (dd-trace's text-map
-- carrier, injected inside payment.processing), so the relay and the consumers continue the
-- payment's trace. transfer_funds takes it as a last argument from
-- 009_transfer_funds_per_sender_with_trace.sql on.
ALTER TABLE outbox ADD COLUMN trace_context JSONB;

-- Pruning published rows past the retention window scans by publication time.
CREATE INDEX outbox_published_idx ON outbox (published_at) WHERE published_at IS NOT NULL;

-- One receipt per party of a completed payment. The unique key makes a replayed event a no-op.
CREATE TABLE receipts (
  id              BIGSERIAL   PRIMARY KEY,
  event_id        BIGINT      NOT NULL,
  transaction_id  UUID        NOT NULL,
  role            TEXT        NOT NULL CHECK (role IN ('sender', 'receiver')),
  user_id         TEXT        NOT NULL,
  counterparty_id TEXT        NOT NULL,
  amount          BIGINT      NOT NULL CHECK (amount > 0),
  currency        CHAR(3)     NOT NULL,
  completed_at    TIMESTAMPTZ NOT NULL,
  issued_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
  UNIQUE (transaction_id, role)
);

CREATE INDEX receipts_user_idx ON receipts (user_id, completed_at);
