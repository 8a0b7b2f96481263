-- What the ledger knows of a user beyond their wallets, for the payment span's business
-- annotations (business.user_segment, business.kyc_level, business.user_tenure_days).
-- Optional per user: a payment from a user without a profile is made, just not annotated.
CREATE TABLE user_profiles (
  user_id        TEXT        PRIMARY KEY,
  segment        TEXT        NOT NULL CHECK (segment IN ('consumer', 'small_business', 'corporate')),
  kyc_level      TEXT        NOT NULL CHECK (kyc_level IN ('none', 'basic', 'verified', 'enhanced')),
  customer_since TIMESTAMPTZ NOT NULL,
  updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- payment-service reads profiles (with the wallets) and writes none.
DO $$
DECLARE
  runtime_role TEXT := nullif(current_setting('payments.runtime_role', true), '');
BEGIN
  IF runtime_role IS NOT NULL THEN
    EXECUTE format('REVOKE ALL ON user_profiles FROM %I', runtime_role);
    EXECUTE format('GRANT SELECT ON user_profiles TO %I', runtime_role);
  END IF;
END;
$$;
