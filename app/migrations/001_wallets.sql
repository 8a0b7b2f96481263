-- One balance per user and currency, in integer minor units (cents, pence, yen).
CREATE TABLE wallets (
  user_id       TEXT        NOT NULL,
  currency      CHAR(3)     NOT NULL,
  balance       BIGINT      NOT NULL DEFAULT 0 CONSTRAINT wallets_balance_non_negative CHECK (balance >= 0),
  customer_tier TEXT        NOT NULL DEFAULT 'standard'
                            CHECK (customer_tier IN ('standard', 'premium', 'enterprise')),
  country       CHAR(2)     NOT NULL,
  created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, currency)
);
