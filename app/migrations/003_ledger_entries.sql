-- Double entry: every completed transaction has exactly one debit and one credit of the
-- same amount, so the sum over all entries of (credit - debit) per currency is zero.
CREATE TABLE ledger_entries (
  id             BIGSERIAL   PRIMARY KEY,
  transaction_id UUID        NOT NULL REFERENCES transactions (id),
  user_id        TEXT        NOT NULL,
  currency       CHAR(3)     NOT NULL,
  direction      TEXT        NOT NULL CHECK (direction IN ('debit', 'credit')),
  amount         BIGINT      NOT NULL CHECK (amount > 0),
  created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
  UNIQUE (transaction_id, direction),
  FOREIGN KEY (user_id, currency) REFERENCES wallets (user_id, currency)
);

CREATE INDEX ledger_entries_wallet_idx ON ledger_entries (user_id, currency);
