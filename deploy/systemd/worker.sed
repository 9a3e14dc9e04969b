# stockade-worker.service, a cluster's worker (docs/cluster.md), is stockade.service with these changes
# (`make install` applies them), so both keep one set of box-safe hardening. Its settings are
# /etc/stockade/worker.env: STOCKADE_DATABASE_URL, STOCKADE_REDIS_URL and STOCKADE_NODE_ID at least.
# Its own run dir and slot uids let it share a host with `stockade serve`.
1,4c\
# A Stockade cluster's worker on a Debian 12 host: `make install` writes this unit from stockade.service\
# (deploy/systemd/worker.sed), then: systemctl enable --now stockade-worker\
# Settings: /etc/stockade/worker.env (STOCKADE_DATABASE_URL, STOCKADE_REDIS_URL, STOCKADE_NODE_ID, ... as\
# `stockade worker --help` lists them). docs/deploy.md says what each choice below keeps.
s|^Description=.*|Description=Stockade worker: runs a cluster's queued jobs|
s|^Documentation=\(.*\)/deploy.md$|Documentation=\1/cluster.md|
s|^ExecStart=\(.*\) serve$|ExecStart=\1 worker|
s|^Environment=.*|Environment=STOCKADE_DATA_DIR=/var/lib/stockade STOCKADE_RUN_DIR=/run/stockade-worker STOCKADE_UID_BASE=61000|
s|^EnvironmentFile=.*|EnvironmentFile=-/etc/stockade/worker.env|
s|^RuntimeDirectory=stockade$|RuntimeDirectory=stockade-worker|
s|/run/stockade holds|/run/stockade-worker holds|
