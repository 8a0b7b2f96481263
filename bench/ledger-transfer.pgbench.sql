-- The database work of one payment, as payment-service sends it (app/src/payment-service/
-- store.ts), for pgbench -M extended (parameters bound like node-postgres does): the
-- idempotency lookup, the wallet read of validation, then the transfer, one call of the
-- ledger's transfer_funds function (app/migrations/005_transfer_funds.sql: claim the key,
-- lock both wallets in user_id order, debit, credit, two ledger entries, mark completed
-- with the stored answer, the outbox event, in one transaction).
-- Needs -D nwallets=<n>; wallets are bench_1 … bench_<n>.
\set s random(1, :nwallets)
\set r 1 + (:s + random(0, :nwallets - 2)) % :nwallets
\set amount random(100, 4999)
\set key :client_id * 1000000000000 + random(1, 999999999999)
SELECT id, request_hash, status, response_status, response_body,
       created_at < now() - make_interval(secs => 86400) AS expired
  FROM transactions WHERE sender_id = 'bench_' || :s AND idempotency_key = 'pgbench-' || :key;
SELECT w.user_id, w.balance, w.customer_tier, w.country, p.segment, p.kyc_level,
       floor(extract(epoch FROM now() - p.customer_since) / 86400)::int AS tenure_days
  FROM wallets w LEFT JOIN user_profiles p ON p.user_id = w.user_id
 WHERE w.currency = 'USD' AND w.user_id = ANY(ARRAY['bench_' || :s, 'bench_' || :r]);
SELECT transfer_funds(
  md5(:key::text)::uuid, 'pgbench-' || :key, 'a3f1c2d4e5b6978812345678909abcdefa3f1c2d4e5b6978812345678909abcd',
  'bench_' || :s, 'bench_' || :r, :amount, 'USD', 'wallet',
  201,
  json_build_object('transaction_id', md5(:key::text)::uuid, 'status', 'completed', 'amount', :amount::bigint,
                    'currency', 'USD', 'sender_id', 'bench_' || :s, 'receiver_id', 'bench_' || :r)::jsonb,
  'payment.completed',
  json_build_object('transaction_id', md5(:key::text)::uuid, 'sender_id', 'bench_' || :s,
                    'receiver_id', 'bench_' || :r, 'amount', :amount::bigint, 'currency', 'USD')::jsonb) AS result;
