#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft) broker on loopback, for tests and local runs.
#
# Why this exists: no Docker and no internet here, only Maven Central, so the
# broker is assembled from its Maven jars (see pom.xml beside this file) and
# run as a plain JVM. stop/start keep the data dir, so tests can restart the
# broker and expect nothing lost.
#
# Usage: scripts/kafka/apache-kafka.sh {fetch|start|stop|restart|status|reset|env|logs}
#   start   prints the bootstrap address (only that) on stdout, chatter on stderr
#   env     prints KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:PORT, for `eval`
#
# Environment:
#   SIMPUL_KAFKA_PORT           client port (default 29092); controller = PORT+1
#   SIMPUL_KAFKA_HOME           jar cache (default <repo>/.cache/apache-kafka/<version>)
#   SIMPUL_KAFKA_DATA           config, logs and data (default <repo>/.simpul/apache-kafka)
#   SIMPUL_KAFKA_START_TIMEOUT  seconds to wait for readiness (default 90)
#   SIMPUL_KAFKA_STOP_TIMEOUT   seconds to wait after SIGTERM before SIGKILL (default 30)
#   KAFKA_HEAP_OPTS             default "-Xmx512m -Xms256m"
#   KAFKA_JVM_PERFORMANCE_OPTS  default: the flags Kafka's own launcher uses
#   KAFKA_OPTS                  extra JVM flags
#   JAVA_HOME                   Java 17+; falls back to `java` on PATH
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
POM="$SCRIPT_DIR/pom.xml"

# The pom is the single place the version is pinned.
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM" | head -n1)"
[[ -n "$KAFKA_VERSION" ]] || { echo "apache-kafka: no <kafka.version> in $POM" >&2; exit 1; }

PORT="${SIMPUL_KAFKA_PORT:-29092}"
if ! [[ "$PORT" =~ ^[0-9]+$ ]] || (( PORT < 1 || PORT > 65534 )); then
  echo "apache-kafka: bad SIMPUL_KAFKA_PORT '$PORT'" >&2; exit 1
fi
CONTROLLER_PORT=$((PORT + 1))
HOST=127.0.0.1
BOOTSTRAP="$HOST:$PORT"

KAFKA_HOME="${SIMPUL_KAFKA_HOME:-$REPO_ROOT/.cache/apache-kafka/$KAFKA_VERSION}"
LIBS="$KAFKA_HOME/libs"
FETCH_MARKER="$KAFKA_HOME/.fetch-complete"

DATA="${SIMPUL_KAFKA_DATA:-$REPO_ROOT/.simpul/apache-kafka}"
LOG_DIRS="$DATA/kraft-logs"          # topic data and the KRaft metadata log
LOGS="$DATA/logs"                    # the broker's own log output
PROPS="$DATA/server.properties"
LOG4J="$DATA/log4j2.properties"
PIDFILE="$DATA/kafka.pid"
CLUSTER_ID_FILE="$DATA/cluster.id"
OUT="$LOGS/server.log"

START_TIMEOUT="${SIMPUL_KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${SIMPUL_KAFKA_STOP_TIMEOUT:-30}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"
JVM_PERF_OPTS="${KAFKA_JVM_PERFORMANCE_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true}"
if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then JAVA="$JAVA_HOME/bin/java"; else JAVA=java; fi

# Printed when the broker has caught up on metadata and is unfenced, i.e. it
# serves clients; the open port alone comes earlier than that.
READY_LINE='Kafka Server started'

log() { echo "apache-kafka: $*" >&2; }
die() { log "$*"; exit 1; }

pom_digest() { sha256sum "$POM" | cut -d' ' -f1; }

fetched() { [[ -f "$FETCH_MARKER" && "$(cat "$FETCH_MARKER")" == "$(pom_digest)" && -d "$LIBS" ]]; }

cmd_fetch() {
  if fetched; then return 0; fi
  command -v mvn >/dev/null || die "mvn not found; needed once to fetch Kafka $KAFKA_VERSION"
  mkdir -p "$KAFKA_HOME"
  # Copy into a scratch dir and rename, so an interrupted fetch never looks complete.
  local tmp
  tmp="$(mktemp -d "$KAFKA_HOME/.libs.XXXXXX")"
  log "fetching Kafka $KAFKA_VERSION jars from Maven Central into $LIBS"
  # mvn's own output only matters when it fails (even -q leaves colour codes).
  if ! mvn -B -q -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
        -Dmdep.includeScope=runtime -DoutputDirectory="$tmp" >"$KAFKA_HOME/fetch.log" 2>&1; then
    cat "$KAFKA_HOME/fetch.log" >&2; rm -rf "$tmp"; die "mvn failed to fetch Kafka $KAFKA_VERSION"
  fi
  ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || { rm -rf "$tmp"; die "fetch produced no kafka_2.13 jar"; }
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  pom_digest >"$FETCH_MARKER"
  log "fetched $(find "$LIBS" -name '*.jar' | wc -l) jars"
}

read_pid() { if [[ -f "$PIDFILE" ]]; then tr -dc '0-9' <"$PIDFILE"; fi; }

# Alive and really our broker: guards against a stale pid file whose pid was
# reused, and treats a zombie (exited, not yet reaped) as gone.
is_our_broker() {
  local pid="$1"
  [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
  [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "kafka.Kafka $PROPS"
}

running_pid() {
  local pid; pid="$(read_pid)"
  if is_our_broker "$pid"; then echo "$pid"; return 0; fi
  return 1
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# ---------------------------------------------------------------------------
# Broker settings. docker-compose.yml mirrors this block (KAFKA_* env vars):
# keep the two in step when changing anything here.
# ---------------------------------------------------------------------------
write_server_properties() {
  cat >"$PROPS" <<EOF
# Generated by scripts/kafka/apache-kafka.sh on every start; edit the script, not this file.

# --- KRaft: one JVM is both broker and its own controller quorum of one ---
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
controller.listener.names=CONTROLLER

# --- Listeners: loopback only, nothing reachable from outside the machine ---
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$PORT
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT

# --- Storage: kept across stop/start so restart tests lose nothing ---
log.dirs=$LOG_DIRS

# --- Topics: services rely on auto-creation, with room for 3 consumers ---
auto.create.topics.enable=true
num.partitions=3
default.replication.factor=1
min.insync.replicas=1

# --- Internal topics: a single node can only hold one replica ---
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# --- Fast tests: the default 50 partitions per internal topic make the first
# group join / transaction / share group slow; skip the 3 s wait before the
# first rebalance ---
offsets.topic.num.partitions=3
transaction.state.log.num.partitions=3
share.coordinator.state.topic.num.partitions=3
group.initial.rebalance.delay.ms=0
EOF
}

write_log4j_config() {
  # Kafka 4 moved to log4j2; its stock config is YAML in the tarball, which we
  # do not have, so write an equivalent console config (stdout goes to $OUT).
  cat >"$LOG4J" <<'EOF'
status = warn
# Let Kafka's own shutdown hook log to the end: log4j2's hook would stop
# logging midway through the controlled shutdown.
shutdownHook = disable
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = WARN
EOF
}

new_cluster_id() {
  # Kafka's Uuid format: 16 random bytes, base64url without padding. Kafka
  # itself avoids a leading '-' (it reads as a CLI flag), so do we.
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [[ "$id" != -* ]] && { echo "$id"; return; }
  done
}

# Same JVM flags as Kafka's kafka-run-class.sh, minus JMX and GC log files.
java_cmd() {
  # shellcheck disable=SC2206  # option strings are meant to split
  local heap=(${2:-$HEAP_OPTS}) perf=($JVM_PERF_OPTS) extra=(${KAFKA_OPTS:-})
  JAVA_CMD=("$JAVA" "${heap[@]}" "${perf[@]}" "${extra[@]}"
    -Dlog4j2.configurationFile="$LOG4J" -Dkafka.logs.dir="$LOGS"
    -cp "$LIBS/*" "$1")
}

format_storage_once() {
  # meta.properties is what the broker checks for; its presence means formatted.
  [[ -f "$LOG_DIRS/meta.properties" ]] && return 0
  [[ -s "$CLUSTER_ID_FILE" ]] || new_cluster_id >"$CLUSTER_ID_FILE"
  local cid; cid="$(cat "$CLUSTER_ID_FILE")"
  log "formatting KRaft storage in $LOG_DIRS (cluster id $cid)"
  java_cmd kafka.tools.StorageTool "-Xmx256m"
  "${JAVA_CMD[@]}" format --cluster-id "$cid" --config "$PROPS" --ignore-formatted >>"$LOGS/format.log" 2>&1 \
    || { cat "$LOGS/format.log" >&2; die "storage format failed"; }
}

cmd_start() {
  cmd_fetch
  mkdir -p "$DATA" "$LOGS"
  exec 9>"$DATA/.lock"
  flock 9   # parallel test workers may all call start

  local pid
  if pid="$(running_pid)"; then
    log "already running (pid $pid) on $BOOTSTRAP"
    echo "$BOOTSTRAP"; return 0
  fi
  rm -f "$PIDFILE"
  port_open "$PORT" && die "port $PORT is taken by another process; set SIMPUL_KAFKA_PORT"
  port_open "$CONTROLLER_PORT" && die "controller port $CONTROLLER_PORT is taken; set SIMPUL_KAFKA_PORT"

  write_server_properties
  write_log4j_config
  format_storage_once

  [[ -f "$OUT" ]] && mv -f "$OUT" "$OUT.prev"   # keep one previous run for post-mortems
  log "starting Kafka $KAFKA_VERSION on $BOOTSTRAP (data: $DATA)"
  # setsid + nohup: the broker must outlive this script and not get the
  # caller's Ctrl-C or hangup; it is stopped through `stop` only.
  # Redirections close 9 too, so the lock is released when this script exits.
  java_cmd kafka.Kafka
  nohup setsid "${JAVA_CMD[@]}" "$PROPS" </dev/null >"$OUT" 2>&1 9>&- &
  pid=$!
  echo "$pid" >"$PIDFILE"

  local deadline=$((SECONDS + START_TIMEOUT))
  until port_open "$PORT" && grep -qF "$READY_LINE" "$OUT" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 40 "$OUT" >&2 || true
      rm -f "$PIDFILE"
      die "broker exited during startup; full log: $OUT"
    fi
    if (( SECONDS >= deadline )); then
      tail -n 40 "$OUT" >&2 || true
      kill -KILL "$pid" 2>/dev/null || true
      rm -f "$PIDFILE"
      die "broker not ready after ${START_TIMEOUT}s; full log: $OUT"
    fi
    sleep 0.2
  done
  log "ready (pid $pid)"
  echo "$BOOTSTRAP"
}

cmd_stop() {
  mkdir -p "$DATA"
  exec 9>"$DATA/.lock"
  flock 9
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$PIDFILE"; log "not running"; return 0
  fi
  # SIGTERM runs Kafka's controlled shutdown: segments are flushed and closed
  # cleanly, so the next start skips log recovery and keeps every acked record.
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while is_our_broker "$pid"; do
    if (( SECONDS >= deadline )); then
      log "no exit ${STOP_TIMEOUT}s after SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      while is_our_broker "$pid"; do sleep 0.1; done
      break
    fi
    sleep 0.1
  done
  rm -f "$PIDFILE"
  log "stopped (pid $pid)"
}

cmd_status() {
  local pid
  if pid="$(running_pid)"; then
    if port_open "$PORT"; then echo "running pid=$pid bootstrap=$BOOTSTRAP data=$DATA"
    else echo "starting pid=$pid bootstrap=$BOOTSTRAP data=$DATA"; fi
    return 0
  fi
  echo "stopped data=$DATA"
  return 3   # LSB "not running"
}

cmd_reset() {
  cmd_stop
  rm -rf "$DATA"
  log "removed $DATA"
}

cmd_env() { echo "KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP"; }

cmd_logs() { if [[ -f "$OUT" ]]; then tail -n "${1:-100}" "$OUT"; else log "no log at $OUT"; fi; }

case "${1:-}" in
  fetch)   cmd_fetch ;;
  start)   cmd_start ;;
  stop)    cmd_stop ;;
  restart) cmd_stop; cmd_start ;;
  status)  cmd_status ;;
  reset)   cmd_reset ;;
  env)     cmd_env ;;
  logs)    shift; cmd_logs "$@" ;;
  *) echo "usage: $0 {fetch|start|stop|restart|status|reset|env|logs [N]}" >&2; exit 2 ;;
esac
