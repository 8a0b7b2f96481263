-- Least privilege for the post-processing workers. The outbox relay and the consumers connect
-- as their own role (payments-apm:database.workerUser), named by the migrate entry in the
-- session setting payments.worker_role (LEDGER_WORKER_ROLE), like the runtime role in
-- 006_runtime_role_grants.sql. The worker role gets only the statements the workers issue:
--   outbox:   SELECT (claim unpublished events, FOR UPDATE SKIP LOCKED, and find a sender's
--             first gap), UPDATE of published_at only (mark published; also what FOR UPDATE
--             requires), DELETE (prune published rows past the retention window);
--   receipts: INSERT, SELECT of its unique key's columns (ON CONFLICT (transaction_id, role)
--             DO NOTHING reads them), USAGE of its id sequence.
-- Nothing on wallets, transactions, ledger_entries, user_profiles or schema_migrations, no
-- function: a worker cannot move money, read a balance or rewrite an event. The runtime role
-- (payment-service) keeps nothing on outbox or receipts: it writes events only through
-- transfer_funds. Safe to run again: every privilege is revoked, then granted. Without a
-- worker role (local development, where the migrating role also runs the workers) nothing is
-- granted.
DO $$
DECLARE
  worker_role  TEXT := nullif(current_setting('payments.worker_role', true), '');
  runtime_role TEXT := nullif(current_setting('payments.runtime_role', true), '');
BEGIN
  IF runtime_role IS NOT NULL THEN
    EXECUTE format('REVOKE ALL ON outbox, receipts FROM %I', runtime_role);
    EXECUTE format('REVOKE ALL ON SEQUENCE outbox_id_seq, receipts_id_seq FROM %I', runtime_role);
  END IF;

  IF worker_role IS NULL THEN
    RAISE NOTICE 'payments.worker_role is not set: no worker role granted (the migrating role runs the relay and the consumers)';
    RETURN;
  END IF;
  IF worker_role = current_user THEN
    RAISE EXCEPTION 'the worker role % must not be the migrating role: the workers must not own the ledger', worker_role;
  END IF;
  IF worker_role = runtime_role THEN
    RAISE EXCEPTION 'the worker role % must not be the runtime role: payment-service must not claim, rewrite or delete events', worker_role;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = worker_role) THEN
    RAISE EXCEPTION 'the worker role % does not exist: create it (CREATE ROLE % LOGIN PASSWORD ...) before migrating', worker_role, worker_role;
  END IF;

  EXECUTE format('REVOKE ALL ON wallets, transactions, ledger_entries, outbox, receipts, user_profiles, schema_migrations FROM %I', worker_role);
  EXECUTE format('REVOKE ALL ON SEQUENCE ledger_entries_id_seq, outbox_id_seq, receipts_id_seq FROM %I', worker_role);
  EXECUTE format('GRANT SELECT, DELETE ON outbox TO %I', worker_role);
  EXECUTE format('GRANT UPDATE (published_at) ON outbox TO %I', worker_role);
  EXECUTE format('GRANT INSERT ON receipts TO %I', worker_role);
  EXECUTE format('GRANT SELECT (transaction_id, role) ON receipts TO %I', worker_role);
  EXECUTE format('GRANT USAGE ON SEQUENCE receipts_id_seq TO %I', worker_role);
END;
$$;
