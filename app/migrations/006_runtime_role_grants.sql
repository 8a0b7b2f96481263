-- Least privilege for the services. The migrations run as the migration role, which owns
-- the ledger's tables; payment-service connects as the runtime role (payments-apm:database.user),
-- named by the migrate entry in the session setting payments.runtime_role (LEDGER_RUNTIME_ROLE).
-- The runtime role gets only the statements the service issues:
--   transactions: SELECT (find by Idempotency-Key), INSERT (a recorded decline);
--   wallets:      SELECT (balances, tier, country);
--   transfer_funds: EXECUTE. The function runs as its owner (SECURITY DEFINER, with a fixed
--   search_path), so moving money needs no UPDATE on wallets nor INSERT on ledger_entries or
--   outbox: the runtime role cannot write a balance or an entry by itself.
-- No DELETE, TRUNCATE, UPDATE, REFERENCES or TRIGGER anywhere; not being the owner, it cannot
-- DROP or ALTER anything. Without a runtime role (local development, where the migrating role
-- also runs the services) nothing is granted.
DO $$
DECLARE
  runtime_role TEXT := nullif(current_setting('payments.runtime_role', true), '');
BEGIN
  -- The function is the one way money moves: nobody but the owner and the roles granted
  -- below may call it, and it resolves table names in this schema only.
  EXECUTE format(
    'ALTER FUNCTION transfer_funds(UUID, TEXT, TEXT, TEXT, TEXT, BIGINT, CHAR(3), TEXT, INTEGER, JSONB, TEXT, JSONB) '
    'SECURITY DEFINER SET search_path = %I, pg_temp', current_schema());
  REVOKE ALL ON FUNCTION transfer_funds(UUID, TEXT, TEXT, TEXT, TEXT, BIGINT, CHAR(3), TEXT, INTEGER, JSONB, TEXT, JSONB) FROM PUBLIC;
  REVOKE ALL ON wallets, transactions, ledger_entries, outbox, schema_migrations FROM PUBLIC;

  IF runtime_role IS NULL THEN
    RAISE NOTICE 'payments.runtime_role is not set: no runtime role granted (the migrating role runs the services)';
    RETURN;
  END IF;
  IF runtime_role = current_user THEN
    RAISE EXCEPTION 'the runtime role % must not be the migrating role: the services must not own the ledger', runtime_role;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = runtime_role) THEN
    RAISE EXCEPTION 'the runtime role % does not exist: create it (CREATE ROLE % LOGIN PASSWORD ...) before migrating', runtime_role, runtime_role;
  END IF;

  EXECUTE format('REVOKE ALL ON wallets, transactions, ledger_entries, outbox, schema_migrations FROM %I', runtime_role);
  EXECUTE format('GRANT SELECT, INSERT ON transactions TO %I', runtime_role);
  EXECUTE format('GRANT SELECT ON wallets TO %I', runtime_role);
  EXECUTE format(
    'GRANT EXECUTE ON FUNCTION transfer_funds(UUID, TEXT, TEXT, TEXT, TEXT, BIGINT, CHAR(3), TEXT, INTEGER, JSONB, TEXT, JSONB) TO %I',
    runtime_role);
END;
$$;
