"""The HTTP service: Stockade's API over the engine, with the tenants, limits and records around it.

- app.py: create_app, composing the middleware, the routers, the exception handlers and the lifespan
- body_limit.py: BodyLimit, the outermost middleware, refusing oversized bodies before they are read
- admission.py: execution places (slots + queue) and Admission, the middleware that claims them
- node.py: Service, one node's long-lived state and the pipeline steps that use it (auth, rate
  limit, quota, shedding, admission, the record of an execution)
- routes/: one APIRouter module per API surface (/v1, the unversioned paths, the playground)
- wire.py: the wire models of the HTTP contract, and the translation from and to the engine's types
- compat/: the wire forms of other APIs (Judge0 CE, Piston v2) over wire.py's, for their routes
  (Judge0's request side in judge0.py, its records in judge0_records.py)
- submissions.py: asynchronous submissions: their records and the runner of the queued ones
- plans.py: an execution body's engine plan, the step before every run (a worker's too)
- queue.py: a cluster's job queue, one Redis stream and its consumer group (docs/cluster.md)
- worker.py: a cluster's execution role, running the queue's jobs through the runner's path
- cluster.py: an API node's side of that queue: submissions queued, awaited, the queue's figures
- webhooks.py: a finished submission POSTed to its callback_url: SSRF-checked, signed, retried
- errors.py: ApiError, every refusal's one JSON shape and fixed HTTP status
- config.py: ServiceConfig, every setting of a node with its default
- db.py: the store's database, SQLite (embedded) or PostgreSQL (a cluster): connections, transactions
- store.py: the store of tenants, API keys and daily quota usage
- schema.py: that database's tables, one migration per schema version
- tenants.py: what the store holds, as values (tenants and their limit ceilings, keys, quota state)
- quota.py: holds on the daily quota for executions not yet recorded
- ratelimit.py: per-tenant moving-window rate limit, in memory or shared in a cluster's Redis
- audit.py: the signed, hash-chained audit log
- audit_check.py: how that log is judged: each row against its hash and signature, problems named
- problems.py: judge mode's stored problems (POST /v1/problems), per tenant, in a SQLite file of their own
- trail.py: the audit trail read without writing anything, for `stockade audit verify|head|export`
- journal.py: every admitted run, journaled before its first box and recorded exactly once (interrupted
  if it ends without a result: a restart, the drain's deadline), and the drain's work on the runs
- connections.py: serve's connection guard (header and body read timeouts, a connection cap that
  answers 503 and evicts idle connections, accept() errors counted, not logged per attempt)
- storage.py: whether the data dir can take records now (free space, a probe write), for admission
- workspaces.py: a tenant's files kept across executions (quota, idle expiry, the lease that keeps two
  executions on one workspace apart, the write-back of a run's files); workspace_fs.py: their host files,
  walked by directory fd without following anything
- telemetry.py: Prometheus metrics, JSON logs, the recent failures of /v1/diagnostics
- static/: the browser playground
"""
