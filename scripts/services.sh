# Start and stop the PostgreSQL and Redis servers the tests use, on loopback only.
# Source it, then call start_services / stop_services. Exports the URLs the tests read:
#   CONNECTWISE_TEST_POSTGRES_URL, CONNECTWISE_TEST_REDIS_URL

REDIS_PORT="${CONNECTWISE_TEST_REDIS_PORT:-6391}"
PG_VERSION="$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1)"
_started_pg=0
_started_redis=0

start_services() {
    if [ -n "$PG_VERSION" ]; then
        if ! pg_lsclusters -h 2>/dev/null | awk '{print $4}' | grep -q online; then
            if ! pg_lsclusters -h 2>/dev/null | grep -q .; then
                pg_createcluster "$PG_VERSION" main >/dev/null
            fi
            pg_ctlcluster "$PG_VERSION" main start
            _started_pg=1
        fi
        su postgres -c "psql -q -v ON_ERROR_STOP=1" <<'SQL' >/dev/null
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cwtest') THEN
    CREATE ROLE cwtest LOGIN PASSWORD 'cwtest' CREATEDB;
  END IF;
END $$;
GRANT pg_signal_backend TO cwtest;
SQL
        export CONNECTWISE_TEST_POSTGRES_URL="postgresql+psycopg2://cwtest:cwtest@127.0.0.1:5432/postgres"
        echo "PostgreSQL $PG_VERSION on 127.0.0.1:5432"
    fi
    if command -v redis-server >/dev/null 2>&1; then
        if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
            redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
                --daemonize yes --logfile /tmp/connectwise-test-redis.log
            _started_redis=1
            for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
        fi
        export CONNECTWISE_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
        echo "Redis on 127.0.0.1:$REDIS_PORT"
    fi
}

stop_services() {
    if [ "$_started_redis" = 1 ]; then redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true; fi
    if [ "$_started_pg" = 1 ]; then pg_ctlcluster "$PG_VERSION" main stop || true; fi
}
