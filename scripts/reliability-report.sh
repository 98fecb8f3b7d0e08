#!/usr/bin/env bash
# Runs the fault tests (test/integration/faults_test.cpp) and the three-member rebalance scenario
# (test/integration/rebalance_test.cpp) and regenerates docs/RELIABILITY.md from the
# RELIABILITY| lines they print.
#
#   scripts/reliability-report.sh [BUILD_DIR]        default BUILD_DIR: build/dev
#
# The test binary must be built first, e.g.
#   cmake --preset dev && cmake --build build/dev --target loginflow integration_faults_test integration_rebalance_test
# Extra arguments for the test binary can be given in FAULTS_ARGS (e.g.
# FAULTS_ARGS=--gtest_filter=Faults.Sigterm*). The full test output is kept in
# BUILD_DIR/reliability.log. Exit status: 0 when every test passed or was skipped, 1 when one
# failed (the report is written anyway and says so), 2 when the binary is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-build/dev}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
bin="$build/test/integration_faults_test"
rebalance_bin="$build/test/integration_rebalance_test"
rebalance_filter="Rebalance.TwoJoinThenSigtermAndSigkill*"
out="$root/docs/RELIABILITY.md"
log="$build/reliability.log"

if [ ! -x "$bin" ] || [ ! -x "$rebalance_bin" ]; then
  echo "reliability-report: $bin or $rebalance_bin not found; build them with:" >&2
  echo "  cmake --build ${build#"$root"/} --target loginflow integration_faults_test integration_rebalance_test" >&2
  exit 2
fi

echo "reliability-report: running $bin and $rebalance_bin (about 7 minutes)" >&2
start=$(date +%s)
status=0
# shellcheck disable=SC2086  # FAULTS_ARGS is a list of arguments
"$bin" --gtest_color=no ${FAULTS_ARGS:-} >"$log" 2>&1 || status=$?
"$rebalance_bin" --gtest_color=no --gtest_filter="$rebalance_filter" >>"$log" 2>&1 || status=$?
elapsed=$(( $(date +%s) - start ))

rdkafka=$(awk '/#define RD_KAFKA_VERSION /{print $3}' /usr/include/librdkafka/rdkafka.h 2>/dev/null || true)
if [ -n "$rdkafka" ]; then
  v=$((rdkafka))
  rdkafka=$(printf '%d.%d.%d' $(( (v >> 24) & 255 )) $(( (v >> 16) & 255 )) $(( (v >> 8) & 255 )))
else
  rdkafka=unknown
fi
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$root" status --porcelain 2>/dev/null | head -1)" ]; then commit="$commit + uncommitted changes"; fi

# One record per test: name, status, time, and its RELIABILITY fields (tab-separated).
rows=$(awk '
  /^\[ RUN      \] / { test = $4; rel = "" }
  /^RELIABILITY\|/   { sub(/^RELIABILITY\|/, ""); rel = $0 }
  /^\[ +(OK|FAILED|SKIPPED) +\] (Faults|Rebalance)\./ {
    st = $0; sub(/^\[ +/, "", st); sub(/ +\].*/, "", st)
    name = $0; sub(/^\[[^]]*\] /, "", name); t = name; sub(/ .*/, "", name)
    if (name != test) next
    ms = t; sub(/^[^(]*\(/, "", ms); sub(/ ms\).*/, "", ms)
    print name "\t" st "\t" ms "\t" rel
    test = ""
  }' "$log")

if [ -z "$rows" ]; then
  echo "reliability-report: no test result in $log (status $status)" >&2
  tail -20 "$log" >&2
  exit 1
fi

{
  cat <<'EOF'
# Reliability under faults

What loginflow guarantees (`SPEC.md`, "Guarantees"): at-least-once — an input
offset is committed only after its output or dead letter, and those of every earlier offset of its
partition, have been acknowledged; nothing is lost on a graceful stop, a SIGKILL, broker errors, a
broker restart or a rebalance; after a crash the duplicates are bounded by what was in flight.
This page is the evidence: each fault below is injected into a real run and every record is
accounted for.

## How the faults are run

Each test (in `test/integration/faults_test.cpp`) starts the embedded broker in the test process
(librdkafka's mock cluster, 3 brokers: broker 1 leads every `user-login` partition, broker 2 every
`processed-user-login`, `user-login-dlq` and `login-insights` partition, broker 3 is the group
coordinator, so that a fault targets loginflow and not the test's own clients). A producer thread
feeds generated user-login events (each with its own user id; 3 % malformed, 30 % in the poison
test) at a fixed rate while the **real `loginflow run` binary** runs as a child process
(`--workers 2 -X consumer.session.timeout.ms=6000 -X consumer.heartbeat.interval.ms=500`). The
fault is injected once a share of the results is written (a condition, never a fixed sleep) through
the mock's API, the run is left to finish, loginflow is stopped with SIGTERM, and the input,
output and dead-letter topics are read back whole.

| fault | how it is injected |
| --- | --- |
| SIGKILL at 5 points | `kill -9` once at least 15, 30, 45, 60, 75 % of the inputs are done (counted by identity: distinct inputs with a result) — kills 1, 3, 4 in steady state (caught up, a second into the live stream), 2 and 5 in the middle of the catch-up burst right after a restart (`--queue-capacity 4096` records in flight; the end of the input stands in when a slow run sees the producer finish first); kill 3 while the output leader refuses every write (10 × NOT_ENOUGH_REPLICAS answered after 3 s each), after two commits made during the refusals — restarted each time with the same group |
| SIGTERM at 3 points | SIGTERM at 25, 50, 75 % of the results; must exit 0 within `--shutdown-timeout 20s`; restarted with the same group |
| Produce errors, retriable | `rd_kafka_mock_broker_push_request_error_rtts` on the output leader, ApiKey Produce: NOT_LEADER_FOR_PARTITION, REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS(_AFTER_APPEND), LEADER_NOT_AVAILABLE, and disconnects (`_TRANSPORT`), 24 in all |
| Produce errors, non-retriable | the same with MSG_SIZE_TOO_LARGE, TOPIC_AUTHORIZATION_FAILED, INVALID_RECORD, 9 in all: librdkafka fails those messages (a failed delivery report, not a fatal error of the idempotent producer: loginflow does not exit) and loginflow's delivery thread produces them again with backoff until acknowledged |
| Fetch errors | on the input leader, ApiKey Fetch: NOT_LEADER_FOR_PARTITION, REQUEST_TIMED_OUT, LEADER_NOT_AVAILABLE, UNKNOWN_TOPIC_OR_PART, KAFKA_STORAGE_ERROR, disconnects |
| Heartbeat + JoinGroup errors (rejoin) | on the coordinator: Heartbeat COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR, REQUEST_TIMED_OUT, COORDINATOR_LOAD_IN_PROGRESS, then REBALANCE_IN_PROGRESS (the member rejoins, as on every rebalance), whose JoinGroup meets COORDINATOR_LOAD_IN_PROGRESS |
| Coordinator down past the session timeout, assignment lost | `rd_kafka_mock_broker_set_down` on the group coordinator (which leads no partition) for the session timeout + 3 s: the group evicts the member, whose next heartbeat gets UNKNOWN_MEMBER_ID, and its partitions are lost (the group's view of a crash); fetching and producing go on meanwhile |
| OffsetCommit errors | on the coordinator, ApiKey OffsetCommit: COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR, REQUEST_TIMED_OUT, COORDINATOR_LOAD_IN_PROGRESS |
| Broker down 5 s / up, leaders moved | `rd_kafka_mock_broker_set_down` / `_set_up`: the output leader, then the input leader, down for 5 s each; then every partition's leader moved (`rd_kafka_mock_partition_set_leader`: input 1 → 2, outputs 2 → 1); then the new input leader down for 5 s |
| Output stuck (leader down) + backlog | the output leader down for ~7 s while a backlog of ~100 MiB (100,000 events of ~1 KiB) arrives; loginflow's peak resident memory (VmHWM) must stay within `--queue-capacity` (1000) records plus librdkafka's prefetch limits (set to 4 MiB and 256 KiB per partition here) plus 32 MiB, well below the backlog; then the run must recover |
| Output leader + coordinator down while paused, assignment lost | one broker leads every output partition and coordinates the group; it goes down for the session timeout + 6 s with `--queue-capacity 2048`: the slots fill, fetching is paused, the member is evicted, the assignment is lost and comes back to it (the stall once seen by hand: librdkafka keeps an application's pause across an unassign and an assign); must catch up within 30 s of the fault's end |
| Output leader down while paused, partitions revoked and returned | the output leader down until fetching is paused; a second member joins (some partitions revoked while paused), the output comes back, the second member leaves with SIGTERM and its partitions return to the first; must catch up within 30 s |
| Input removed by retention while paused (gap) | one partition; the output leader down while a backlog twice the embedded broker's 5 MiB retention arrives, so records are removed before loginflow fetched them: loginflow must report the gap (`loginflow_input_gaps_total`, a warning with the range), exactly the inputs in that range have no result (the audit takes the removed inputs from what the test produced) |
| Poison events 30 % | 30 % of the stream malformed, cycling through every dead-letter reason (including values over 1 MB), mixed with good events |
| Rebalance: 2 join, 1 SIGTERM, 1 SIGKILL | (`test/integration/rebalance_test.cpp`, one broker, 12 partitions, 600 keys, `--ordering key`, `--queue-capacity 1024`, session timeout 3 s) instance A alone, then B and C join mid-stream; B gets SIGTERM (must exit 0), C gets SIGKILL with records in flight; A finishes the stream. Duplicates must come from C's kill or from a point where a member gave partitions up without its commit (an assignment lost, a revoke whose commit was refused; each logged by loginflow and taken as a replay point as it happens); per key, the outputs must follow input order except for one replay per such point |

## What the columns mean

- **events in**: input records (all accounted for; every one has a unique identity: its partition
  and offset, named by a dead letter's `source.partition`/`source.offset` headers, and by an
  output's key — each event carries its own user id).
- **lost**: inputs with neither an output nor a dead letter at the end, because of loginflow. Must
  be 0, always. A result loginflow's producer had acknowledged, that the embedded broker never
  stored, is not loginflow's loss: the notes report it as a known issue of the embedded broker
  (see below), and the test fails on any loss it cannot attribute so.
- **duplicated**: results beyond the first for one input (outputs and dead letters together).
  Must be 0 unless the fault is a crash or takes the partitions away from the member (SIGKILL, an
  assignment lost); then every duplicate must be of an input that was not committed at the kill
  or loss, and their number at most `--queue-capacity` plus what was done but not committed, per
  kill or loss (the bound is in the notes). Duplicates are told apart: *reprocessed* (the input
  was processed again: a new `processed_at`, a new record timestamp) and *replayed* (one produced
  record stored twice, byte for byte with the same timestamp: after a disconnect the idempotent
  producer resends requests whose answer it never got; a real broker recognises and drops those,
  the embedded broker of librdkafka 2.0.2 does not). Replays are tolerated, and reported, only in
  the tests that disconnect loginflow's producer (Produce `_TRANSPORT`, brokers down).
- Every test also checks that each output equals the transform of its input (ignoring
  `processed_at`), that each dead letter carries the right reason and the input unchanged, and
  that the group's committed offsets equal the input's end offsets after the final stop.
- **recovery**: from the end of the fault (error stack answered, broker up, leaders moved,
  process restarted) until everything produced by then has been processed and its offsets
  committed (so it includes loginflow's 1 s commit interval, librdkafka's reconnect backoff of up
  to 10 s, and for a restart the mock's eviction of the killed member). The slowest of the
  phases/restarts is shown; each one is in the notes. For the poison test: from the last input
  to everything committed.

## Results

EOF
  echo "Generated by \`scripts/reliability-report.sh ${build#"$root"/}\` on $(date -u '+%Y-%m-%d %H:%M UTC') (commit $commit, librdkafka $rdkafka, $(nproc) CPUs), which ran \`${bin#"$root"/}${FAULTS_ARGS:+ $FAULTS_ARGS}\` and \`${rebalance_bin#"$root"/} --gtest_filter=$rebalance_filter\` in ${elapsed} s. Do not edit by hand: run the script again."
  echo
  echo "| fault | load | events in | lost | duplicated | recovery | test |"
  echo "| --- | --- | ---: | ---: | ---: | ---: | --- |"
  printf '%s\n' "$rows" | awk -F'\t' '{
    split($4, r, "|")
    rec = (r[6] == "" ? "" : (r[6] < 0 ? "none" : sprintf("%.1f s", r[6] / 1000)))
    fault = (r[1] == "" ? $1 : r[1])
    printf "| %s | %s | %s | %s | %s | %s | %s (%.0f s) |\n", fault, r[2], r[3], r[4], r[5], rec, $2, $3 / 1000
  }'
  echo
  echo "### Notes per test"
  echo
  printf '%s\n' "$rows" | awk -F'\t' '{
    split($4, r, "|")
    fault = (r[1] == "" ? $1 : r[1])
    note = r[7]
    if ($2 == "SKIPPED") note = note " — **skipped** (known issue below), after checking no loss and the duplicate bound"
    if ($2 == "FAILED") note = note " — **FAILED**, see the test output"
    printf "- **%s** (`%s`): %s\n", fault, $1, note
  }'
  echo
  cat <<'EOF'
## Known issue: assignments lost when a member rejoins (librdkafka 2.0.2)

With the cooperative-sticky protocol, an offset commit sent while the member is rejoining the
group is refused with ILLEGAL_GENERATION; librdkafka 2.0.2 then sends a second JoinGroup, the
generation moves on, its SyncGroup is refused and it drops the assignment as **lost**
(confluentinc/librdkafka#4059, fixed upstream by PR #4908). What loginflow does about it:

- its periodic commits are librdkafka's auto-commit (`enable.auto.commit=true`) of the offsets
  loginflow stores (`enable.auto.offset.store=false`, `rd_kafka_offsets_store` of what its
  outputs' acknowledgements allow, every 100 ms). librdkafka skips an auto-commit while the member
  is not in a steady state, which a commit sent by the application cannot know. Before this, the
  three-member scenario lost an assignment 5 to 7 times per run; since, once in 2 of 11 runs;
- on a loss all the same it still finishes what is in flight for those partitions and remembers
  how far their outputs got; when a partition comes back to it, it resumes there (when the
  group's committed offset is behind) and commits that position, so no work is done twice (the
  coordinator-outage test above);
- a partition lost to another member is processed again by that member from the last committed
  offset: duplicates, never a loss (the three-member scenario counts them as replays of the loss
  and checks their bound).

The embedded broker also refuses (REBALANCE_IN_PROGRESS) the commit a member sends while it gives
partitions up in a cooperative rebalance, once another member has rejoined first; loginflow logs
"revoking [..] without committing their progress" and the next owner redoes the work since the
last commit (at most a second's worth, plus what was in flight). A real broker accepts a commit
of the current generation while the group prepares a rebalance. In the same 11 runs of the
three-member scenario, 3 had such refused commits (1 or 2 each), and 6 had no duplicates but
the killed member's.

## Known issue: results acknowledged and not stored by the embedded broker

librdkafka's idempotent producer numbers each partition's batches. A real broker stores a batch
only if it follows the last one it stored, and refuses it otherwise (OUT_OF_ORDER_SEQUENCE_NUMBER).
So when a later batch is accepted while an earlier one is still waiting for its answer (its
request failed on a disconnect or was sent to the old leader), librdkafka 2.0.2 counts the earlier
records as delivered too ("implicitly acked by subsequent batch success"): against a real broker
they must have been stored.

The embedded broker of librdkafka 2.0.2 checks sequences for transactional producers only. After
a broker goes down or a leader moves, it can accept a later batch although an earlier one was
never stored. loginflow then gets a delivery report for a record that is not in the topic, counts
it as acknowledged and commits its input: a loss made by the test broker, not one that a Kafka
broker lets happen. In 9 runs of the broker-down test on this machine it hit 3, losing one or two
dead letters each time.

The fault tests run loginflow with `-X producer.debug=eos`, which logs every implicit
acknowledgement (IMPLICITACK, with its topic and count). The audit attributes lost results to
the broker only up to the records implicitly acknowledged on their topic; any other loss fails
the test. The notes above report such runs as "KNOWN ISSUE of the embedded broker".

The same missing check is why the broker stores a resent request twice (the *replayed*
duplicates, and input records the test's own producer stored twice: each copy is audited as an
input of its own).

## The stall after a lost assignment (issue #12), and the loss once seen

**The stall, found and fixed.** With one broker leading the outputs and coordinating the group,
an outage of that broker past the session timeout stopped consumption for good: the slots filled,
the poller paused the partitions, the assignment was lost; the poller's resume ran while nothing
was assigned, and librdkafka (2.0.2 resets only its own pause flag on assign) kept the
application's pause on the partitions when they were assigned again. `/healthz` stayed 200 and
the lag metric, taken from librdkafka's statistics, froze with the fetcher. Now the pause is kept
per partition (resumed before a partition is unassigned, set explicitly on every assign),
`consumer_lag` is read from the brokers every 2 s, and `/healthz` turns 503 when the pipeline owns
partitions with lag, has free slots and has consumed nothing for 60 s. The first two scenarios
above are the stall's, each failed before the fix (no recovery).

**The loss once seen** (an earlier stop: inputs 6/3213, 6/3214 and 6/3219 of the brokers-down
test without a result while their neighbours had one, the committed offsets past them) has not
been seen again. Since then the tests would tell each possible cause apart: an input never
consumed shows as a gap (`loginflow_input_gaps_total` and a warning with the range, checked by the
retention scenario above); a result the embedded broker acknowledged and never stored is
attributed record by record (the partition its result was due on must have had an implicit ack
logged, one ack per result, and the excused inputs are printed); any other loss fails the test
with the audit's list of lost inputs. Loops of a scenario: `scripts/fault-loop.sh FILTER 30`
(one line per run with its lost and duplicated counts, the logs of failed runs kept).

## Limits of the embedded broker

- A restarted member can only join once the killed one's session has expired and the mock has
  rebalanced: about 11 s per restart, so the SIGKILL test takes over a minute.
- The mock answers a JoinGroup after about 5 s and keeps about 5 MiB per partition (the stuck
  output test spreads its backlog over 32 partitions for that reason).
- Transactions are not verified by the mock, hence no exactly-once claim (see SPEC).
EOF
} >"$out"

echo "reliability-report: wrote ${out#"$root"/} (tests: $(printf '%s\n' "$rows" | cut -f2 | sort | uniq -c | tr -s ' ' | tr '\n' ';'))" >&2
[ "$status" -eq 0 ] || echo "reliability-report: the test binary exited with status $status; see $log" >&2
[ "$status" -eq 0 ] || exit 1
