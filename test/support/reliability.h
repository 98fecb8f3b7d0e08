// Helpers for the reliability (fault) tests: events with unique user ids, a paced producer that
// keeps feeding the input while a fault is injected, a probe for end offsets and committed
// offsets, and the loss/duplicate audit that every fault test ends with. Header-only, test code.
//
// The audit identifies every input record by (partition, offset):
//  * a dead letter by its source.partition / source.offset headers;
//  * an output by its key, the user_id: the events of a reliability run carry unique user ids
//    (uniqueEvents), so the key names exactly one input. Its content (without processed_at)
//    must equal the transform of that input.
// lost       = inputs with neither an output nor a dead letter;
// duplicated = results beyond the first for one input (outputs and dead letters together),
//              split into reprocessed (the input processed again) and replayed (one produced
//              record stored twice by the broker; see Audit).
#pragma once

// librdkafka's RD_KAFKA_V_* macros expand to C-style casts.
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "loginflow/generator.h"
#include "loginflow/kafka.h"
#include "loginflow/transform.h"
#include "support/kafka_test_util.h"

namespace loginflow::testing {

// ---------------------------------------------------------------------------------------------
// Events with unique user ids.

// A UUID-shaped id (36 characters, a valid user_id) unique per index and seed.
inline std::string uniqueUserId(std::uint64_t seed, std::size_t i) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08" PRIx32 "-%04" PRIx32 "-4%03" PRIx32 "-8%03" PRIx32 "-%012" PRIx64,
                static_cast<std::uint32_t>(seed & 0xffffffffU), static_cast<std::uint32_t>((seed >> 32) & 0xffffU),
                static_cast<std::uint32_t>((i >> 48) & 0xfffU), static_cast<std::uint32_t>((i >> 60) & 0xfU),
                static_cast<std::uint64_t>(i & 0xffffffffffffULL));
  return buf;
}

// `n` generated events (EventGenerator: realistic good events, a fraction `bad` of malformed
// ones cycling through every dead-letter reason) in which every event carries its own user id,
// in the key (unless the key is null) and in the value (where the malformation left it).
// The generator is asked for one user; that id is then replaced per event.
inline std::vector<GeneratedEvent> uniqueEvents(std::size_t n, double bad, std::uint64_t seed,
                                                bool include_too_large = true) {
  EventGenerator gen(seed, bad, wallClockMs() / 1000, 1, include_too_large);
  std::vector<GeneratedEvent> out(n);
  for (auto& e : out) gen.next(e);
  std::string shared;
  for (const auto& e : out)
    if (!e.key_null) {
      shared = e.key;
      break;
    }
  if (shared.empty()) return out;
  for (std::size_t i = 0; i < n; ++i) {
    auto& e = out[i];
    const std::string id = uniqueUserId(seed, i);
    if (!e.key_null) e.key = id;
    for (auto p = e.value.find(shared); p != std::string::npos; p = e.value.find(shared, p + id.size()))
      e.value.replace(p, shared.size(), id);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// A producer thread that writes events[begin, end) to a topic at `rate` events per second
// (0: as fast as possible), then flushes. Keys are partitioned by murmur2 like loginflow's own
// producer; every event is acknowledged (acks=all, idempotent) or counted as failed.
class PacedProducer {
 public:
  PacedProducer(const std::string& bootstrap, const std::string& topic, const std::vector<GeneratedEvent>& events,
                std::size_t begin, std::size_t end, double rate)
      : count_(end - begin),
        begin_(begin),
        acked_at_(end - begin, {-1, -1}),
        thread_([this, bootstrap, topic, &events, begin, end, rate] { run(bootstrap, topic, events, begin, end, rate); }) {}
  // Stops early (whatever is not yet acknowledged is abandoned) and joins.
  ~PacedProducer() {
    stop_.store(true);
    join();
  }
  PacedProducer(const PacedProducer&) = delete;
  PacedProducer& operator=(const PacedProducer&) = delete;

  void join() {
    if (thread_.joinable()) thread_.join();
  }
  std::size_t size() const { return count_; }             // events to produce
  std::size_t sent() const { return sent_.load(); }        // handed to librdkafka
  std::size_t acked() const { return acked_.load(); }      // acknowledged by the broker
  std::size_t failed() const { return failed_.load(); }    // delivery failed for good
  bool finished() const { return finished_.load(); }       // everything sent and flushed
  std::string error() const {
    std::lock_guard lock(mu_);
    return error_;
  }
  // Where the broker said it stored events[i] ({-1, -1}: not acknowledged). Read after join().
  std::pair<std::int32_t, std::int64_t> ackedAt(std::size_t i) const { return acked_at_[i - begin_]; }

 private:
  static void drCb(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    auto* self = static_cast<PacedProducer*>(opaque);
    const auto index = reinterpret_cast<std::uintptr_t>(m->_private);
    if (!m->err && index > 0 && index <= self->acked_at_.size()) self->acked_at_[index - 1] = {m->partition, m->offset};
    if (m->err) {
      self->failed_.fetch_add(1);
      std::lock_guard lock(self->mu_);
      if (self->error_.empty()) self->error_ = rd_kafka_err2str(m->err);
    } else {
      self->acked_.fetch_add(1);
    }
  }

  void run(const std::string& bootstrap, const std::string& topic, const std::vector<GeneratedEvent>& events,
           std::size_t begin, std::size_t end, double rate) {
    try {
      auto base = kafka::producerDefaults();
      base.emplace_back("bootstrap.servers", bootstrap);
      base.emplace_back("message.max.bytes", "4194304");
      base.emplace_back("log_level", "3");
      // The test's own client should notice a broker that is back quickly (a down broker can
      // leave a connection that never answers), so that it does not slow the run down.
      base.emplace_back("socket.timeout.ms", "10000");
      base.emplace_back("reconnect.backoff.max.ms", "1000");
      auto conf = kafka::buildConf(base, {}, kafka::Role::kProducer);
      rd_kafka_conf_set_opaque(conf.get(), this);
      rd_kafka_conf_set_dr_msg_cb(conf.get(), drCb);
      auto p = kafka::createClient(RD_KAFKA_PRODUCER, std::move(conf));
      const auto start = Clock::now();
      std::size_t i = begin;
      while (i < end && !stop_.load()) {
        std::size_t due = end;
        if (rate > 0) {
          const double secs = std::chrono::duration<double>(Clock::now() - start).count();
          due = std::min(end, begin + static_cast<std::size_t>(secs * rate) + 1);
        }
        while (i < due) {
          const auto& e = events[i];
          rd_kafka_resp_err_t err = rd_kafka_producev(
              p.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
              RD_KAFKA_V_KEY(e.key_null ? nullptr : e.key.data(), e.key.size()),
              RD_KAFKA_V_VALUE(e.value_null ? nullptr : const_cast<char*>(e.value.data()), e.value.size()),
              RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(static_cast<std::uintptr_t>(i - begin + 1))),
              RD_KAFKA_V_END);
          if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            if (stop_.load()) break;
            rd_kafka_poll(p.get(), 10);
            continue;
          }
          if (err) throw std::runtime_error(std::string("produce: ") + rd_kafka_err2str(err));
          ++i;
          sent_.store(i - begin);
        }
        rd_kafka_poll(p.get(), 0);
        if (i < end) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      while (rd_kafka_outq_len(p.get()) > 0 && !stop_.load()) rd_kafka_poll(p.get(), 50);
      if (stop_.load()) rd_kafka_purge(p.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    } catch (const std::exception& e) {
      std::lock_guard lock(mu_);
      error_ = e.what();
    }
    finished_.store(true);
  }

  const std::size_t count_;
  const std::size_t begin_;
  // Written by the delivery callback (this thread), read after join().
  std::vector<std::pair<std::int32_t, std::int64_t>> acked_at_{};
  std::atomic<std::size_t> sent_{0}, acked_{0}, failed_{0};
  std::atomic<bool> finished_{false}, stop_{false};
  mutable std::mutex mu_;
  std::string error_;
  std::jthread thread_;  // last: started after the other members exist
};

// ---------------------------------------------------------------------------------------------
// End offsets and a group's committed offsets, from one long-lived client (cheap to poll).
// Its connections time out and reconnect quickly, so that what it measures after a broker
// outage is loginflow's recovery, not its own.
class Probe {
 public:
  Probe(const std::string& bootstrap, const std::string& group) {
    std::vector<std::pair<std::string, std::string>> base = {
        {"bootstrap.servers", bootstrap}, {"group.id", group},         {"enable.auto.commit", "false"},
        {"auto.offset.reset", "earliest"}, {"log_level", "0"},          {"socket.timeout.ms", "5000"},
        {"reconnect.backoff.ms", "50"},    {"reconnect.backoff.max.ms", "500"}};
    c_ = kafka::createClient(RD_KAFKA_CONSUMER, kafka::buildConf(base, {}, kafka::Role::kConsumer));
  }

  // End offsets of every partition. A partition whose leader does not answer (moved: the client
  // refreshes its metadata and asks again; down) is asked again until `timeout_ms` has passed,
  // then keeps its last known value and fresh() is false.
  std::map<std::int32_t, std::int64_t> ends(const std::string& topic, int partitions, int timeout_ms = 5000) {
    auto& cache = ends_[topic];
    std::vector<int> todo;
    for (int p = 0; p < partitions; ++p) todo.push_back(p);
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (true) {
      std::vector<int> failed;
      for (int p : todo) {
        int64_t lo = 0, hi = 0;
        if (Clock::now() < deadline &&
            rd_kafka_query_watermark_offsets(c_.get(), topic.c_str(), p, &lo, &hi, 1000) == RD_KAFKA_RESP_ERR_NO_ERROR)
          cache[p] = hi;
        else
          failed.push_back(p);
      }
      todo = std::move(failed);
      if (todo.empty() || Clock::now() >= deadline) break;
      // The leader may have moved: refresh this client's view of the topic before asking again.
      kafka::TopicPtr t(rd_kafka_topic_new(c_.get(), topic.c_str(), nullptr));
      const rd_kafka_metadata_t* md = nullptr;
      if (t && rd_kafka_metadata(c_.get(), 0, t.get(), &md, 1000) == RD_KAFKA_RESP_ERR_NO_ERROR)
        rd_kafka_metadata_destroy(md);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    fresh_ = todo.empty();
    for (int p : todo)
      if (!cache.count(p)) cache[p] = 0;
    return cache;
  }
  // Whether every partition answered in the last ends().
  bool fresh() const { return fresh_; }
  // Outputs plus dead letters (records, not distinct inputs).
  std::int64_t results(int partitions, const std::string& out = "processed-user-login",
                       const std::string& dlq = "user-login-dlq") {
    return total(ends(out, partitions)) + total(ends(dlq, partitions));
  }
  // Committed offsets (-1001 = none); empty when the coordinator did not answer.
  std::map<std::int32_t, std::int64_t> committed(const std::string& topic, int partitions, int timeout_ms = 2000) {
    kafka::PartitionListPtr list(rd_kafka_topic_partition_list_new(partitions));
    for (int p = 0; p < partitions; ++p) rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p);
    std::map<std::int32_t, std::int64_t> out;
    if (rd_kafka_committed(c_.get(), list.get(), timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR)
      for (int i = 0; i < list->cnt; ++i) out[list->elems[i].partition] = list->elems[i].offset;
    return out;
  }
  // True when every partition's committed offset has reached `target`.
  bool caughtUp(const std::string& topic, const std::map<std::int32_t, std::int64_t>& target) {
    auto c = committed(topic, static_cast<int>(target.size()), 1000);
    if (c.size() != target.size()) return false;
    for (const auto& [p, end] : target) {
      if (end == 0) continue;
      if (c[p] < end) return false;
    }
    return true;
  }
  rd_kafka_t* handle() const { return c_.get(); }

 private:
  kafka::HandlePtr c_;
  std::map<std::string, std::map<std::int32_t, std::int64_t>> ends_;
  bool fresh_ = true;
};

// Milliseconds until the group's committed offsets reach `target`, or -1 after `timeout`.
inline long long waitCaughtUp(Probe& probe, const std::string& topic,
                              const std::map<std::int32_t, std::int64_t>& target, std::chrono::milliseconds timeout) {
  const auto t0 = Clock::now();
  if (!waitFor([&] { return probe.caughtUp(topic, target); }, timeout, std::chrono::milliseconds(50))) return -1;
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
}

// Current resident memory (VmRSS) of a process in KiB; 0 when unknown.
inline long rssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// The audit.

using SourceId = std::pair<std::int32_t, std::int64_t>;  // (partition, offset) of an input

// Everything in the three topics at one moment, with every record's Kafka timestamp.
struct Snapshot {
  std::vector<Record> inputs, outputs, dead_letters;
  Timestamps input_ts, output_ts, dlq_ts;
};

// The events a producer had acknowledged, checked against the topic. An acknowledgement with an
// offset must name the event's record. One without (offset -1001) is librdkafka's implicit
// acknowledgement (see implicitAcks): the event may be anywhere in the topic, or, with the
// embedded broker, nowhere — never stored although reported delivered.
struct AckedInputs {
  std::size_t dropped = 0;           // implicitly acknowledged and not in the topic
  std::vector<std::string> dropped_samples;
  std::vector<std::string> missing;  // acknowledged at an offset that does not hold them (at most 10)
};
inline AckedInputs checkAckedInputs(const PacedProducer& prod, const std::vector<GeneratedEvent>& events,
                                    std::size_t begin, std::size_t end, const std::vector<Record>& topic) {
  auto content = [](bool key_null, const std::string& key, bool value_null, const std::string& value) {
    return (key_null ? std::string("\x1e") : key) + '\x1f' + (value_null ? std::string("\x1e") : value);
  };
  std::map<std::pair<std::int32_t, std::int64_t>, const Record*> at;
  std::multiset<std::string> stored;
  for (const auto& r : topic) {
    at[{r.partition, r.offset}] = &r;
    stored.insert(content(r.key_null, r.key, r.value_null, r.value));
  }
  AckedInputs out;
  for (std::size_t i = begin; i < end; ++i) {
    const auto [p, o] = prod.ackedAt(i);
    const auto& e = events[i];
    const std::string mine = content(e.key_null, e.key, e.value_null, e.value);
    if (p < 0) continue;  // not acknowledged
    if (o < 0) {
      if (stored.count(mine) == 0) {
        ++out.dropped;
        if (out.dropped_samples.size() < 5)
          out.dropped_samples.push_back("event " + std::to_string(i) + " (key '" + e.key + "', partition " +
                                        std::to_string(p) + ")");
      }
      continue;
    }
    auto it = at.find({p, o});
    if (it != at.end() && content(it->second->key_null, it->second->key, it->second->value_null,
                                  it->second->value) == mine)
      continue;
    if (out.missing.size() < 10)
      out.missing.push_back("event " + std::to_string(i) + " (key '" + e.key + "') acknowledged at " +
                            std::to_string(p) + "/" + std::to_string(o) + ", the topic has " +
                            (it == at.end() ? std::string("no record there") : "key '" + it->second->key + "' there"));
  }
  return out;
}

inline Snapshot takeSnapshot(const std::string& bootstrap, int partitions, const std::string& input = "user-login",
                             const std::string& output = "processed-user-login",
                             const std::string& dlq = "user-login-dlq") {
  Snapshot s;
  s.inputs = readAll(bootstrap, input, partitions, &s.input_ts);
  s.outputs = readAll(bootstrap, output, partitions, &s.output_ts);
  s.dead_letters = readAll(bootstrap, dlq, partitions, &s.dlq_ts);
  return s;
}

// Outputs/dead letters beyond the per-partition end offsets `ends` are dropped (what was
// written after a snapshot point).
inline void keepUpTo(std::vector<Record>& records, const std::map<std::int32_t, std::int64_t>& ends) {
  std::erase_if(records, [&](const Record& r) {
    auto it = ends.find(r.partition);
    return it == ends.end() || r.offset >= it->second;
  });
}

struct Audit {
  std::size_t events = 0;        // inputs in the input topic
  std::size_t outputs = 0;       // output records
  std::size_t dead_letters = 0;  // dead-letter records
  std::size_t lost = 0;          // inputs with neither an output nor a dead letter
  std::size_t lost_outputs = 0, lost_dead_letters = 0;  // of those, by the result they should have had
  // Of the lost, those whose result the embedded broker acknowledged without storing it (see
  // attributeBrokerLosses); the rest (lost - broker_lost) are loginflow's.
  std::size_t broker_lost = 0;
  // Every input without a result, with where its result was due: the output topic (the
  // transform's key, placed by murmur2 like loginflow's producer) or the dead-letter topic (the
  // input's key; a null key goes to any partition).
  struct LostResult {
    SourceId id;
    bool output = true;
    bool key_null = false;
    std::string key;
  };
  std::vector<LostResult> lost_results;
  std::vector<std::string> broker_lost_ids;  // "p/o" of the inputs whose loss is the broker's
  std::size_t duplicated = 0;    // results beyond the first for one input (= reprocessed + replayed)
  // Of the duplicates: `replayed` are byte-identical copies of one produced record (same value,
  // headers and producer timestamp — including processed_at for an output): one produce call
  // stored twice, i.e. the producer resent a request whose answer it never got and the broker
  // did not deduplicate it. A real broker does, for an idempotent producer (loginflow's); the
  // embedded broker of librdkafka 2.0.2 does not. `reprocessed` are results of a second
  // processing of the input (a new processed_at, a new timestamp): loginflow consumed it again.
  std::size_t reprocessed = 0;
  std::set<SourceId> reprocessed_ids;  // the inputs processed more than once
  std::size_t replayed = 0;
  std::size_t wrong = 0;         // results whose kind, content or reason differs from the transform of the input
  std::size_t unmatched = 0;     // results that name no input
  std::size_t ambiguous = 0;     // inputs whose expected output key is not unique (audit cannot tell them apart)
  // Input records that are byte-identical copies of an earlier one (same key, value and producer
  // timestamp): the test's producer resent a request that the embedded broker had stored (see
  // `replayed`). Each copy is an input of its own; its output shares the copy's key, so outputs
  // are matched to the copies in turn.
  std::size_t input_replays = 0;
  // Events the test's producer had reported delivered that the embedded broker never stored
  // (checkAckedInputs): not inputs, so not counted anywhere else.
  std::size_t inputs_dropped = 0;
  bool committed_ok = false;     // the group's committed offsets == the input's end offsets
  std::map<SourceId, std::size_t> count;  // results per input
  std::map<std::string, std::size_t> reasons;  // dead letters by reason
  std::vector<std::string> samples;            // a few examples of what went wrong

  std::set<SourceId> covered() const {
    std::set<SourceId> s;
    for (const auto& [id, n] : count)
      if (n > 0) s.insert(id);
    return s;
  }
  std::string describe() const {
    std::ostringstream o;
    o << "events " << events << ", outputs " << outputs << ", dead letters " << dead_letters << ", lost " << lost
      << " (of them acknowledged by the broker and not stored " << broker_lost << ")"
      << ", duplicated " << duplicated << " (reprocessed " << reprocessed << ", replayed " << replayed
      << "), input copies stored twice " << input_replays << ", wrong "
      << wrong << ", unmatched " << unmatched << ", ambiguous "
      << ambiguous << ", committed == end offsets: " << (committed_ok ? "yes" : "no");
    for (const auto& s : samples) o << "\n  " << s;
    return o.str();
  }
};

// Matches every output and dead letter of `s` to its input and counts. `committed` and `ends`
// (the input's) decide committed_ok; pass empty maps to skip that check.
inline Audit computeAudit(const Snapshot& s, const std::map<std::int32_t, std::int64_t>& committed,
                          const std::map<std::int32_t, std::int64_t>& ends,
                          const std::string& input_topic = "user-login") {
  Audit a;
  a.events = s.inputs.size();
  a.outputs = s.outputs.size();
  a.dead_letters = s.dead_letters.size();
  auto note = [&](const std::string& what) {
    if (a.samples.size() < 10) a.samples.push_back(what);
  };

  struct Expected {
    bool output = false;
    std::string key;     // output key
    std::string value;   // output value without processed_at
    std::string reason;  // dead-letter reason
    const Record* in = nullptr;
  };
  std::map<SourceId, Expected> expected;
  std::map<SourceId, std::vector<std::string>> where;  // results of each input (topic partition/offset)
  std::map<SourceId, std::vector<std::string>> copies;  // results of each input: everything that was produced
  auto identity = [](const Record& r, std::int64_t ts) {
    std::string k = std::to_string(ts) + '\x1f' + (r.key_null ? std::string("\x1e") : r.key) + '\x1f' +
                    (r.value_null ? std::string("\x1e") : r.value);
    for (const auto& [n, v] : r.headers) k += '\x1f' + n + '=' + v;
    return k;
  };
  auto tsOf = [](const Timestamps& ts, const Record& r) {
    auto it = ts.find({r.partition, r.offset});
    return it == ts.end() ? std::int64_t{-1} : it->second;
  };
  // Output key → the inputs expected to produce it: one, or the copies of one replayed input.
  std::map<std::string, std::vector<SourceId>> by_key;
  std::map<std::string, std::string> identity_of_key;  // the first input's identity, per output key
  std::set<std::string> dup_keys;
  Transformer t;
  const std::int64_t now = wallClockMs();
  std::set<std::string> input_identities;
  for (const auto& in : s.inputs) {
    const SourceId id{in.partition, in.offset};
    const std::string ident = identity(in, tsOf(s.input_ts, in));
    if (!input_identities.insert(ident).second) ++a.input_replays;
    InputRecord r{in.key_null ? nullptr : in.key.data(), in.key.size(), in.value_null ? nullptr : in.value.data(),
                  in.value.size(), {input_topic, in.partition, in.offset}};
    const Result& res = t.apply(r, now);
    Expected e;
    e.in = &in;
    if (res.kind == Result::Kind::kOutput) {
      e.output = true;
      e.key = std::string(res.key);
      e.value = withoutProcessedAt(std::string(res.value));
      auto [it, fresh] = by_key.try_emplace(e.key);
      if (fresh) {
        identity_of_key[e.key] = ident;
      } else if (identity_of_key[e.key] != ident) {
        dup_keys.insert(e.key);
      }
      it->second.push_back(id);
    } else {
      e.reason = std::string(dlqReasonName(res.reason));
    }
    expected[id] = std::move(e);
    a.count[id] = 0;
  }
  for (const auto& k : dup_keys) {
    by_key.erase(k);
    ++a.ambiguous;
  }

  for (const auto& o : s.outputs) {
    auto it = by_key.find(o.key);
    if (it == by_key.end()) {
      ++a.unmatched;
      note("output with key '" + o.key + "' matches no input");
      continue;
    }
    // The first copy without a result yet (the inputs of one key are copies of one record).
    SourceId id = it->second.front();
    for (const auto& c : it->second)
      if (a.count[c] == 0) {
        id = c;
        break;
      }
    ++a.count[id];
    where[id].push_back("out " + std::to_string(o.partition) + "/" + std::to_string(o.offset));
    copies[id].push_back("out" + identity(o, tsOf(s.output_ts, o)));
    const Expected& e = expected[id];
    if (withoutProcessedAt(o.value) != e.value) {
      ++a.wrong;
      note("output for " + std::to_string(id.first) + "/" + std::to_string(id.second) + " differs: " + o.value +
           " expected " + e.value);
    }
  }
  for (const auto& d : s.dead_letters) {
    auto hp = d.headers.find("source.partition");
    auto ho = d.headers.find("source.offset");
    auto ht = d.headers.find("source.topic");
    if (hp == d.headers.end() || ho == d.headers.end() || ht == d.headers.end() || ht->second != input_topic) {
      ++a.unmatched;
      note("dead letter without source headers");
      continue;
    }
    const SourceId id{std::stoi(hp->second), std::stoll(ho->second)};
    auto it = expected.find(id);
    if (it == expected.end()) {
      ++a.unmatched;
      note("dead letter for " + hp->second + "/" + ho->second + " matches no input");
      continue;
    }
    ++a.count[id];
    where[id].push_back("dlq " + std::to_string(d.partition) + "/" + std::to_string(d.offset));
    copies[id].push_back("dlq" + identity(d, tsOf(s.dlq_ts, d)));
    const Expected& e = it->second;
    const std::string reason = d.headers.count("error.reason") ? d.headers.at("error.reason") : "";
    ++a.reasons[reason];
    if (e.output) {
      ++a.wrong;
      note("dead letter (" + reason + ") for " + hp->second + "/" + ho->second + ", expected an output");
      continue;
    }
    bool ok = reason == e.reason && d.key_null == e.in->key_null && d.key == e.in->key &&
              d.headers.count("error.detail") && !d.headers.at("error.detail").empty();
    if (e.reason == "too_large") {
      ok = ok && d.value == e.in->value.substr(0, 1024) &&
           d.headers.count("error.original_size") && d.headers.at("error.original_size") == std::to_string(e.in->value.size());
    } else {
      ok = ok && d.value_null == e.in->value_null && d.value == e.in->value;
    }
    if (!ok) {
      ++a.wrong;
      note("dead letter for " + hp->second + "/" + ho->second + " has reason '" + reason + "' (expected '" + e.reason +
           "') or differs from its input");
    }
  }
  for (const auto& [id, n] : a.count) {
    if (n == 0) {
      ++a.lost;
      ++(expected[id].output ? a.lost_outputs : a.lost_dead_letters);
      note("lost: " + std::to_string(id.first) + "/" + std::to_string(id.second));
      const Expected& e = expected[id];
      a.lost_results.push_back({id, e.output, e.output ? false : e.in->key_null, e.output ? e.key : e.in->key});
    } else if (n > 1) {
      a.duplicated += n - 1;
      const std::set<std::string> distinct(copies[id].begin(), copies[id].end());
      a.reprocessed += distinct.size() - 1;
      if (distinct.size() > 1) a.reprocessed_ids.insert(id);
      a.replayed += n - distinct.size();
      std::string at;
      for (const auto& w : where[id]) at += " " + w;
      note("duplicate: input " + std::to_string(id.first) + "/" + std::to_string(id.second) + " →" + at);
    }
  }
  if (!ends.empty()) {
    a.committed_ok = true;
    for (const auto& [p, end] : ends) {
      auto it = committed.find(p);
      // A partition that never had data has no committed offset.
      const bool ok = end == 0 ? (it == committed.end() || it->second < 0 || it->second == 0)
                               : (it != committed.end() && it->second == end);
      if (!ok) {
        a.committed_ok = false;
        note("partition " + std::to_string(p) + ": committed " +
             (it == committed.end() ? std::string("none") : std::to_string(it->second)) + ", end " +
             std::to_string(end));
      }
    }
  }
  return a;
}

// The whole audit after a run: reads the three topics, the group's committed offsets and the
// input's end offsets.
inline Audit auditRun(const std::string& bootstrap, const std::string& group, int partitions,
                      const std::string& input_topic = "user-login") {
  auto ends = [&] {
    auto c = makeConsumer(bootstrap, "audit-" + std::to_string(getpid()));
    return endOffsets(c.get(), input_topic, partitions);
  }();
  auto committed = committedOffsets(bootstrap, group, input_topic, partitions);
  return computeAudit(takeSnapshot(bootstrap, partitions, input_topic), committed, ends, input_topic);
}

// librdkafka's idempotent producer counts a record as delivered, without an answer for it, when
// the broker accepts a later record of the same partition: a real broker accepts a batch only in
// sequence, so the earlier ones must be stored ("implicit ack"). The embedded broker of
// librdkafka 2.0.2 checks sequences only for transactional producers, so after a resent or
// redirected request it can accept a later batch although an earlier one was never stored: that
// record is then reported delivered and is not in the topic. loginflow runs in the fault tests
// with `-X producer.debug=eos`, which logs each such implicit ack (IMPLICITACK); these are the
// messages implicitly acknowledged per topic and partition, summed over the given log files.
using ImplicitAcks = std::map<std::pair<std::string, std::int32_t>, std::size_t>;
inline ImplicitAcks implicitAcks(const std::vector<std::string>& log_paths) {
  static const std::regex kLine(R"(IMPLICITACK: .*: (\S+) \[(\d+)\] (\d+) message\(s\) implicitly acked)");
  ImplicitAcks out;
  for (const auto& path : log_paths) {
    std::ifstream in(path);
    std::string line;
    std::smatch m;
    while (std::getline(in, line))
      if (line.find("IMPLICITACK") != std::string::npos && std::regex_search(line, m, kLine))
        out[{m[1].str(), std::stoi(m[2].str())}] += std::stoul(m[3].str());
  }
  return out;
}

// Attributes lost results to the embedded broker, record by record: a lost result is the
// broker's only when the partition its result was due on (murmur2 of its key over
// `result_partitions`, as loginflow's producer places it; any partition of the topic for a dead
// letter with a null key) had records implicitly acknowledged (see implicitAcks), and each
// acknowledgement excuses one lost result at most. What loginflow had acknowledged and the broker
// did not store; the excused inputs are listed in broker_lost_ids.
inline void attributeBrokerLosses(Audit& a, const ImplicitAcks& implicit, int result_partitions,
                                  const std::string& output = "processed-user-login",
                                  const std::string& dlq = "user-login-dlq") {
  ImplicitAcks budget = implicit;
  a.broker_lost = 0;
  a.broker_lost_ids.clear();
  for (const auto& l : a.lost_results) {
    const std::string& topic = l.output ? output : dlq;
    bool excused = false;
    if (!l.key_null) {
      const std::int32_t p = rd_kafka_msg_partitioner_murmur2(nullptr, l.key.data(), l.key.size(), result_partitions,
                                                              nullptr, nullptr);
      auto it = budget.find({topic, p});
      if (it != budget.end() && it->second > 0) {
        --it->second;
        excused = true;
      }
    } else {
      for (auto& [tp, n] : budget)
        if (tp.first == topic && n > 0) {
          --n;
          excused = true;
          break;
        }
    }
    if (excused) {
      ++a.broker_lost;
      a.broker_lost_ids.push_back(std::to_string(l.id.first) + "/" + std::to_string(l.id.second));
    }
  }
}

// One machine-readable line per fault test, collected by scripts/reliability-report.sh:
// RELIABILITY|<fault>|<load>|<events>|<lost>|<duplicated>|<recovery_ms>|<notes>
inline void reportReliability(const std::string& fault, const std::string& load, const Audit& a,
                              long long recovery_ms, const std::string& notes) {
  std::ostringstream o;
  o << "RELIABILITY|" << fault << "|" << load << "|" << a.events << "|" << a.lost - a.broker_lost << "|"
    << a.duplicated << "|" << recovery_ms << "|" << notes;
  if (a.broker_lost > 0)
    o << "; KNOWN ISSUE of the embedded broker: " << a.broker_lost
      << " result(s) acknowledged and not stored (implicit ack, see RELIABILITY.md)";
  if (a.input_replays > 0) o << "; " << a.input_replays << " input(s) stored twice by the embedded broker";
  if (a.inputs_dropped > 0)
    o << "; " << a.inputs_dropped << " event(s) acknowledged to the test's producer and not stored by the embedded broker";
  if (a.duplicated > 0)
    o << "; duplicates: " << a.reprocessed << " reprocessed, " << a.replayed << " replayed";
  o << "\n";
  std::cout << o.str() << std::flush;
}

}  // namespace loginflow::testing
