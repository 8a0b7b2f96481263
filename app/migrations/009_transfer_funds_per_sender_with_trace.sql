-- transfer_funds as the service calls it now: as in 005_transfer_funds.sql, with the key
-- claimed per sender (007_idempotency_per_user.sql) and the payment's trace context stored
-- on its event (006_post_processing.sql).
DROP FUNCTION transfer_funds(UUID, TEXT, TEXT, TEXT, TEXT, BIGINT, CHAR(3), TEXT, INTEGER, JSONB, TEXT, JSONB);

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
  ON CONFLICT (sender_id, idempotency_key) DO NOTHING;
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

-- As in 006_runtime_role_grants.sql: runs as its owner with a fixed search_path; only the
-- runtime role may call it.
DO $$
DECLARE
  runtime_role TEXT := nullif(current_setting('payments.runtime_role', true), '');
  fn REGPROCEDURE;
BEGIN
  FOR fn IN
    SELECT p.oid::regprocedure FROM pg_proc p
     WHERE p.proname = 'transfer_funds' AND p.pronamespace = current_schema()::regnamespace
  LOOP
    EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = %I, pg_temp', fn, current_schema());
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', fn);
    IF runtime_role IS NOT NULL THEN
      EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', fn, runtime_role);
    END IF;
  END LOOP;
END;
$$;
