-- The database work of one payment, as payment-service sends it (app/src/payment-service/
-- store.ts), for pgbench -M extended (parameters bound like node-postgres does):
-- the idempotency lookup, the wallet read of validation, then transfer_funds in one
-- transaction (claim the key, lock both wallets in user_id order, debit, credit, two
-- ledger entries, mark completed with the stored answer), then the outbox event.
-- Needs -D nwallets=<n>; wallets are bench_1 … bench_<n>.
\set s random(1, :nwallets)
\set r 1 + (:s + random(0, :nwallets - 2)) % :nwallets
\set amount random(100, 4999)
\set key :client_id * 1000000000000 + random(1, 999999999999)
SELECT id, request_hash, status, response_status, response_body
  FROM transactions WHERE idempotency_key = 'pgbench-' || :key;
SELECT user_id, balance, customer_tier, country
  FROM wallets WHERE currency = 'USD' AND user_id = ANY(ARRAY['bench_' || :s, 'bench_' || :r]);
BEGIN;
INSERT INTO transactions (id, idempotency_key, request_hash, sender_id, receiver_id, amount, currency,
                          payment_method_type, status)
VALUES (md5(:key::text)::uuid, 'pgbench-' || :key, 'a3f1c2d4e5b6978812345678909abcdefa3f1c2d4e5b6978812345678909abcd',
        'bench_' || :s, 'bench_' || :r, :amount, 'USD', 'wallet', 'pending')
ON CONFLICT (idempotency_key) DO NOTHING;
SELECT user_id, balance FROM wallets
 WHERE currency = 'USD' AND user_id = ANY(ARRAY['bench_' || :s, 'bench_' || :r])
 ORDER BY user_id
   FOR UPDATE;
UPDATE wallets SET balance = balance - :amount, updated_at = now() WHERE user_id = 'bench_' || :s AND currency = 'USD';
UPDATE wallets SET balance = balance + :amount, updated_at = now() WHERE user_id = 'bench_' || :r AND currency = 'USD';
INSERT INTO ledger_entries (transaction_id, user_id, currency, direction, amount)
VALUES (md5(:key::text)::uuid, 'bench_' || :s, 'USD', 'debit', :amount),
       (md5(:key::text)::uuid, 'bench_' || :r, 'USD', 'credit', :amount);
UPDATE transactions
   SET status = 'completed', response_status = 201,
       response_body = json_build_object('transaction_id', md5(:key::text)::uuid, 'status', 'completed',
                                         'amount', :amount::bigint, 'currency', 'USD',
                                         'sender_id', 'bench_' || :s, 'receiver_id', 'bench_' || :r)::jsonb,
       completed_at = now(), updated_at = now()
 WHERE id = md5(:key::text)::uuid;
COMMIT;
INSERT INTO outbox (aggregate_id, event_type, payload)
VALUES (md5(:key::text)::uuid, 'payment.completed',
        json_build_object('transaction_id', md5(:key::text)::uuid, 'sender_id', 'bench_' || :s,
                          'receiver_id', 'bench_' || :r, 'amount', :amount::bigint, 'currency', 'USD')::jsonb)
ON CONFLICT (aggregate_id, event_type) DO NOTHING;
