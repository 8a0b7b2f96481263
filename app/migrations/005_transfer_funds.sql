-- The transfer of one payment as a single statement, so payment-service moves the money in
-- one round trip instead of BEGIN, six statements and COMMIT. As one statement it is one
-- transaction: any error rolls all of it back.
--
--   1. claim the Idempotency-Key (pending row); a concurrent request holding the key makes
--      the insert wait for it, then insert nothing: 'conflict', nothing changed;
--   2. lock both wallets, always in user_id order, so two opposite transfers cannot deadlock;
--   3. check the sender's balance under the lock (SQLSTATE 23514, like the CHECK backstop);
--   4. debit, credit, the two ledger entries;
--   5. mark the transaction completed with the answer a retry will get;
--   6. the outbox event, in the same transaction: a completed payment always has its event.
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
  p_event_payload       JSONB
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

  INSERT INTO outbox (aggregate_id, event_type, payload) VALUES (p_id, p_event_type, p_event_payload);
  RETURN 'completed';
END;
$$;
