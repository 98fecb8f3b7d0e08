// passthrough: the ceiling for loginflow in bench/run_bench.py. Consumes a topic in a consumer
// group and re-produces every record's raw bytes (key and value, no transform, no headers) to
// another topic, with loginflow's client settings:
//   consumer  enable.auto.commit=false, enable.auto.offset.store=false, auto.offset.reset=earliest,
//             cooperative-sticky, queued.max.messages.kbytes=16384, batches of up to 1024 taken
//             with rd_kafka_consume_batch_queue (non-blocking, then blocking ≤ 20 ms for the first),
//             and loginflow's fetch wake-up (loginflow/prefetch_waker.h; librdkafka 2.0)
//   producer  idempotent, acks=all, murmur2_random, lz4, linger.ms=5, message.max.bytes=1048576,
//             RD_KAFKA_MSG_F_COPY
//   offsets   at-least-once as loginflow: an input offset is committed only when its output and
//             those of every earlier offset of its partition are acknowledged; commits are
//             asynchronous every second, synchronous at stop.
// One thread does all of it (consume, produce, serve delivery reports); librdkafka's own threads
// do the I/O and compression. A rebalance is handled as librdkafka's default would (the harness
// runs a single member; records in flight for a revoked partition are not waited for). Prints
// "passthrough: assigned N partitions" on stderr on each assignment. Runs until SIGTERM/SIGINT, then
// flushes, commits and prints one JSON summary line on stdout.
//
//   passthrough --brokers B [--group-id G] [--input-topic T] [--output-topic T] [--latency [--latency-skip S]]
//               [-X [consumer.|producer.]key=value ...]
//
// -X sets a librdkafka property on both clients, or on one with the prefix (as loginflow's -X).
// --latency records, per acknowledged output, the time from the input's Kafka timestamp to the
// delivery report (as loginflow's loginflow_end_to_end_seconds) and reports exact percentiles;
// --latency-skip S leaves out inputs stamped less than S seconds after the first one (warm-up).
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

#include "loginflow/prefetch_waker.h"

namespace {

std::atomic<int> g_signal{0};
extern "C" void onSignal(int sig) { g_signal.store(sig); }

struct Entry {
  std::int64_t offset;
  std::int64_t input_ts_ms;
  bool done;
};

struct Track {
  std::deque<Entry> inflight;  // consumption order; references stay valid on push_back/pop_front
  std::int64_t commit_next = -1;  // offset to commit (last contiguous acknowledged + 1)
  bool advanced = false;          // commit_next moved since the last commit
};

struct State {
  std::unordered_map<std::int32_t, Track> tracks;
  std::uint64_t consumed = 0, produced = 0, delivered = 0, failed = 0, consume_errors = 0, queue_full_waits = 0;
  bool latency = false;
  double latency_skip_s = 0;       // ignore inputs stamped within this long of the first one
  std::int64_t latency_from_ms = -1;  // input timestamps from here on are measured
  std::vector<std::uint32_t> latency_us;
};

std::int64_t wallClockUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "passthrough: %s\n", what.c_str());
  std::exit(2);
}

void set(rd_kafka_conf_t* conf, const char* key, const std::string& value) {
  char err[512];
  if (rd_kafka_conf_set(conf, key, value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK)
    die(std::string("cannot set ") + key + ": " + err);
}

// -X properties: unprefixed ones go to both clients, prefixed ones to theirs.
void applyExtra(rd_kafka_conf_t* conf, const std::vector<std::pair<std::string, std::string>>& extra,
                const std::string& mine) {
  for (const auto& [k, v] : extra) {
    if (k.rfind("consumer.", 0) == 0 || k.rfind("producer.", 0) == 0) {
      if (k.rfind(mine, 0) == 0) set(conf, k.substr(mine.size()).c_str(), v);
    } else {
      set(conf, k.c_str(), v);
    }
  }
}

void onDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* st = static_cast<State*>(opaque);
  auto* e = static_cast<Entry*>(m->_private);
  if (m->err) {
    // Counted, never marked done: its offset (and every later one of its partition) stays
    // uncommitted, and the harness sees the missing output.
    if (++st->failed <= 5) std::fprintf(stderr, "passthrough: delivery failed: %s\n", rd_kafka_err2str(m->err));
    return;
  }
  ++st->delivered;
  e->done = true;
  if (st->latency && e->input_ts_ms > 0 && e->input_ts_ms >= st->latency_from_ms) {
    const std::int64_t us = wallClockUs() - e->input_ts_ms * 1000;
    st->latency_us.push_back(static_cast<std::uint32_t>(std::clamp<std::int64_t>(us, 0, UINT32_MAX)));
  }
}

// Moves each partition's commit point over its contiguous acknowledged prefix.
void advance(State& st) {
  for (auto& [p, t] : st.tracks) {
    while (!t.inflight.empty() && t.inflight.front().done) {
      t.commit_next = t.inflight.front().offset + 1;
      t.advanced = true;
      t.inflight.pop_front();
    }
  }
}

// librdkafka's default assignment handling, plus one line on stderr so that the harness knows
// when this member has partitions.
void onRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts, void*) {
  const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    if (cooperative) {
      if (rd_kafka_error_t* e = rd_kafka_incremental_assign(rk, parts)) rd_kafka_error_destroy(e);
    } else {
      rd_kafka_assign(rk, parts);
    }
    std::fprintf(stderr, "passthrough: assigned %d partitions\n", parts->cnt);
  } else {
    if (cooperative) {
      if (rd_kafka_error_t* e = rd_kafka_incremental_unassign(rk, parts)) rd_kafka_error_destroy(e);
    } else {
      rd_kafka_assign(rk, nullptr);
    }
    std::fprintf(stderr, "passthrough: revoked %d partitions\n", parts->cnt);
  }
}

bool commit(rd_kafka_t* consumer, State& st, const std::string& topic, bool sync) {
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(static_cast<int>(st.tracks.size()));
  for (auto& [p, t] : st.tracks) {
    if (!t.advanced && !sync) continue;
    if (t.commit_next < 0) continue;
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = t.commit_next;
    t.advanced = false;
  }
  bool ok = true;
  if (list->cnt > 0) {
    rd_kafka_resp_err_t err = rd_kafka_commit(consumer, list, sync ? 0 : 1);
    if (err && sync) {
      std::fprintf(stderr, "passthrough: commit failed: %s\n", rd_kafka_err2str(err));
      ok = false;
    }
  }
  rd_kafka_topic_partition_list_destroy(list);
  return ok;
}

double percentileMs(std::vector<std::uint32_t>& v, double q) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k] / 1000.0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string brokers, group = "passthrough", in_topic = "user-login", out_topic = "processed-user-login";
  std::vector<std::pair<std::string, std::string>> extra;  // -X key=value
  State st;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--brokers") brokers = value();
    else if (a == "--group-id") group = value();
    else if (a == "--input-topic") in_topic = value();
    else if (a == "--output-topic") out_topic = value();
    else if (a == "--latency") st.latency = true;
    else if (a == "--latency-skip") st.latency_skip_s = std::atof(value().c_str());
    else if (a == "-X") {
      const std::string kv = value();
      const auto eq = kv.find('=');
      if (eq == std::string::npos) die("-X needs key=value");
      extra.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    }
    else if (a == "-h" || a == "--help") {
      std::printf("Usage: passthrough --brokers B [--group-id G] [--input-topic T] [--output-topic T] [--latency [--latency-skip S]] [-X [consumer.|producer.]key=value ...]\n");
      return 0;
    } else die("unknown option " + a);
  }
  if (brokers.empty()) die("--brokers is required");
  std::signal(SIGTERM, onSignal);
  std::signal(SIGINT, onSignal);

  char err[512];
  rd_kafka_conf_t* pconf = rd_kafka_conf_new();
  set(pconf, "bootstrap.servers", brokers);
  set(pconf, "client.id", "passthrough");
  set(pconf, "enable.idempotence", "true");
  set(pconf, "acks", "all");
  set(pconf, "partitioner", "murmur2_random");
  set(pconf, "linger.ms", "5");
  set(pconf, "compression.type", "lz4");
  set(pconf, "message.max.bytes", "1048576");
  applyExtra(pconf, extra, "producer.");
  rd_kafka_conf_set_opaque(pconf, &st);
  rd_kafka_conf_set_dr_msg_cb(pconf, onDelivery);
  rd_kafka_t* producer = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, err, sizeof err);
  if (!producer) die(std::string("producer: ") + err);

  rd_kafka_conf_t* cconf = rd_kafka_conf_new();
  set(cconf, "bootstrap.servers", brokers);
  set(cconf, "group.id", group);
  set(cconf, "client.id", "passthrough");
  set(cconf, "enable.auto.commit", "false");
  set(cconf, "enable.auto.offset.store", "false");
  set(cconf, "auto.offset.reset", "earliest");
  set(cconf, "partition.assignment.strategy", "cooperative-sticky");
  set(cconf, "enable.partition.eof", "false");
  set(cconf, "queued.max.messages.kbytes", "16384");
  applyExtra(cconf, extra, "consumer.");
  rd_kafka_conf_set_rebalance_cb(cconf, onRebalance);
  rd_kafka_t* consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cconf, err, sizeof err);
  if (!consumer) die(std::string("consumer: ") + err);
  rd_kafka_poll_set_consumer(consumer);
  rd_kafka_queue_t* queue = rd_kafka_queue_get_consumer(consumer);
  rd_kafka_topic_t* out = rd_kafka_topic_new(producer, out_topic.c_str(), nullptr);

  rd_kafka_topic_partition_list_t* subs = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(subs, in_topic.c_str(), RD_KAFKA_PARTITION_UA);
  if (rd_kafka_resp_err_t e = rd_kafka_subscribe(consumer, subs)) die(std::string("subscribe: ") + rd_kafka_err2str(e));
  rd_kafka_topic_partition_list_destroy(subs);

  constexpr std::size_t kBatch = 1024;
  std::vector<rd_kafka_message_t*> batch(kBatch);
  auto last_commit = std::chrono::steady_clock::now();
  // The same fetch wake-up as loginflow's poller (librdkafka 2.0 resumes fetching late once its
  // queue was full; see include/loginflow/prefetch_waker.h): the ceiling uses the same client.
  loginflow::kafka::PrefetchWaker waker(loginflow::kafka::PrefetchWaker::limitsOf(consumer));
  while (g_signal.load() == 0) {
    waker.poll(consumer, queue);
    ssize_t n = rd_kafka_consume_batch_queue(queue, 0, batch.data(), kBatch);
    if (n == 0) {
      rd_kafka_message_t* first = rd_kafka_consume_queue(queue, 20);
      if (first) {
        batch[0] = first;
        n = 1;
        const ssize_t more = rd_kafka_consume_batch_queue(queue, 0, batch.data() + 1, kBatch - 1);
        if (more > 0) n += more;
      }
    }
    for (ssize_t i = 0; i < n; ++i) {
      rd_kafka_message_t* m = batch[static_cast<std::size_t>(i)];
      if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF && ++st.consume_errors <= 5)
          std::fprintf(stderr, "passthrough: consumer: %s\n", rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
        continue;
      }
      ++st.consumed;
      waker.noteRecord(m->len);
      Track& t = st.tracks[m->partition];
      rd_kafka_timestamp_type_t tstype;
      const std::int64_t ts = st.latency ? rd_kafka_message_timestamp(m, &tstype) : 0;
      if (st.latency && st.latency_from_ms < 0 && ts > 0)
        st.latency_from_ms = ts + static_cast<std::int64_t>(st.latency_skip_s * 1000);
      t.inflight.push_back(Entry{m->offset, ts, false});
      Entry* e = &t.inflight.back();
      while (true) {
        const int rc = rd_kafka_produce(out, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, m->payload, m->len, m->key,
                                        m->key_len, e);
        if (rc == 0) break;
        const rd_kafka_resp_err_t perr = rd_kafka_last_error();
        if (perr != RD_KAFKA_RESP_ERR__QUEUE_FULL) die(std::string("produce: ") + rd_kafka_err2str(perr));
        ++st.queue_full_waits;
        rd_kafka_poll(producer, 1);
      }
      ++st.produced;
      rd_kafka_message_destroy(m);
    }
    rd_kafka_poll(producer, 0);  // delivery reports
    advance(st);
    const auto now = std::chrono::steady_clock::now();
    if (now - last_commit >= std::chrono::seconds(1)) {
      commit(consumer, st, in_topic, false);
      last_commit = now;
    }
  }

  // Stop: no more fetching, flush what is in flight, commit what is acknowledged, leave the group.
  const bool flushed = rd_kafka_flush(producer, 30000) == RD_KAFKA_RESP_ERR_NO_ERROR;
  advance(st);
  const bool committed = commit(consumer, st, in_topic, true);
  rd_kafka_consumer_close(consumer);
  rd_kafka_queue_destroy(queue);
  rd_kafka_topic_destroy(out);
  rd_kafka_destroy(consumer);
  rd_kafka_destroy(producer);

  std::printf(
      "{\"consumed\": %llu, \"produced\": %llu, \"delivered\": %llu, \"failed\": %llu, \"consume_errors\": %llu, "
      "\"queue_full_waits\": %llu, \"flushed\": %s, \"committed\": %s, \"librdkafka\": \"%s\"",
      static_cast<unsigned long long>(st.consumed), static_cast<unsigned long long>(st.produced),
      static_cast<unsigned long long>(st.delivered), static_cast<unsigned long long>(st.failed),
      static_cast<unsigned long long>(st.consume_errors), static_cast<unsigned long long>(st.queue_full_waits),
      flushed ? "true" : "false", committed ? "true" : "false", rd_kafka_version_str());
  if (st.latency) {
    const std::size_t count = st.latency_us.size();
    const double p50 = percentileMs(st.latency_us, 0.5), p99 = percentileMs(st.latency_us, 0.99),
                 p999 = percentileMs(st.latency_us, 0.999);
    std::printf(", \"latency_ms\": {\"count\": %zu, \"p50\": %.3f, \"p99\": %.3f, \"p999\": %.3f}", count, p50, p99,
                p999);
  }
  std::printf("}\n");
  return flushed && committed && st.failed == 0 ? 0 : 1;
}
