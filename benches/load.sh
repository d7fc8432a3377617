#!/usr/bin/env bash
# The load benchmark of issue 5: one run, on this machine, of everything the targets in
# BENCHMARKS.md compare. Run from anywhere in a clone:
#
#     bash benches/load.sh
#
# It builds the daemon and the helpers (release profile), installs wrk if it is missing,
# generates the trees under a scratch directory in /tmp (deleted at the end), runs every
# measurement, and rewrites BENCHMARKS.md at the top of the clone. About 20 minutes on
# 2 cores; it needs about 9 GB of free space in /tmp.
#
# Knobs (environment): LOAD_RUNS (runs per measurement, median reported; default 3),
# LOAD_SIZES (tree sizes for the scan timing; default "1000 100000 1000000"),
# LOAD_TMP (parent of the scratch directory; default /tmp), LOAD_OUT (report path;
# default BENCHMARKS.md), LOAD_PARTS (which measurements; default all of
# "scan index latency drain batch hook tput detect folders": a subset leaves the other rows
# n/a, for trying a change), LOAD_DRAIN_FILES (files of the drain and batch tree; default
# 100000), LOAD_HOOK_FILES (webhook deliveries per run; default 10000), LOAD_FOLDER_FILES
# (files of the 8-folders-vs-1 tree; default the largest of LOAD_SIZES).
#
# nginx (the reference of the `200` throughput, serving the same 4 KiB file) is installed
# with apt-get when missing and this runs as root; otherwise its row is skipped with a line.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

RUNS=${LOAD_RUNS:-3}
SIZES=${LOAD_SIZES:-"1000 100000 1000000"}
OUT=${LOAD_OUT:-$REPO/BENCHMARKS.md}
BIGGEST=${SIZES##* }
WRK_ARGS=(-t2 -c32 -d8s)
PARTS=" ${LOAD_PARTS:-scan index latency drain batch hook tput detect folders} "
DRAIN_N=${LOAD_DRAIN_FILES:-100000}
HOOK_N=${LOAD_HOOK_FILES:-10000}
FOLDER_N=${LOAD_FOLDER_FILES:-$BIGGEST}
want() { [[ $PARTS == *" $1 "* ]]; }

log() { printf '\n== %s\n' "$*" >&2; }

# ------------------------------------------------------------------ tools and build
if ! command -v wrk >/dev/null 2>&1; then
    log "installing wrk"
    apt-get update && apt-get install -y wrk
fi
command -v python3 >/dev/null || { echo "python3 is needed" >&2; exit 1; }
if ! command -v nginx >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing nginx"
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y nginx || true
fi
HAVE_NGINX=""
if command -v nginx >/dev/null 2>&1; then HAVE_NGINX=1; else
    echo "nginx is missing (apt-get install nginx): the 200 row against nginx is skipped" >&2
fi

SCRATCH=$(mktemp -d "${LOAD_TMP:-/tmp}/filetrigger-load.XXXXXX")
RESULTS=$SCRATCH/results.jsonl
DAEMON_PID=""
DAEMON2_PID=""
BARE_PID=""
NGINX_PIDFILE=""
WWW=""
cleanup() {
    set +e
    [ -n "$NGINX_PIDFILE" ] && [ -f "$NGINX_PIDFILE" ] && kill "$(cat "$NGINX_PIDFILE")" 2>/dev/null
    [ -n "$WWW" ] && rm -rf "$WWW"
    [ -n "$DAEMON_PID" ] && kill -9 "$DAEMON_PID" 2>/dev/null
    [ -n "$DAEMON2_PID" ] && kill -9 "$DAEMON2_PID" 2>/dev/null
    [ -n "$BARE_PID" ] && kill -9 "$BARE_PID" 2>/dev/null
    wait 2>/dev/null
    log "removing $SCRATCH"
    rm -rf "$SCRATCH"
}
trap cleanup EXIT

log "building (release profile)"
cargo build --release --bin filetrigger --bench bare --bench loadclient \
    --message-format=json-render-diagnostics >"$SCRATCH/build.json"
exe() {
    python3 - "$SCRATCH/build.json" "$1" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == sys.argv[2] and m.get("executable"):
        path = m["executable"]
print(path)
EOF
}
DAEMON=$(exe filetrigger)
BARE=$(exe bare)
CLIENT=$(exe loadclient)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
PORT2=$(free_port)
BPORT=$(free_port)
NPORT=$(free_port)
BASE=http://127.0.0.1:$PORT
BASE2=http://127.0.0.1:$PORT2
BBASE=http://127.0.0.1:$BPORT

# record KEY JSON: one measurement (several runs of one KEY are reduced to medians)
record() { printf '{"k":"%s","v":%s}\n' "$1" "$2" >>"$RESULTS"; printf '   %s %s\n' "$1" "$2" >&2; }
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
now_ns() { date +%s%N; }

# start_daemon TREE STATE [PORT]: starts the daemon and sets T0 to just before it.
# EXTRA_ENV (an array of NAME=VALUE) adds settings.
EXTRA_ENV=()
start_daemon() {
    T0=$(now_ns)
    env ${EXTRA_ENV[@]+"${EXTRA_ENV[@]}"} FILETRIGGER__WATCH__DIR=$1 FILETRIGGER__STATE__DIR=$2 \
        FILETRIGGER__SERVER__LISTEN=127.0.0.1:${3:-$PORT} RUST_LOG=info \
        "$DAEMON" 2>>"$SCRATCH/daemon.log" &
    DAEMON_PID=$!
}
stop_daemon() {
    [ -n "$DAEMON_PID" ] || return 0
    kill -TERM "$DAEMON_PID" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$DAEMON_PID" 2>/dev/null || true
    wait "$DAEMON_PID" 2>/dev/null || true
    DAEMON_PID=""
}
# The index file's size while the daemon that indexed the tree still runs (the close
# tightens it: the `index.N` row is the closed file).
live_size() { record "index.live.$1" "{\"file_bytes\":$(stat -c %s "$2")}"; }
peak_rss_kib() { awk '/VmHWM/ {print $2}' "/proc/$DAEMON_PID/status"; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$DAEMON_PID/status"; }
wrk_rps() {
    wrk "${WRK_ARGS[@]}" "$@" >"$SCRATCH/wrk.out" 2>&1
    grep -q 'Non-2xx' "$SCRATCH/wrk.out" && { cat "$SCRATCH/wrk.out" >&2; echo "wrk saw errors" >&2; exit 1; }
    awk '/Requests\/sec/ {print $2}' "$SCRATCH/wrk.out"
}

# ------------------------------------------------------------------ the machine
log "machine"
DISK_SRC=$(findmnt -no SOURCE -T "$SCRATCH" | head -1)
DISK_FS=$(findmnt -no FSTYPE -T "$SCRATCH" | head -1)
DISK_DEV=$(lsblk -no PKNAME "$DISK_SRC" 2>/dev/null | head -1)
DISK_DEV=${DISK_DEV:-$(basename "$DISK_SRC")}
ROTA=$(cat "/sys/block/$DISK_DEV/queue/rotational" 2>/dev/null || echo "?")
MODEL=$(cat "/sys/block/$DISK_DEV/device/model" 2>/dev/null | xargs || true)
case "$DISK_DEV" in vd*) KIND="virtio block device (virtual disk)";; nvme*) KIND="NVMe";; *) KIND="block device";; esac
record machine "$(python3 - "$DISK_DEV" "$DISK_FS" "$ROTA" "$KIND" "$MODEL" <<'EOF'
import json, os, sys, datetime, platform
mem = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(json.dumps({
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "cores": os.cpu_count(), "cpu": cpu, "mem_gib": round(mem / 1048576, 1),
    "disk": f"{sys.argv[1]}: {sys.argv[4]}{' ' + sys.argv[5] if sys.argv[5] else ''}, {sys.argv[2]}, rotational flag {sys.argv[3]}",
    "kernel": platform.release(),
    "load": open("/proc/loadavg").read().split()[0],
}))
EOF
)"

# ------------------------------------------------------------------ trees
log "generating trees under $SCRATCH"
for n in $SIZES; do
    if want scan || want index || { want latency && { [ "$n" = 1000 ] || [ "$n" = "$BIGGEST" ]; }; }; then
        record "gen.$n" "$("$CLIENT" gen "$SCRATCH/tree$n" "$n" 1024)"
    fi
done
record gen.4k "$("$CLIENT" gen "$SCRATCH/tree4k" 1000 4096)"
sync

# ------------------------------------------------------------------ 2. start-up scan vs find
want scan && for n in $SIZES; do
    T=$SCRATCH/tree$n
    log "start-up scan of $n files (cache warm) vs find"
    find "$T" -printf '%T@ %s %p\n' >/dev/null   # warm the cache
    for r in $(seq "$RUNS"); do
        a=$(now_ns); find "$T" -printf '%T@ %s %p\n' >/dev/null; b=$(now_ns)
        record "find.$n" "{\"s\":$(python3 -c "print(($b-$a)/1e9)")}"
        # First start: an empty index, every file new.
        rm -rf "$SCRATCH/state$n"
        start_daemon "$T" "$SCRATCH/state$n"
        record "ready.fresh.$n" "$("$CLIENT" ready "$BASE/healthz" "$T0" 900)"
        if [ "$r" = 1 ]; then
            record "indexed.$n" "$("$CLIENT" indexed "$BASE/healthz" "$n" 1800)"
            live_size "$n" "$SCRATCH/state$n/index.redb"
            record "rss.fresh.$n" "{\"peak_kib\":$(peak_rss_kib),\"now_kib\":$(rss_kib)}"
            stop_daemon
            cp -a "$SCRATCH/state$n" "$SCRATCH/state$n.full"
        else
            stop_daemon
        fi
        # Restart: every file already indexed.
        rm -rf "$SCRATCH/state$n"; cp -a "$SCRATCH/state$n.full" "$SCRATCH/state$n"
        start_daemon "$T" "$SCRATCH/state$n"
        record "ready.restart.$n" "$("$CLIENT" ready "$BASE/healthz" "$T0" 900)"
        "$CLIENT" indexed "$BASE/healthz" "$n" 900 >/dev/null
        record "rss.restart.$n" "{\"peak_kib\":$(peak_rss_kib),\"now_kib\":$(rss_kib)}"
        stop_daemon
    done
done

# The biggest tree again with a cold page cache: `echo 3 > /proc/sys/vm/drop_caches`
# before `find` and before each start (root only; skipped with a line otherwise).
if want scan; then
    T=$SCRATCH/tree$BIGGEST
    if [ -w /proc/sys/vm/drop_caches ]; then
        log "start-up scan of $BIGGEST files (cache cold) vs find"
        cold() { sync; echo 3 >/proc/sys/vm/drop_caches; }
        for r in $(seq "$RUNS"); do
            cold
            a=$(now_ns); find "$T" -printf '%T@ %s %p\n' >/dev/null; b=$(now_ns)
            record "find.cold.$BIGGEST" "{\"s\":$(python3 -c "print(($b-$a)/1e9)")}"
            rm -rf "$SCRATCH/state$BIGGEST"
            cold
            start_daemon "$T" "$SCRATCH/state$BIGGEST"
            record "ready.cold.fresh.$BIGGEST" "$("$CLIENT" ready "$BASE/healthz" "$T0" 900)"
            stop_daemon
            rm -rf "$SCRATCH/state$BIGGEST"; cp -a "$SCRATCH/state$BIGGEST.full" "$SCRATCH/state$BIGGEST"
            cold
            start_daemon "$T" "$SCRATCH/state$BIGGEST"
            record "ready.cold.restart.$BIGGEST" "$("$CLIENT" ready "$BASE/healthz" "$T0" 900)"
            stop_daemon
        done
    else
        echo "the cold-cache scan needs root (it writes /proc/sys/vm/drop_caches): skipped" >&2
    fi
fi

# ------------------------------------------------------------------ index size per file
# index.redb after indexing each tree from an empty index (the scan's copy when it ran),
# against the information that must be stored: the relative paths.
want index && for n in $SIZES; do
    log "index size on disk at $n files vs the sum of the relative path lengths"
    [ -d "$SCRATCH/state$n.full" ] || {
        start_daemon "$SCRATCH/tree$n" "$SCRATCH/state$n.full"
        "$CLIENT" ready "$BASE/healthz" "$T0" 900 >/dev/null
        "$CLIENT" indexed "$BASE/healthz" "$n" 1800 >/dev/null
        live_size "$n" "$SCRATCH/state$n.full/index.redb"
        stop_daemon
    }
    db=$SCRATCH/state$n.full/index.redb
    pb=$("$CLIENT" pathbytes "$SCRATCH/tree$n")
    record "index.$n" "$(python3 -c '
import json, os, sys
st = os.stat(sys.argv[1])
p = json.loads(sys.argv[2])
print(json.dumps({"files": p["files"], "path_bytes": p["path_bytes"],
                  "file_bytes": st.st_size, "disk_bytes": st.st_blocks * 512}))' "$db" "$pb")"
done

# ------------------------------------------------------------------ 4. one poll's latency
# Both daemons run at once and the runs alternate, so both see the same machine.
if want latency; then
log "latency of one poll at 1,000 and at $BIGGEST indexed files"
for n in 1000 "$BIGGEST"; do
    [ -d "$SCRATCH/state$n.full" ] || {
        start_daemon "$SCRATCH/tree$n" "$SCRATCH/state$n.full"
        "$CLIENT" ready "$BASE/healthz" "$T0" 900 >/dev/null
        "$CLIENT" indexed "$BASE/healthz" "$n" 1800 >/dev/null
        stop_daemon
    }
done
start_daemon "$SCRATCH/tree$BIGGEST" "$SCRATCH/state$BIGGEST.full" "$PORT2"
DAEMON2_PID=$DAEMON_PID
"$CLIENT" ready "$BASE2/healthz" "$T0" 900 >/dev/null
start_daemon "$SCRATCH/tree1000" "$SCRATCH/state1000.full"
"$CLIENT" ready "$BASE/healthz" "$T0" 900 >/dev/null
"$CLIENT" indexed "$BASE/healthz" 1000 900 >/dev/null
"$CLIENT" indexed "$BASE2/healthz" "$BIGGEST" 900 >/dev/null
sleep 5 # the start-up scans' deletion checks finish
for r in $(seq "$RUNS"); do
    record "latency.1000" "$("$CLIENT" latency "$BASE/trigger" 3000)"
    record "latency.$BIGGEST" "$("$CLIENT" latency "$BASE2/trigger" 3000)"
done
stop_daemon
DAEMON_PID=$DAEMON2_PID DAEMON2_PID=""
stop_daemon
fi

# ------------------------------------------------------------------ 5. sequential drain
"$BARE" serve "127.0.0.1:$BPORT" 2>>"$SCRATCH/bare.log" &
BARE_PID=$!
sleep 0.5
EPOCH=triggerState=1970-01-01T00:00:00Z
if want drain || want batch; then
log "sequential drain of $DRAIN_N files of 1 KiB vs sequential round trips to the bare server; batch trigger (100 per call) vs single trigger"
[ -d "$SCRATCH/tree$DRAIN_N" ] || record "gen.$DRAIN_N" "$("$CLIENT" gen "$SCRATCH/tree$DRAIN_N" "$DRAIN_N" 1024)"
[ -d "$SCRATCH/state$DRAIN_N.full" ] || {
    start_daemon "$SCRATCH/tree$DRAIN_N" "$SCRATCH/state$DRAIN_N.full"
    "$CLIENT" ready "$BASE/healthz" "$T0" 900 >/dev/null
    "$CLIENT" indexed "$BASE/healthz" "$DRAIN_N" 1800 >/dev/null
    stop_daemon
}
start_daemon "$SCRATCH/tree$DRAIN_N" "$SCRATCH/state$DRAIN_N.full"
"$CLIENT" ready "$BASE/healthz" "$T0" 900 >/dev/null
"$CLIENT" indexed "$BASE/healthz" "$DRAIN_N" 900 >/dev/null
sleep 5 # the start-up scan's deletion check finishes
for r in $(seq "$RUNS"); do
    if want drain; then
        d=$("$CLIENT" drain "$BASE/trigger?folder=in&$EPOCH")
        record drain.daemon "$d"
        record drain.bare "$("$CLIENT" seq "$BBASE/200/$(field "$d" avg_body)" "$(field "$d" count)")"
    fi
    if want batch; then
        # The same files, the same daemon, back to back: 100 per call vs one per call.
        record batch.single "$("$CLIENT" drain "$BASE/watches/default/trigger?$EPOCH")"
        record batch.batch "$("$CLIENT" batch "$BASE/watches/default/batch?maxFileCount=100&$EPOCH")"
    fi
done
stop_daemon
fi

# ------------------------------------------------------------------ webhook deliveries
# The receiver is the bare server's POST /recv (reads the body, answers 200). Each run:
# files are written while the subscription is unsubscribed (its position is kept), they are
# indexed, then the same callback is subscribed again and timed until the receiver counted
# them all. The reference: as many of the daemon's own File bodies (taken from its single
# trigger), POSTed one at a time by a bare hyper client to the same receiver.
if want hook; then
log "webhook deliveries of $HOOK_N files of 1 KiB to a local receiver vs a bare hyper client POSTing the same bodies"
HT=$SCRATCH/hooktree
mkdir -p "$HT"
rm -rf "$SCRATCH/statehook"
EXTRA_ENV=(FILETRIGGER__WEBHOOK__ALLOW_HTTP=true FILETRIGGER__WEBHOOK__ALLOW_PRIVATE=true
    FILETRIGGER__WEBHOOK__ALLOWED_HOSTS=127.0.0.1)
start_daemon "$HT" "$SCRATCH/statehook"
EXTRA_ENV=()
"$CLIENT" ready "$BASE/healthz" "$T0" 900 >/dev/null
CALLBACK="$BBASE/recv?sig=bench"
"$CLIENT" hook "$BASE/watches/default" "$CALLBACK" "$BBASE/count" 0 >/dev/null
for r in $(seq "$RUNS"); do
    record gen.hook "$("$CLIENT" gen "$HT/run$r" "$HOOK_N" 1024)"
    "$CLIENT" indexed "$BASE/healthz" $((HOOK_N * r)) 900 >/dev/null
    record hook.daemon "$("$CLIENT" hook "$BASE/watches/default" "$CALLBACK" "$BBASE/count" "$HOOK_N")"
    record hook.bare "$("$BARE" post "$BASE/watches/default/trigger?$EPOCH" "$BBASE/recv" "$HOOK_N")"
done
stop_daemon
fi

# ------------------------------------------------------------------ 3. throughput (wrk)
if want tput || want detect; then
log "poll throughput with wrk ${WRK_ARGS[*]}: 202 answers, and 200 answers with 4 KiB files"
rm -rf "$SCRATCH/state4k"
start_daemon "$SCRATCH/tree4k" "$SCRATCH/state4k"
"$CLIENT" ready "$BASE/healthz" "$T0" 900 >/dev/null
"$CLIENT" indexed "$BASE/healthz" 1000 900 >/dev/null
sleep 3
"$CLIENT" cursors "$BASE/trigger" 1000 "$SCRATCH/daemon200.lua" >/dev/null
b4k=$("$CLIENT" drain "$BASE/trigger?triggerState=1970-01-01T00:00:00Z" 1)
sed "s#\"/trigger?#\"/200/$(field "$b4k" avg_body)?#" "$SCRATCH/daemon200.lua" >"$SCRATCH/bare200.lua"
# nginx: the same 4 KiB file (one of the tree's) from its own directory, sendfile on,
# access log off, 2 workers. Its workers may run as another user: the directory is
# world-readable.
if [ -n "$HAVE_NGINX" ] && want tput; then
    WWW=$(mktemp -d "${LOAD_TMP:-/tmp}/filetrigger-www.XXXXXX")
    chmod 755 "$WWW"
    cp "$(find "$SCRATCH/tree4k" -type f -name '*.dat' | sort | head -1)" "$WWW/f.dat"
    chmod 644 "$WWW/f.dat"
    NGINX_PIDFILE=$WWW/nginx.pid
    cat >"$WWW/nginx.conf" <<NGINX
worker_processes 2;
pid $NGINX_PIDFILE;
error_log $WWW/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    keepalive_requests 1000000;
    server { listen 127.0.0.1:$NPORT; root $WWW; }
}
NGINX
    nginx -c "$WWW/nginx.conf"
    sleep 0.5
fi
# A caught-up client: the cursor is the newest stamp, so the answer is 202.
CAUGHT_UP="/trigger?folder=in&triggerState=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%S.000000000Z)"
want tput && for r in $(seq "$RUNS"); do
    record tput202.daemon "{\"rps\":$(wrk_rps "$BASE$CAUGHT_UP")}"
    record tput202.bare "{\"rps\":$(wrk_rps "$BBASE/202?folder=in&triggerState=2026-11-25T16:47:00.123456789Z")}"
    record tput200.daemon "{\"rps\":$(wrk_rps -s "$SCRATCH/daemon200.lua" "$BASE")}"
    record tput200.bare "{\"rps\":$(wrk_rps -s "$SCRATCH/bare200.lua" "$BBASE")}"
    if [ -n "$HAVE_NGINX" ]; then
        # Back to back with the daemon again, so the pair sees the same machine.
        record tput200.daemon2 "{\"rps\":$(wrk_rps -s "$SCRATCH/daemon200.lua" "$BASE")}"
        record tput200.nginx "{\"rps\":$(wrk_rps "http://127.0.0.1:$NPORT/f.dat")}"
    fi
done
fi
kill -TERM "$BARE_PID"; wait "$BARE_PID" 2>/dev/null || true; BARE_PID=""
if [ -n "$NGINX_PIDFILE" ]; then
    kill "$(cat "$NGINX_PIDFILE")" 2>/dev/null || true
    sleep 0.5
    rm -rf "$WWW"
    NGINX_PIDFILE="" WWW=""
fi

# ------------------------------------------------------------------ 6. detection latency
if want detect; then
log "detection latency: rename into place, and write-and-close in place → first visibility in a poll (settle_after_close_ms 300, settle_ms 2000)"
for r in $(seq "$RUNS"); do
    record detect "$("$CLIENT" detect "$SCRATCH/tree4k" "detect$r" "$BASE/trigger" 1000 10 rename)"
    record detect.close "$("$CLIENT" detect "$SCRATCH/tree4k" "detectc$r" "$BASE/trigger" 1000 10 close)"
done
fi
stop_daemon

# ------------------------------------------------------------------ 8 folders vs 1
# The same FOLDER_N files in 8 directories: watched as one folder (their parent), then as
# 8 folders (default + 7 named). From an empty index until every file is indexed, and a
# restart until ready, each with the daemon's peak RSS.
if want folders; then
log "start-up with 8 watched folders vs 1 ($FOLDER_N files)"
FT=$SCRATCH/foldertree
for i in 0 1 2 3 4 5 6 7; do
    record gen.folders "$("$CLIENT" gen "$FT/f$i" $((FOLDER_N / 8)) 1024)"
done
FOLDER_TOTAL=$(( (FOLDER_N / 8) * 8 ))
sync
EIGHT=()
for i in 1 2 3 4 5 6 7; do EIGHT+=("FILETRIGGER__FOLDERS__F${i}__DIR=$FT/f$i"); done
# folders_run KEY TREE: one start from an empty index and one restart, as folders.KEY.*.
folders_run() {
    rm -rf "$SCRATCH/statef"
    start_daemon "$2" "$SCRATCH/statef"
    local rd ix
    rd=$("$CLIENT" ready "$BASE/healthz" "$T0" 900)
    ix=$("$CLIENT" indexed "$BASE/healthz" "$FOLDER_TOTAL" 1800)
    record "folders.$1.fresh" "{\"s\":$(python3 -c "print(round($(field "$rd" ready_s)+$(field "$ix" waited_s),3))"),\"peak_kib\":$(peak_rss_kib)}"
    stop_daemon
    start_daemon "$2" "$SCRATCH/statef"
    rd=$("$CLIENT" ready "$BASE/healthz" "$T0" 900)
    "$CLIENT" indexed "$BASE/healthz" "$FOLDER_TOTAL" 900 >/dev/null
    record "folders.$1.restart" "{\"s\":$(field "$rd" ready_s),\"peak_kib\":$(peak_rss_kib)}"
    stop_daemon
}
for r in $(seq "$RUNS"); do
    folders_run 1 "$FT"
    EXTRA_ENV=("${EIGHT[@]}")
    folders_run 8 "$FT/f0"
    EXTRA_ENV=()
done
fi

# ------------------------------------------------------------------ report
log "writing $OUT"
python3 "$REPO/benches/report.py" "$RESULTS" "$OUT" "$BIGGEST" "$RUNS" "${WRK_ARGS[*]}"
cat "$OUT"
