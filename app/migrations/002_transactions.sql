-- One row per client request (Idempotency-Key). The stored response is what a retry with
-- the same key gets back; request_hash tells a retry from a different request reusing a key.
CREATE TABLE transactions (
  id                  UUID        PRIMARY KEY,
  idempotency_key     TEXT        NOT NULL CONSTRAINT transactions_idempotency_key_unique UNIQUE,
  request_hash        TEXT        NOT NULL,
  sender_id           TEXT        NOT NULL,
  receiver_id         TEXT        NOT NULL,
  amount              BIGINT      NOT NULL CHECK (amount > 0),
  currency            CHAR(3)     NOT NULL,
  payment_method_type TEXT        NOT NULL,
  status              TEXT        NOT NULL CHECK (status IN ('pending', 'completed', 'declined')),
  failure_reason      TEXT,
  response_status     INTEGER,
  response_body       JSONB,
  created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
  completed_at        TIMESTAMPTZ,
  CHECK (status = 'pending' OR response_status IS NOT NULL),
  CHECK (status <> 'declined' OR failure_reason IS NOT NULL)
);

CREATE INDEX transactions_sender_created_idx ON transactions (sender_id, created_at);
