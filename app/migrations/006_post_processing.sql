-- Post-processing: the relay publishes outbox events to RabbitMQ, consumers write receipts
-- and the sender's fraud history.
--
-- The outbox row keeps the trace context of the payment that wrote it (dd-trace's text-map
-- carrier, injected inside payment.processing), so the relay and the consumers continue the
-- payment's trace. transfer_funds takes it as a last, optional argument: callers of the
-- twelve-argument form keep working and write no context.
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

DROP FUNCTION transfer_funds(UUID, TEXT, TEXT, TEXT, TEXT, BIGINT, CHAR(3), TEXT, INTEGER, JSONB, TEXT, JSONB);

-- As in 005_transfer_funds.sql, with the payment's trace context stored on its event.
CREATE FUNCTION transfer_funds(
  p_id                  UUID,
  p_idempotency_key     TEXT,
  p_request_hash        TEXT,
  p_sender_id           TEXT,
  p_receiver_id         TEXT,
  p_amount              BIGINT,
  p_currency            CHAR(3),
  p_payment_method_type TEXT,
  p_response_status     INTEGER,
  p_response_body       JSONB,
  p_event_type          TEXT,
  p_event_payload       JSONB,
  p_event_trace_context JSONB DEFAULT NULL
) RETURNS TEXT
LANGUAGE plpgsql
AS $$
DECLARE
  claimed INTEGER;
  locked  INTEGER;
  sender_balance BIGINT;
BEGIN
  INSERT INTO transactions (id, idempotency_key, request_hash, sender_id, receiver_id, amount, currency,
                            payment_method_type, status)
  VALUES (p_id, p_idempotency_key, p_request_hash, p_sender_id, p_receiver_id, p_amount, p_currency,
          p_payment_method_type, 'pending')
  ON CONFLICT (idempotency_key) DO NOTHING;
  GET DIAGNOSTICS claimed = ROW_COUNT;
  IF claimed = 0 THEN
    RETURN 'conflict';
  END IF;

  PERFORM 1 FROM wallets
    WHERE currency = p_currency AND user_id IN (p_sender_id, p_receiver_id)
    ORDER BY user_id
      FOR UPDATE;
  GET DIAGNOSTICS locked = ROW_COUNT;
  IF locked <> 2 THEN
    RAISE EXCEPTION 'wallet disappeared during transfer' USING ERRCODE = 'no_data_found';
  END IF;

  SELECT balance INTO sender_balance FROM wallets WHERE user_id = p_sender_id AND currency = p_currency;
  IF sender_balance < p_amount THEN
    RAISE EXCEPTION 'balance too low for this payment' USING ERRCODE = 'check_violation';
  END IF;

  UPDATE wallets SET balance = balance - p_amount, updated_at = now()
   WHERE user_id = p_sender_id AND currency = p_currency;
  UPDATE wallets SET balance = balance + p_amount, updated_at = now()
   WHERE user_id = p_receiver_id AND currency = p_currency;

  INSERT INTO ledger_entries (transaction_id, user_id, currency, direction, amount)
  VALUES (p_id, p_sender_id, p_currency, 'debit', p_amount),
         (p_id, p_receiver_id, p_currency, 'credit', p_amount);

  UPDATE transactions
     SET status = 'completed', response_status = p_response_status, response_body = p_response_body,
         completed_at = now(), updated_at = now()
   WHERE id = p_id;

  INSERT INTO outbox (aggregate_id, event_type, payload, trace_context)
  VALUES (p_id, p_event_type, p_event_payload, p_event_trace_context);
  RETURN 'completed';
END;
$$;
