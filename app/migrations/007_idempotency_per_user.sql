-- Idempotency keys belong to the user who sent them (the sender, bound to the access token)
-- and live for a window (IDEMPOTENCY_WINDOW_SECONDS, 24 h by default). Before, one key was
-- global and forever: another caller could take a victim's key first (its payment then
-- answered 422) and probe whether a key existed.
--
-- A key past its window is released: set to NULL on its transaction, which stays in the
-- ledger. payment-service releases an expired key when it is used again, and prunes
-- expired keys in small batches (SKIP LOCKED), so no long lock is ever held. Both through
-- functions that run as their owner, like transfer_funds (006_runtime_role_grants.sql):
-- the runtime role still has no UPDATE on transactions.
ALTER TABLE transactions ALTER COLUMN idempotency_key DROP NOT NULL;
ALTER TABLE transactions DROP CONSTRAINT transactions_idempotency_key_unique;
ALTER TABLE transactions
  ADD CONSTRAINT transactions_sender_idempotency_key_unique UNIQUE (sender_id, idempotency_key);

-- What the pruning walks: keys still held, oldest first.
CREATE INDEX transactions_held_keys_created_idx ON transactions (created_at) WHERE idempotency_key IS NOT NULL;

-- The key of one transaction older than the window; 1 if released.
CREATE FUNCTION release_expired_idempotency_key(p_id UUID, p_window_seconds INTEGER) RETURNS INTEGER
LANGUAGE sql
AS $$
  WITH released AS (
    UPDATE transactions SET idempotency_key = NULL, updated_at = now()
     WHERE id = p_id AND status <> 'pending' AND created_at < now() - make_interval(secs => p_window_seconds)
    RETURNING 1
  )
  SELECT count(*)::int FROM released;
$$;

-- Up to p_batch keys older than the window, oldest first, skipping rows another pruner
-- holds; how many were released.
CREATE FUNCTION prune_expired_idempotency_keys(p_window_seconds INTEGER, p_batch INTEGER) RETURNS INTEGER
LANGUAGE sql
AS $$
  WITH released AS (
    UPDATE transactions SET idempotency_key = NULL, updated_at = now()
     WHERE id IN (SELECT id FROM transactions
                   WHERE idempotency_key IS NOT NULL AND status <> 'pending'
                     AND created_at < now() - make_interval(secs => p_window_seconds)
                   ORDER BY created_at LIMIT p_batch FOR UPDATE SKIP LOCKED)
    RETURNING 1
  )
  SELECT count(*)::int FROM released;
$$;

DO $$
DECLARE
  runtime_role TEXT := nullif(current_setting('payments.runtime_role', true), '');
  fn REGPROCEDURE;
BEGIN
  FOR fn IN
    SELECT p.oid::regprocedure FROM pg_proc p
     WHERE p.proname IN ('transfer_funds', 'release_expired_idempotency_key', 'prune_expired_idempotency_keys')
       AND p.pronamespace = current_schema()::regnamespace
  LOOP
    EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = %I, pg_temp', fn, current_schema());
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', fn);
    IF runtime_role IS NOT NULL THEN
      EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', fn, runtime_role);
    END IF;
  END LOOP;
END;
$$;
