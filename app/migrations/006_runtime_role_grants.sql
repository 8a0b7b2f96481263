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
  transfer REGPROCEDURE;
BEGIN
  IF runtime_role = current_user THEN
    RAISE EXCEPTION 'the runtime role % must not be the migrating role: the services must not own the ledger', runtime_role;
  END IF;
  IF runtime_role IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = runtime_role) THEN
    RAISE EXCEPTION 'the runtime role % does not exist: create it (CREATE ROLE % LOGIN PASSWORD ...) before migrating', runtime_role, runtime_role;
  END IF;

  -- transfer_funds, whatever its arguments: the one way money moves. Only its owner and the
  -- runtime role may call it, and it resolves table names in this schema only.
  FOR transfer IN
    SELECT p.oid::regprocedure FROM pg_proc p WHERE p.proname = 'transfer_funds' AND p.pronamespace = current_schema()::regnamespace
  LOOP
    EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = %I, pg_temp', transfer, current_schema());
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', transfer);
    IF runtime_role IS NOT NULL THEN
      EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', transfer, runtime_role);
    END IF;
  END LOOP;
  IF transfer IS NULL THEN
    RAISE EXCEPTION 'no transfer_funds function in schema %', current_schema();
  END IF;

  IF runtime_role IS NULL THEN
    RAISE NOTICE 'payments.runtime_role is not set: no runtime role granted (the migrating role runs the services)';
    RETURN;
  END IF;
  EXECUTE format('REVOKE ALL ON wallets, transactions, ledger_entries, outbox, schema_migrations FROM %I', runtime_role);
  EXECUTE format('GRANT SELECT, INSERT ON transactions TO %I', runtime_role);
  EXECUTE format('GRANT SELECT ON wallets TO %I', runtime_role);
END;
$$;
