#!/bin/bash
# A streaming replica of postgres-primary: clones it with pg_basebackup on first start.
set -euo pipefail
if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
    until pg_isready -h postgres-primary -U replicator; do sleep 1; done
    pg_basebackup -h postgres-primary -U replicator -D "$PGDATA" -R -X stream
    chmod 700 "$PGDATA"
fi
exec postgres -c hot_standby=on
