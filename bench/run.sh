#!/usr/bin/env bash
# bench/run.sh — the gateway's benchmark suite (`make bench` runs it with the build dir).
#
# Builds nothing: it uses llmgate, loadgen and decode_bench from the build directory given
# as $1 (default: build). For each scenario it starts `llmgate --config bench/<s>.yaml`,
# warms up, drives it with bench/loadgen for BENCH_SECONDS, and reads the gateway's own CPU
# time (utime+stime from /proc/PID/stat) before and after, so the headline figure —
# spans per gateway CPU-second — does not depend on how much CPU the load generator,
# running on the same machine, takes away. Peak RSS is VmHWM from /proc/PID/status. Each
# scenario runs BENCH_REPEAT times, each time in a fresh gateway; the median is reported.
# Then the decode-only floor (bench/decode_bench), and a profile of where the gateway's
# time goes (perf when hardware counters work, else valgrind's callgrind on a short run).
#
# A scenario whose config has an `otlp` exporter (the exporter path) also gets a backend:
# `sink --grpc` on the port of the exporter's endpoint, started before the gateway and
# stopped after it. After the warm-up and again after the measured load the script waits
# until the sink has every span the load generator was told was accepted (or nothing more
# arrives for DRAIN_STALL_SECONDS), so the gateway CPU time covers receiving AND exporting
# the measured spans; the spans that reach the sink, against those accepted, show any loss.
# Such a config may use ${env:LLMGATE_BENCH_QUEUE_DIR}, a fresh directory per run for a
# persistent queue. When the config also serves self-metrics (service.telemetry.metrics
# address), the exporter's otelcol_exporter_queue_size is sampled every second of the
# measured load and printed: a queue that grows for the whole run means the load was more
# than the gateway exports (see loadgen --rate).
#
# A scenario passes extra loadgen options in `# loadgen: ...` comment lines of its config
# (e.g. --unique-trace-ids, --rate SPANS_PER_SEC); the measured runs and the perf profile
# use them.
#
# Writes the generated section of docs/BENCHMARKS.md (between <!-- bench:start --> and
# <!-- bench:end -->; the hand-written text around it is kept) and prints the same tables.
# Owns: the gateways and sinks it starts (stopped on exit, by PID) and a temporary directory.
#
# Environment (all optional):
#   BENCH_SECONDS=20        measured seconds per run
#   BENCH_REPEAT=3          runs per scenario (median reported)
#   BENCH_WARMUP=3          seconds of load before measuring
#   BENCH_CONCURRENCY=4     loadgen threads (one connection each)
#   BENCH_SCENARIOS="grpc_batch_debug grpc_llm_cost_debug http_batch_debug grpc_otlp_memq
#                    grpc_otlp_persistq_nofsync grpc_otlp_persistq_fsync grpc_llm_cost_tail_debug
#                    azure_monitor_gzip"   bench/<name>.yaml to run
#   BENCH_QUEUE_DIR=<temporary directory>  where persistent queues live (the filesystem
#                           decides what fsync costs: a tmpfs makes it free)
#   BENCH_DECODE_SECONDS=5  CPU seconds per decode_bench case
#   BENCH_PROFILE=auto      auto | perf | callgrind | none
#   BENCH_PROFILE_REQUESTS=300  requests sent to the gateway under callgrind
#   BENCH_DOC=docs/BENCHMARKS.md  where to write the results ("" = do not write)
#   BENCH_KEEP=1            keep the temporary directory (logs, profiles) for a look
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_ARG=${1:-build}
case $BUILD_ARG in
    /*) BUILD=$BUILD_ARG ;;
    *) BUILD=$ROOT/$BUILD_ARG ;;
esac

BENCH_SECONDS=${BENCH_SECONDS:-20}
BENCH_REPEAT=${BENCH_REPEAT:-3}
BENCH_WARMUP=${BENCH_WARMUP:-3}
BENCH_CONCURRENCY=${BENCH_CONCURRENCY:-4}
BENCH_SCENARIOS=${BENCH_SCENARIOS:-"grpc_batch_debug grpc_llm_cost_debug http_batch_debug grpc_otlp_memq grpc_otlp_persistq_nofsync grpc_otlp_persistq_fsync grpc_llm_cost_tail_debug azure_monitor_gzip"}
BENCH_DECODE_SECONDS=${BENCH_DECODE_SECONDS:-5}
BENCH_PROFILE=${BENCH_PROFILE:-auto}
BENCH_PROFILE_REQUESTS=${BENCH_PROFILE_REQUESTS:-300}
BENCH_DOC=${BENCH_DOC-$ROOT/docs/BENCHMARKS.md}

# How long to wait for things, in seconds (valgrind makes everything ~50x slower).
READY_TIMEOUT=15
READY_TIMEOUT_VALGRIND=120
STOP_TIMEOUT=30
STOP_TIMEOUT_VALGRIND=180
# After the load stops, the batch processor still holds up to one timeout (200 ms) of
# spans; give it this long before reading the gateway's CPU time.
SETTLE_SECONDS=1
# Exporter scenarios: wait for the sink to receive every accepted span, giving up when
# nothing arrives for DRAIN_STALL_SECONDS or after DRAIN_TIMEOUT seconds in all.
DRAIN_STALL_SECONDS=15 # > one first retry wait (initial_interval 5s, randomised up to 7.5s)
DRAIN_TIMEOUT=300
SINK_INTERVAL=0.2 # seconds between the sink's progress lines, which the wait reads
PROFILE_TOP=10
PERF_SECONDS=8 # sampling window of the perf profile
QUEUE_SAMPLE_SECONDS=1 # how often the exporter's queue size is read during the measured load
CLK_TCK=$(getconf CLK_TCK)

LLMGATE=$BUILD/llmgate
LOADGEN=$BUILD/loadgen
DECODE_BENCH=$BUILD/decode_bench
SINK=$BUILD/sink

die() {
    echo "bench: $*" >&2
    exit 1
}

for bin in "$LLMGATE" "$LOADGEN" "$DECODE_BENCH" "$SINK"; do
    [[ -x $bin ]] || die "missing $bin: build first (cmake --build $BUILD_ARG)"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/llmgate-bench.XXXXXX")
BENCH_QUEUE_DIR=${BENCH_QUEUE_DIR:-$WORK}
GW_PID=""
SINK_PID=""
SINK_LOG=""
SINK_RESULT=""
QUEUE_DIR=""

cleanup() {
    local pid
    for pid in "$GW_PID" "$SINK_PID"; do
        if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    if [[ -n ${QUEUE_DIR:-} ]]; then rm -rf "$QUEUE_DIR"; fi
    if [[ -n ${BENCH_KEEP:-} ]]; then echo "bench: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- helpers ----

# The listening port of a scenario's receiver, read from its config.
scenario_port() {
    grep -Eo -m1 'endpoint: *[0-9.]+:[0-9]+' "$1" | sed 's/.*://'
}

# The sink port of an exporter scenario: the port of the endpoint of an `otlp` (gRPC)
# exporter (`otlp:` or `otlp/<name>:` directly under top-level `exporters:`); empty when
# the scenario has none and needs no backend.
scenario_sink_port() {
    awk '
        /^[^ #]/ { in_exp = ($0 ~ /^exporters:/); in_otlp = 0; next }
        in_exp && /^  [^ #]/ { in_otlp = ($0 ~ /^  otlp(\/[^:]*)?:/); next }
        in_exp && in_otlp && /^ +endpoint: *[^ ]+/ {
            ep = $0; sub(/^ +endpoint: */, "", ep); sub(/ .*/, "", ep); sub(/\/$/, "", ep);
            n = split(ep, part, ":"); print part[n]; exit }' "$1"
}

# Extra loadgen options of a scenario: the words after `# loadgen:` comment lines of its
# config (e.g. `# loadgen: --unique-trace-ids`); empty when there are none.
scenario_loadgen_args() {
    sed -n 's/^# loadgen: *//p' "$1" | tr '\n' ' '
}

# The gateway's self-metrics address of a scenario (service.telemetry.metrics.address),
# HOST:PORT; empty when it has none.
scenario_metrics_addr() {
    awk '/^ +metrics:/ { m = 1; next } m && /^ +address:/ { print $2; exit } /^ +[a-z_]+:/ { m = 0 }' "$1"
}

# sample_queue ADDR OUT: until killed, appends the gateway's otelcol_exporter_queue_size
# (summed over exporters) to OUT every QUEUE_SAMPLE_SECONDS; run in the background during
# the measured load, it shows whether the exporter kept up (a steady state) or its queue
# grew for the whole run.
sample_queue() {
    while :; do
        curl -s --max-time 1 "http://$1/metrics" 2>/dev/null |
            awk '/^otelcol_exporter_queue_size[{ ]/ { s += $NF; n++ } END { if (n) print s }' >>"$2" || true
        sleep "$QUEUE_SAMPLE_SECONDS"
    done
}

scenario_protocol() {
    if grep -Eq '^ +grpc:' "$1"; then echo grpc; else echo http; fi
}

# utime + stime of a process, in clock ticks. Field 2 (comm) may hold spaces, so cut
# everything up to the last ')' first: utime and stime are then fields 12 and 13.
cpu_ticks() {
    sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}

# Peak resident set size in KiB.
peak_rss_kib() {
    awk '/^VmHWM:/ {print $2}' "/proc/$1/status"
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# start_gateway CONFIG LOG [wrapper...]: sets GW_PID; waits until the port accepts.
start_gateway() {
    local config=$1 log=$2
    shift 2
    local port timeout=$READY_TIMEOUT
    port=$(scenario_port "$config")
    [[ $# -gt 0 ]] && timeout=$READY_TIMEOUT_VALGRIND
    port_open "$port" && die "port $port is already in use: stop whatever listens there"
    "$@" "$LLMGATE" --config "$config" >"$log" 2>&1 &
    GW_PID=$!
    local waited=0
    until port_open "$port"; do
        if ! kill -0 "$GW_PID" 2>/dev/null; then
            cat "$log" >&2
            die "llmgate exited during start-up with $config"
        fi
        ((waited++ < timeout * 10)) || die "llmgate did not listen on $port within ${timeout}s"
        sleep 0.1
    done
}

# The ingestion port of an azure_monitor scenario: the port of the http://127.0.0.1:PORT
# IngestionEndpoint in its connection string; empty when there is none.
scenario_azure_port() {
    { grep -Eo -m1 'IngestionEndpoint=http://127\.0\.0\.1:[0-9]+' "$1" || true; } | sed 's/.*://'
}

# start_backend CONFIG LOG: when CONFIG exports over OTLP, starts the sink on its port
# (sets SINK_PID and SINK_LOG) and waits until it listens; for an azure_monitor scenario
# the same with `node bench/azure_sink.mjs` (same progress and RESULT lines, counting span
# envelopes as spans); otherwise does nothing. Also
# makes a fresh, empty QUEUE_DIR for a persistent queue, exported as LLMGATE_BENCH_QUEUE_DIR.
start_backend() {
    local config=$1 log=$2 port waited=0
    QUEUE_DIR=$(mktemp -d "$BENCH_QUEUE_DIR/queue.XXXXXX")
    export LLMGATE_BENCH_QUEUE_DIR=$QUEUE_DIR
    local azure=""
    port=$(scenario_sink_port "$config")
    if [[ -z $port ]]; then
        port=$(scenario_azure_port "$config")
        if [[ -n $port ]]; then azure=1; fi
    fi
    [[ -n $port ]] || return 0
    port_open "$port" && die "sink port $port is already in use: stop whatever listens there"
    SINK_LOG=$log
    if [[ -n $azure ]]; then
        node "$ROOT/bench/azure_sink.mjs" --port "$port" --interval "$SINK_INTERVAL" >"$log" 2>&1 &
    else
        "$SINK" --grpc "127.0.0.1:$port" --interval "$SINK_INTERVAL" >"$log" 2>&1 &
    fi
    SINK_PID=$!
    until port_open "$port"; do
        if ! kill -0 "$SINK_PID" 2>/dev/null; then
            cat "$log" >&2
            die "sink exited during start-up on port $port"
        fi
        ((waited++ < READY_TIMEOUT * 10)) || die "sink did not listen on $port within ${READY_TIMEOUT}s"
        sleep 0.1
    done
}

# Spans the sink has received so far (its latest progress line), 0 before the first.
sink_spans() {
    local line
    line=$(grep -E '^sink: requests=' "$SINK_LOG" | tail -n1 || true)
    [[ -n $line ]] && field spans "$line" || echo 0
}

# wait_drained EXPECTED: waits until the sink has EXPECTED spans, or nothing new arrived
# for DRAIN_STALL_SECONDS, or DRAIN_TIMEOUT passed. Prints the seconds waited.
wait_drained() {
    local expected=$1 start now got last=-1 last_change
    start=$(date +%s.%N)
    last_change=$start
    while :; do
        got=$(sink_spans)
        now=$(date +%s.%N)
        ((got >= expected)) && break
        if ((got != last)); then
            last=$got
            last_change=$now
        fi
        if awk -v n="$now" -v s="$start" -v c="$last_change" -v stall="$DRAIN_STALL_SECONDS" \
            -v lim="$DRAIN_TIMEOUT" 'BEGIN { exit !(n - c >= stall || n - s >= lim) }'; then
            echo "bench: the sink has $got of $expected accepted spans; not waiting longer" >&2
            break
        fi
        sleep "$SINK_INTERVAL"
    done
    awk -v n="$now" -v s="$start" 'BEGIN { printf "%.1f\n", n - s }'
}

# stop_backend: stops the sink (SIGTERM; it prints its RESULT line) and removes QUEUE_DIR.
# Sets SINK_RESULT to the sink's RESULT line (empty without a sink).
stop_backend() {
    SINK_RESULT=""
    if [[ -n $SINK_PID ]]; then
        local waited=0
        kill -TERM "$SINK_PID" 2>/dev/null || true
        while kill -0 "$SINK_PID" 2>/dev/null && ((waited++ < STOP_TIMEOUT * 10)); do
            sleep 0.1
        done
        if kill -0 "$SINK_PID" 2>/dev/null; then
            echo "bench: sink did not stop within ${STOP_TIMEOUT}s; killing it" >&2
            kill -KILL "$SINK_PID" 2>/dev/null || true
        fi
        wait "$SINK_PID" 2>/dev/null || true
        SINK_PID=""
        SINK_RESULT=$(grep '^RESULT' "$SINK_LOG" || true)
    fi
    if [[ -n ${QUEUE_DIR:-} ]]; then rm -rf "$QUEUE_DIR"; fi
    QUEUE_DIR=""
}

# stop_gateway [TIMEOUT]: SIGTERM (graceful stop), then SIGKILL after TIMEOUT seconds.
stop_gateway() {
    [[ -n $GW_PID ]] || return 0
    local timeout=${1:-$STOP_TIMEOUT} waited=0
    kill -TERM "$GW_PID" 2>/dev/null || true
    while kill -0 "$GW_PID" 2>/dev/null && ((waited++ < timeout * 10)); do
        sleep 0.1
    done
    if kill -0 "$GW_PID" 2>/dev/null; then
        echo "bench: llmgate did not stop within ${timeout}s; killing it" >&2
        kill -KILL "$GW_PID" 2>/dev/null || true
    fi
    wait "$GW_PID" 2>/dev/null || true
    GW_PID=""
}

# field NAME LINE: the value of NAME=value in a RESULT line.
field() {
    tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1 == k {print $2}'
}

median() {
    sort -g | awk '{v[NR] = $1} END {
        if (NR == 0) print "n/a";
        else if (NR % 2) print v[(NR + 1) / 2];
        else printf "%.10g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Thousands separators for the tables.
fmt_int() {
    LC_ALL=C awk -v n="$1" 'BEGIN {
        if (n == "n/a") { print n; exit }
        s = sprintf("%.0f", n); out = "";
        while (length(s) > 3) { out = "," substr(s, length(s) - 2) out; s = substr(s, 1, length(s) - 3) }
        print s out }'
}

# ---- one run: fresh gateway, warm-up, measured load, CPU and RSS ----

# run_once SCENARIO INDEX -> appends a line to $WORK/<scenario>.runs:
#   spans spans_per_sec gw_cpu_s spans_per_gw_cpu_s cpu_util rss_mib p50 p99 errors seconds
# and, for an exporter scenario, to $WORK/<scenario>.sink:
#   spans_accepted_incl_warmup spans_at_sink drain_s sink_bad_requests
run_once() {
    local scenario=$1 i=$2
    local config=$ROOT/bench/$scenario.yaml
    local proto port
    proto=$(scenario_protocol "$config")
    port=$(scenario_port "$config")
    start_backend "$config" "$WORK/$scenario.$i.sink.log"
    start_gateway "$config" "$WORK/$scenario.$i.log"
    local warm warm_spans lg_args
    read -r -a lg_args <<<"$(scenario_loadgen_args "$config")"
    warm=$("$LOADGEN" --protocol "$proto" --endpoint "127.0.0.1:$port" --duration "$BENCH_WARMUP" \
        --concurrency "$BENCH_CONCURRENCY" --seed 99 --quiet "${lg_args[@]}" | grep '^RESULT') ||
        echo "bench: warm-up of $scenario saw errors" >&2
    warm_spans=$(field spans "$warm")
    # The backlog of the warm-up must not be exported on the measured run's CPU time.
    if [[ -n $SINK_PID ]]; then wait_drained "${warm_spans:-0}" >/dev/null; fi
    local t0 t1 rss result drain="" maddr sampler="" qfile=$WORK/$scenario.$i.queue
    maddr=$(scenario_metrics_addr "$config")
    : >"$qfile"
    if [[ -n $SINK_PID && -n $maddr ]]; then
        sample_queue "$maddr" "$qfile" &
        sampler=$!
    fi
    t0=$(cpu_ticks "$GW_PID")
    result=$("$LOADGEN" --protocol "$proto" --endpoint "127.0.0.1:$port" \
        --duration "$BENCH_SECONDS" --concurrency "$BENCH_CONCURRENCY" --seed "$i" --quiet \
        "${lg_args[@]}" |
        grep '^RESULT') || true
    if [[ -n $sampler ]]; then
        kill "$sampler" 2>/dev/null || true
        wait "$sampler" 2>/dev/null || true
    fi
    # With a sink, waiting for it replaces the fixed settling time (the batch processor's
    # flush is one of the things waited for).
    if [[ -n $SINK_PID && -n $result ]]; then
        drain=$(wait_drained "$((${warm_spans:-0} + $(field spans "$result")))")
    else
        sleep "$SETTLE_SECONDS"
    fi
    t1=$(cpu_ticks "$GW_PID")
    rss=$(peak_rss_kib "$GW_PID")
    stop_gateway
    stop_backend
    [[ -n $result ]] || die "loadgen produced no RESULT for $scenario (see $WORK/$scenario.$i.log)"
    local sink_result=$SINK_RESULT accepted=$((${warm_spans:-0} + $(field spans "$result")))
    if [[ -n $drain ]]; then
        [[ -n $sink_result ]] || die "the sink printed no RESULT for $scenario (see $WORK/$scenario.$i.sink.log)"
        echo "$accepted $(field spans "$sink_result") $drain $(field bad "$sink_result")" \
            >>"$WORK/$scenario.sink"
        echo "bench: $scenario run $i: the sink received $(field spans "$sink_result") of $accepted accepted spans (warm-up included); all there ${drain} s after the load ended" >&2
        if [[ -s $qfile ]]; then
            echo "bench: $scenario run $i: exporter queue size (batches) during the measured load, one sample per ${QUEUE_SAMPLE_SECONDS} s: $(awk '{ printf "%s%s", (NR > 1 ? " " : ""), $1 } END { print "" }' "$qfile")" >&2
        fi
    fi
    local spans sps secs p50 p99 errors
    spans=$(field spans "$result")
    sps=$(field spans_per_sec "$result")
    secs=$(field seconds "$result")
    p50=$(field p50_ms "$result")
    p99=$(field p99_ms "$result")
    errors=$(field errors "$result")
    awk -v s="$spans" -v sps="$sps" -v t0="$t0" -v t1="$t1" -v tck="$CLK_TCK" -v rss="$rss" \
        -v p50="$p50" -v p99="$p99" -v e="$errors" -v secs="$secs" 'BEGIN {
            cpu = (t1 - t0) / tck;
            per = cpu > 0 ? s / cpu : 0;
            printf "%.0f %.0f %.2f %.0f %.2f %.1f %s %s %d %s\n",
                   s, sps, cpu, per, (secs > 0 ? cpu / secs : 0), rss / 1024, p50, p99, e, secs
        }' >>"$WORK/$scenario.runs"
    echo "bench: $scenario run $i: $(tail -n1 "$WORK/$scenario.runs" | awk '{
        printf "%s spans/s, %s gateway CPU-s, %s spans per gateway CPU-second, %s MiB peak, %s errors",
               $2, $3, $4, $6, $9 }')" >&2
}

# column N of a scenario's runs, medianed
col_median() {
    awk -v c="$2" '{print $c}' "$WORK/$1.runs" | median
}

# ---- the profile ----

choose_profiler() {
    case $BENCH_PROFILE in
        auto)
            # perf's call graphs need hardware counters to be worth much; many VMs have
            # none, and then callgrind (instruction counts) is the dependable view.
            if perf_hw_counters; then
                echo perf
            elif command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null; then
                echo callgrind
            else
                echo none
            fi
            ;;
        perf | callgrind | none) echo "$BENCH_PROFILE" ;;
        *) die "BENCH_PROFILE must be auto, perf, callgrind or none" ;;
    esac
}

perf_hw_counters() {
    command -v perf >/dev/null &&
        perf stat -x, -e instructions true 2>&1 >/dev/null | grep -Eq '^[0-9]+,'
}

# A software-clock sample works even without hardware counters.
perf_sw_clock() {
    command -v perf >/dev/null &&
        perf record -q -e cpu-clock -o "$WORK/perf.probe" true >/dev/null 2>&1
}

# profile_perf SCENARIO EVENT CALLGRAPH(yes|no): samples the gateway under load; writes
# Markdown tables to stdout. Kernel time is included: it is the gateway's time too.
profile_perf() {
    local scenario=$1 event=$2 callgraph=$3
    local config=$ROOT/bench/$scenario.yaml proto port data=$WORK/perf.$event.data
    proto=$(scenario_protocol "$config")
    port=$(scenario_port "$config")
    start_backend "$config" "$WORK/profile.perf.sink.log"
    start_gateway "$config" "$WORK/profile.perf.log"
    # the scenario's own loadgen options (a --rate above all): the profile shows the
    # gateway in the state that was measured
    local lg_args
    read -r -a lg_args <<<"$(scenario_loadgen_args "$config")"
    "$LOADGEN" --protocol "$proto" --endpoint "127.0.0.1:$port" --duration "$BENCH_WARMUP" \
        --concurrency "$BENCH_CONCURRENCY" --quiet "${lg_args[@]}" >/dev/null || true
    "$LOADGEN" --protocol "$proto" --endpoint "127.0.0.1:$port" \
        --duration "$((PERF_SECONDS + 2))" --concurrency "$BENCH_CONCURRENCY" --quiet \
        "${lg_args[@]}" >/dev/null &
    local lg=$! g=()
    [[ $callgraph == yes ]] && g=(-g)
    perf record -q -e "$event" "${g[@]}" -o "$data" -p "$GW_PID" -- sleep "$PERF_SECONDS" \
        >/dev/null 2>"$WORK/perf.err" || true
    wait "$lg" || true
    stop_gateway
    stop_backend
    echo "\`perf record -e $event${g:+ ${g[*]}} -p <gateway pid> -- sleep $PERF_SECONDS\` while loadgen"
    echo "drove $scenario (concurrency $BENCH_CONCURRENCY). Shares of the gateway's sampled CPU time,"
    echo "user and kernel."
    if [[ $callgraph == yes ]]; then
        echo
        echo "Top $PROFILE_TOP by inclusive cost (children included):"
        echo
        echo '| % inclusive | % self | function |'
        echo '| ---: | ---: | --- |'
        perf report -i "$data" --children --sort symbol --stdio 2>/dev/null |
            awk -v top="$PROFILE_TOP" '/^ +[0-9.]+% +[0-9.]+% / {
                sym = $0; sub(/^ +[0-9.]+% +[0-9.]+% +\[[^]]*\] +/, "", sym);
                sub(/[ -]+$/, "", sym); gsub(/\|/, "\\|", sym);
                if (sym ~ /^0+$/) next;
                if (n++ < top) printf "| %s | %s | `%s` |\n", $1, $2, sym }'
    fi
    echo
    echo "By object (shared library, the gateway binary, the kernel):"
    echo
    echo '| % self | object |'
    echo '| ---: | --- |'
    perf report -i "$data" --no-children --sort dso -g none --stdio 2>/dev/null |
        awk -v top="$PROFILE_TOP" '/^ +[0-9.]+% / {
            if (n++ < top) printf "| %s | %s |\n", $1, $2 }'
    echo
    echo "Top $PROFILE_TOP functions by self cost (addresses without a symbol are summed per object):"
    echo
    echo '| % self | function | object |'
    echo '| ---: | --- | --- |'
    perf report -i "$data" --no-children --sort dso,symbol -g none --stdio 2>/dev/null |
        awk '/^ +[0-9.]+% / {
            pct = $1; sub(/%/, "", pct); dso = $2; sym = $0;
            sub(/^ +[0-9.]+% +[^ ]+ +\[[^]]*\] +/, "", sym);
            sub(/[ -]+$/, "", sym); gsub(/\|/, "\\|", sym);
            if (sym ~ /^0x[0-9a-f]+$/) sym = "(no symbol)";
            share[sym "\t" dso] += pct }
            END { for (k in share) printf "%.2f\t%s\n", share[k], k }' |
        sort -t "$(printf '\t')" -k1,1gr |
        awk -F '\t' -v top="$PROFILE_TOP" 'NR <= top { printf "| %s%% | `%s` | %s |\n", $1, $2, $3 }'
}

# profile_callgrind SCENARIO: instruction counts of a short run under valgrind.
profile_callgrind() {
    local scenario=$1
    local config=$ROOT/bench/$scenario.yaml proto port out=$WORK/callgrind.out
    proto=$(scenario_protocol "$config")
    port=$(scenario_port "$config")
    start_backend "$config" "$WORK/profile.callgrind.sink.log"
    start_gateway "$config" "$WORK/profile.callgrind.log" \
        valgrind --tool=callgrind --callgrind-out-file="$out" --quiet
    # Start-up (dynamic linking, config, gRPC init) stays in: zeroing the counters with
    # callgrind_control -z mid-run garbles the self costs of the frames then active.
    "$LOADGEN" --protocol "$proto" --endpoint "127.0.0.1:$port" \
        --requests "$BENCH_PROFILE_REQUESTS" --concurrency 2 --timeout 60 --quiet \
        >"$WORK/profile.loadgen" || true
    sleep "$SETTLE_SECONDS"
    stop_gateway "$STOP_TIMEOUT_VALGRIND"
    stop_backend
    if [[ ! -s $out ]]; then
        echo "callgrind produced no output."
        return 0
    fi
    callgrind_annotate --inclusive=yes --threshold=100 "$out" >"$WORK/cg.incl" 2>/dev/null || true
    callgrind_annotate --inclusive=no --threshold=100 "$out" >"$WORK/cg.self" 2>/dev/null || true
    local sent
    sent=$(field spans "$(grep '^RESULT' "$WORK/profile.loadgen" || true)")
    echo "\`valgrind --tool=callgrind\` on the gateway while \`loadgen --requests $BENCH_PROFILE_REQUESTS"
    echo "--concurrency 2\` sent ${sent:-?} spans over $scenario (start-up included). Cost ="
    echo "instructions executed (Ir) in user space, all threads; system-call and page-fault time"
    echo "do not show here. A name like 0x66d0 is a function without a symbol (a static"
    echo "function of a stripped library); such names are left out of the inclusive table."
    echo
    echo "Top $PROFILE_TOP by inclusive cost:"
    echo
    echo '| Ir inclusive | % | function (file or object) |'
    echo '| ---: | ---: | --- |'
    cg_table "$WORK/cg.incl" incl
    echo
    echo "Top $PROFILE_TOP by self cost:"
    echo
    echo '| Ir self | % | function (file or object) |'
    echo '| ---: | ---: | --- |'
    cg_table "$WORK/cg.self" self
}

# Writes $WORK/profile.md (Markdown): perf for every scenario when it has hardware
# counters; otherwise callgrind for the first scenario, plus a perf software-clock
# sample of every scenario when perf can take one.
run_profile() {
    local tool=$1 first=${BENCH_SCENARIOS%% *} scenario
    case $tool in
        perf)
            for scenario in $BENCH_SCENARIOS; do
                echo "#### perf: $scenario"
                echo
                profile_perf "$scenario" cycles yes
                echo
            done >"$WORK/profile.md"
            ;;
        callgrind)
            {
                echo "#### callgrind: $first"
                echo
                profile_callgrind "$first"
                echo
                # Without hardware counters perf can still sample a software clock: no
                # dependable call graph, but self time, the kernel's included.
                if perf_sw_clock; then
                    for scenario in $BENCH_SCENARIOS; do
                        echo "#### perf (software clock): $scenario"
                        echo
                        profile_perf "$scenario" cpu-clock no
                        echo
                    done
                fi
            } >"$WORK/profile.md"
            ;;
        none)
            echo "No profile taken (BENCH_PROFILE=none, or neither perf nor valgrind found)." \
                >"$WORK/profile.md"
            ;;
    esac
}

# cg_table FILE incl|self: rows of a callgrind_annotate listing as a Markdown table. The
# listing has a header, the PROGRAM TOTALS line, then (after the sixth dashed line) cost
# lines like "1,234,567 (12.34%)  path/file.c:function [/path/object]", with "???" for the
# file when there is no debug info. Paths are cut to base names. Recursion levels
# (function'2) are skipped for inclusive cost (it would be counted once per level) and
# added into the function's own line for self cost.
cg_table() {
    awk -v mode="$2" '
        /^-+$/ { dashes++; next }
        /PROGRAM TOTALS/ { total = $1; gsub(/,/, "", total) }
        dashes < 6 || !/^ *[0-9,]+ \( *[0-9.]+%\) / { next }
        {
            ir = $1; gsub(/,/, "", ir);
            fn = $0; sub(/^ *[0-9,]+ \( *[0-9.]+%\) +/, "", fn);
            obj = "";
            if (match(fn, / \[[^]]*\]$/)) {
                obj = substr(fn, RSTART + 2, RLENGTH - 3); fn = substr(fn, 1, RSTART - 1);
                sub(/^.*\//, "", obj)
            }
            if (fn ~ /^\?\?\?:/) { sub(/^\?\?\?:/, "", fn); where = obj }
            else { where = fn; sub(/:.*/, "", where); sub(/^.*\//, "", where); sub(/^[^:]*:/, "", fn) }
            # Inclusive: callgrind merges symbol-less functions of different objects that
            # share an address, so their inclusive cost means nothing.
            if (mode == "incl" && fn ~ /^0x[0-9a-f]+$/) next;
            if (fn ~ /'"'"'[0-9]+$/) {
                if (mode == "incl") next;
                sub(/'"'"'[0-9]+$/, "", fn)
            }
            gsub(/\|/, "\\|", fn);
            key = fn "\t" where;
            cost[key] += ir
        }
        END { for (k in cost) printf "%.0f\t%s\t%.2f\n", cost[k], k, total ? 100 * cost[k] / total : 0 }
    ' "$1" | sort -t "$(printf '\t')" -k1,1nr |
        awk -F '\t' -v top="$PROFILE_TOP" 'NR <= top {
            n = $1; out = "";
            while (length(n) > 3) { out = "," substr(n, length(n) - 2) out; n = substr(n, 1, length(n) - 3) }
            printf "| %s | %s%% | `%s` (%s) |\n", n out, $4, $2, $3 }'
}

# ---- main ----

# Other work on the machine skews CPU-time figures (shared caches, frequency): say how busy
# it was when the run began.
load_before=$(cut -d' ' -f1 /proc/loadavg)
build_type=$(awk -F= '/^CMAKE_BUILD_TYPE:/ {print $2}' "$BUILD/CMakeCache.txt" 2>/dev/null || true)
[[ $build_type == Release ]] ||
    echo "bench: warning: $BUILD_ARG is a '${build_type:-unknown}' build; use -DCMAKE_BUILD_TYPE=Release for figures worth comparing" >&2

for scenario in $BENCH_SCENARIOS; do
    [[ -f $ROOT/bench/$scenario.yaml ]] || die "no scenario config bench/$scenario.yaml"
    : >"$WORK/$scenario.runs"
    rm -f "$WORK/$scenario.sink"
    for ((i = 1; i <= BENCH_REPEAT; i++)); do
        run_once "$scenario" "$i"
    done
done

echo "bench: decode floor (decode_bench, ${BENCH_DECODE_SECONDS} CPU-s per case)" >&2
"$DECODE_BENCH" --seconds "$BENCH_DECODE_SECONDS" >"$WORK/decode.out"
decode_result() {
    field spans_per_cpu_sec "$(grep "^RESULT case=$1 " "$WORK/decode.out")"
}
dec_arena=$(decode_result lg_batch_decode)
dec_malloc=$(decode_result protobuf_c_malloc)
dec_encode=$(decode_result lg_batch_encode)
dec_arena_us=$(field us_per_request "$(grep '^RESULT case=lg_batch_decode ' "$WORK/decode.out")")
dec_malloc_us=$(field us_per_request "$(grep '^RESULT case=protobuf_c_malloc ' "$WORK/decode.out")")
dec_encode_us=$(field us_per_request "$(grep '^RESULT case=lg_batch_encode ' "$WORK/decode.out")")
avg_kib=$(sed -n 's/.*spans, \([0-9.]*\) KiB per request.*/\1/p' "$WORK/decode.out")

profiler=$(choose_profiler)
echo "bench: profile with $profiler" >&2
run_profile "$profiler"

# ---- the report ----

# The sending queue of an exporter scenario, in words, from its config.
scenario_queue() {
    local config=$ROOT/bench/$1.yaml fsync
    if grep -Eq '^ +storage: *file_storage' "$config"; then
        fsync=$(grep -Eo -m1 '^ +fsync: *(true|false)' "$config" | sed 's/.*: *//')
        echo "persistent (file_storage, fsync: ${fsync:-false})"
    else
        echo "memory"
    fi
}

scenario_compression() {
    local c
    c=$(awk '/^exporters:/ {e = 1; next} /^[^ #]/ {e = 0} e && /^ +compression:/ {print $2; exit}' \
        "$ROOT/bench/$1.yaml")
    echo "${c:-gzip}"
}

TARGET=300000
cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
mem_gib=$(awk '/^MemTotal:/ {printf "%.0f", $2 / 1048576}' /proc/meminfo)
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "none yet")
if [[ -n $(git -C "$ROOT" status --porcelain 2>/dev/null) ]]; then
    commit="$commit (with uncommitted changes)"
fi
cmd="BENCH_SECONDS=$BENCH_SECONDS BENCH_REPEAT=$BENCH_REPEAT BENCH_CONCURRENCY=$BENCH_CONCURRENCY bench/run.sh ${BUILD_ARG#"$ROOT"/}"
[[ -n ${MAKELEVEL:-} ]] && cmd="make bench ($cmd)"

report=$WORK/report.md
{
    echo "## Latest results"
    echo
    echo "_Generated by \`bench/run.sh\`; do not edit by hand between the markers._"
    echo
    echo "- Date: $(date -u +%Y-%m-%d) (UTC)"
    echo "- Machine: $(nproc) CPUs ($cpu_model), ${mem_gib} GiB RAM, Linux $(uname -r);"
    echo "  1-minute load average when the run began: $load_before"
    echo "- Commit: $commit; build type ${build_type:-unknown}"
    echo "- Command: \`$cmd\`"
    echo "- Load: loadgen with $BENCH_CONCURRENCY threads on the same machine, one request in flight per"
    echo "  thread, ${BENCH_WARMUP} s warm-up then ${BENCH_SECONDS} s measured; $BENCH_REPEAT runs per scenario,"
    echo "  each in a fresh gateway; medians shown (each column's median on its own)."
    echo "- Workload: 512 spans per request (~${avg_kib:-?} KiB protobuf), traces of ~10 spans,"
    echo "  8 attributes per span, every 10th span an LLM span, 1% of traces with an error."
    echo
    echo "| scenario | spans/s accepted | gateway CPU-s | **spans per gateway CPU-second** | gateway CPU use (cores) | peak RSS (MiB) | latency p50 / p99 (ms) | failed requests |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for scenario in $BENCH_SCENARIOS; do
        echo "| $scenario | $(fmt_int "$(col_median "$scenario" 2)") | $(col_median "$scenario" 3) | **$(fmt_int "$(col_median "$scenario" 4)")** | $(col_median "$scenario" 5) | $(col_median "$scenario" 6) | $(col_median "$scenario" 7) / $(col_median "$scenario" 8) | $(awk '{s += $9} END {print s + 0}' "$WORK/$scenario.runs") |"
    done
    echo
    exporter_scenarios=""
    for scenario in $BENCH_SCENARIOS; do
        [[ -s $WORK/$scenario.sink ]] && exporter_scenarios="$exporter_scenarios $scenario"
    done
    if [[ -n $exporter_scenarios ]]; then
        echo "Exporter path: every span must reach the backend, \`sink --grpc\` on the same machine"
        echo "(it decodes and counts each request). For these scenarios the measurement ends only"
        echo "when the sink has every accepted span (or nothing arrived for ${DRAIN_STALL_SECONDS} s), so the"
        echo "gateway CPU-s above cover receiving, queueing, encoding, compressing and sending."
        echo "Counts are summed over all runs, warm-up included; \"missing\" = accepted by the gateway"
        echo "but not at the sink when the gateway had stopped (a persistent queue would send those"
        echo "after a restart; a memory queue has lost them). Persistent queues on"
        echo "$(findmnt -n -o FSTYPE -T "$BENCH_QUEUE_DIR" 2>/dev/null || echo '?') ($(df -P "$BENCH_QUEUE_DIR" 2>/dev/null | awk 'NR == 2 {print $1}'))."
        echo
        echo "| scenario | sending queue | compression | spans accepted | spans at the sink | missing | s from the end of the load until all arrived (median) | bad requests at the sink |"
        echo "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"
        for scenario in $exporter_scenarios; do
            awk -v sc="$scenario" -v q="$(scenario_queue "$scenario")" \
                -v comp="$(scenario_compression "$scenario")" \
                -v drain="$(awk '{print $3}' "$WORK/$scenario.sink" | median)" '
                { acc += $1; got += $2; bad += $4 }
                END {
                    miss = acc - got;
                    m = miss >= 0 ? sprintf("%.0f", miss) : sprintf("0 (%.0f duplicates)", -miss);
                    printf "| %s | %s | %s | %.0f | %.0f | %s | %s | %.0f |\n",
                           sc, q, comp, acc, got, m, drain, bad }' "$WORK/$scenario.sink" |
                awk -F ' [|] ' -v OFS=' | ' '{ for (f = 4; f <= 5; f++) $f = fmt($f); print }
                    function fmt(n, out) { out = "";
                        while (length(n) > 3) { out = "," substr(n, length(n) - 2) out; n = substr(n, 1, length(n) - 3) }
                        return n out }'
        done
        echo
    fi
    echo "Decode-only floor (one thread, \`decode_bench --seconds $BENCH_DECODE_SECONDS\`; the gateway can never beat the first line):"
    echo
    echo "| case | spans per CPU-second | µs per 512-span request |"
    echo "| --- | ---: | ---: |"
    echo "| \`lg_batch_decode\` (arena, what the receiver does) | $(fmt_int "$dec_arena") | $dec_arena_us |"
    echo "| \`protobuf_c_message_unpack\` (default malloc) | $(fmt_int "$dec_malloc") | $dec_malloc_us |"
    echo "| \`lg_batch_encode\` (re-encoding, as an OTLP exporter must) | $(fmt_int "$dec_encode") | $dec_encode_us |"
    echo
    first=${BENCH_SCENARIOS%% *}
    if [[ $first == grpc_batch_debug ]]; then
        headline=$(col_median grpc_batch_debug 4)
        verdict=$(awk -v h="$headline" -v t="$TARGET" 'BEGIN { print (h >= t) ? "met" : "not met" }')
        echo "Target: ≥ $(fmt_int "$TARGET") spans per gateway CPU-second on OTLP/gRPC pass-through —"
        echo "**$verdict** ($(fmt_int "$headline"))."
        echo
    fi
    echo "<details><summary>Every run</summary>"
    echo
    echo "| scenario | run | spans accepted | spans/s | gateway CPU-s | spans per gateway CPU-s | CPU use | peak RSS (MiB) | p50 / p99 (ms) | failed |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for scenario in $BENCH_SCENARIOS; do
        awk -v sc="$scenario" '{ printf "| %s | %d | %s | %s | %s | %s | %s | %s | %s / %s | %s |\n",
            sc, NR, $1, $2, $3, $4, $5, $6, $7, $8, $9 }' "$WORK/$scenario.runs"
    done
    if [[ -n $exporter_scenarios ]]; then
        echo
        echo "| scenario | run | spans accepted (warm-up included) | spans at the sink | s from the end of the load until all arrived | bad requests at the sink |"
        echo "| --- | ---: | ---: | ---: | ---: | ---: |"
        for scenario in $exporter_scenarios; do
            awk -v sc="$scenario" '{ printf "| %s | %d | %s | %s | %s | %s |\n", sc, NR, $1, $2, $3, $4 }' \
                "$WORK/$scenario.sink"
        done
    fi
    echo
    echo "</details>"
    echo
    echo "### Where the gateway's time goes"
    echo
    cat "$WORK/profile.md"
} >"$report"

cat "$report"

if [[ -n $BENCH_DOC ]]; then
    mkdir -p "$(dirname "$BENCH_DOC")"
    if [[ ! -f $BENCH_DOC ]]; then
        # shellcheck disable=SC2016 # backquotes are Markdown here
        printf '# Benchmarks\n\nHow to run: `make bench` (see bench/run.sh).\n\n<!-- bench:start -->\n<!-- bench:end -->\n' >"$BENCH_DOC"
    fi
    if ! grep -q '^<!-- bench:start -->' "$BENCH_DOC" || ! grep -q '^<!-- bench:end -->' "$BENCH_DOC"; then
        printf '\n<!-- bench:start -->\n<!-- bench:end -->\n' >>"$BENCH_DOC"
    fi
    awk -v report="$report" '
        /^<!-- bench:start -->/ { print; while ((getline line < report) > 0) print line; skip = 1; next }
        /^<!-- bench:end -->/ { skip = 0 }
        !skip { print }' "$BENCH_DOC" >"$WORK/doc.new"
    cat "$WORK/doc.new" >"$BENCH_DOC"
    echo "bench: wrote ${BENCH_DOC#"$ROOT"/}" >&2
fi
