// The pipeline's threads and how they hand records to each other.
//
//   poller ──WorkItem──► spsc queue (one per worker) ──► worker: transform → produce
//     ▲                                                              │ (librdkafka)
//     └──── ack queue (spsc, slot ids) ◄── delivery thread: delivery reports
//
// * Slots bound what is in flight: the poller takes a free slot before it dispatches a record
//   and gets it back when the record's output (or dead letter) is acknowledged. There are
//   --queue-capacity slots, every queue has room for all of them, so a push never fails; when
//   no slot is free the poller leaves records in librdkafka's queue, which stops fetching at its
//   limit (and pauses the partitions after a long shortage; see pollOnce()).
// * librdkafka 2.0 resumes fetching late once its queue was full: kafka::PrefetchWaker wakes it.
// * The OffsetTracker is touched by the poller thread only: acknowledgements reach it through
//   the ack queue, so it needs no lock.
// * Only the delivery thread polls the producer, so delivery reports run on it alone (the ack
//   queue has exactly one producer).
#include "loginflow/pipeline.h"

// librdkafka's RD_KAFKA_V_* macros expand to C-style casts.
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#include <atomic>
#include <boost/lockfree/spsc_queue.hpp>
#include <charconv>
#include <condition_variable>
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <numeric>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "loginflow/kafka.h"
#include "loginflow/logging.h"
#include "loginflow/offset_tracker.h"
#include "loginflow/prefetch_waker.h"
#include "loginflow/transform.h"

namespace loginflow {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kCommitInterval{1000};
// How often the offsets acknowledged are stored for librdkafka's auto-commit (a local call):
// what a SIGKILL makes the next owner redo is what was in flight plus what was acknowledged in
// the last auto.commit.interval.ms (1 s) and this interval.
constexpr milliseconds kStoreInterval{100};
// The longest periodic commits wait after a refusal for a rebalance to reach this member.
constexpr milliseconds kCommitSuspendMax{30'000};
constexpr milliseconds kPollTimeout{20};
// No free slot for this long (the producer is stuck, say): pause the partitions. A shorter
// shortage is waited out without pausing; see pollOnce().
constexpr milliseconds kPauseAfter{1000};
constexpr std::size_t kConsumeBatch = 1024;
constexpr std::size_t kWorkerBatch = 64;
constexpr std::int64_t kLivenessMs = 10'000;
// /healthz's stall rule: owned partitions with lag, free slots, and nothing consumed for this long.
constexpr std::int64_t kStallMs = 60'000;
// consumer_lag: how often it is read from the brokers, how long one query may take, and how old
// it may be for the stall rule (older: the brokers are not answering, the lag is unknown).
constexpr milliseconds kLagRefresh{2000};
constexpr milliseconds kLagQueryTimeout{2000};
constexpr std::int64_t kLagFreshMs = 15'000;

// One record in flight. Its fields are handed from thread to thread, never shared at once:
// the poller writes handle, kafka_ts_ms and dead_letter=false, then pushes the slot id into a
// worker's spsc queue (release; the worker's pop acquires); the worker writes dead_letter and
// reason, then hands the record to rd_kafka_producev(), whose queue locks order those writes
// before the delivery report that the delivery thread reads them in; the delivery thread pushes
// the slot id into the ack queue (spsc: release/acquire), and only then does the poller read
// handle again and reuse the slot. A slot is in exactly one of these hands at a time.
struct Slot {
  OffsetTracker::Handle handle;
  std::int64_t kafka_ts_ms = -1;  // the input's Kafka timestamp
  bool dead_letter = false;
  DlqReason reason = DlqReason::kInvalidJson;
};

struct WorkItem {
  rd_kafka_message_t* msg = nullptr;
  std::uint32_t slot = 0;
};

using WorkQueue = boost::lockfree::spsc_queue<WorkItem>;
using AckQueue = boost::lockfree::spsc_queue<std::uint32_t>;

// What the delivery thread retries after librdkafka gave up on a message (its own retries
// of retriable errors exhausted, or a permanent error): an owned copy, due at `due`.
struct Retry {
  rd_kafka_topic_t* rkt = nullptr;
  std::string key;
  bool key_null = false;
  std::string value;
  bool value_null = false;
  rd_kafka_headers_t* headers = nullptr;  // owned until produce succeeds
  std::uint32_t slot = 0;
  int attempt = 0;
  Clock::time_point due;
  rd_kafka_resp_err_t first_error = RD_KAFKA_RESP_ERR_NO_ERROR;  // refused at once by producev
};

std::size_t errorSlot(rd_kafka_resp_err_t err) {
  return static_cast<std::size_t>(std::clamp(static_cast<int>(err) + DeliveryShard::kErrorCodeOffset, 0, 399));
}

void* slotOpaque(std::uint32_t slot) { return reinterpret_cast<void*>(static_cast<std::uintptr_t>(slot) + 1); }

std::uint64_t fnv1a(const void* data, std::size_t len) {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint64_t h = 1469598103934665603ULL;
  for (std::size_t i = 0; i < len; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

template <typename Ids>
std::string joinIds(const Ids& ids) {
  std::string text;
  for (auto p : ids) text += (text.empty() ? "" : ",") + std::to_string(p);
  return text;
}

milliseconds retryBackoff(int attempt) {
  // 100 ms, 200 ms, 400 ms … capped at 10 s
  const std::int64_t ms = std::min<std::int64_t>(10'000, 100LL << std::min(attempt, 7));
  return milliseconds(ms);
}

}  // namespace

struct Pipeline::Impl {
  Impl(const RunConfig& config, Stats& s);
  ~Impl();

  // ---- set-up ----
  void connect();
  void start(std::function<void()> on_finished);

  // ---- poller thread ----
  void pollerMain();
  void pollOnce();
  void dispatch(rd_kafka_message_t* m);
  // Follows the offsets consumed per partition; counts and logs a jump (a gap).
  void noteOffset(std::int32_t partition, std::int64_t offset);
  void forgetOffset(std::int32_t partition) {
    if (partition >= 0 && static_cast<std::size_t>(partition) < next_offset.size()) next_offset[partition] = -1;
  }
  void drainAcks();
  // Commits what the tracker says may be committed: asynchronously (sync == false), or
  // synchronously, retrying until `deadline`: up to 3 attempts inside a rebalance callback
  // (revoke), and as long as the deadline allows on a stop, where the group's events are served
  // between attempts (a commit refused during a rebalance succeeds once it is over).
  enum class Between { kWait, kServeGroupEvents };
  bool maybeCommit(bool sync, Clock::time_point deadline = {}, Between between = Between::kWait);
  // Hands what may be committed to librdkafka's auto-commit (rd_kafka_offsets_store).
  void storeOffsets();
  void pauseAll();
  void resumeAll();
  // Pauses or resumes `ids` (paused_parts follows).
  void setPaused(const std::vector<std::int32_t>& ids, bool pause);
  void onRebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts);
  void waitForPartitions(const std::vector<std::int32_t>& parts, Clock::time_point deadline);
  // For assigned partitions this member lost earlier: where to resume (see onRebalance()).
  void resumeLostPartitions(rd_kafka_topic_partition_list_t* parts);
  void shutdown();
  // ---- lag thread ----
  // Every kLagRefresh: the high watermarks and the group's committed offsets of the owned
  // partitions, from the brokers, into stats.poller().consumer_lag.
  void lagMain();
  void stopLagThread();
  void refreshLag();
  void touchPoller() { stats.poller().heartbeat_ms.store(steadyMs(), std::memory_order_relaxed); }

  // ---- workers ----
  void workerMain(std::size_t index);
  void process(std::size_t index, Transformer& t, const WorkItem& item);
  // Adds the time spent waiting for room in librdkafka's queue to `waited`.
  bool produceWithBackpressure(std::size_t index, rd_kafka_topic_t* rkt, const char* key, std::size_t key_len,
                               const char* value, std::size_t value_len, rd_kafka_headers_t* headers, void* opaque,
                               Clock::duration& waited);

  // ---- librdkafka callbacks (the opaque is the Impl) ----
  static Impl* implOf(void* opaque) { return static_cast<Impl*>(opaque); }
  static void errorCb(rd_kafka_t* rk, int err, const char* reason, void* opaque);
  static void rebalanceCb(rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts, void* opaque);
  static void drMsgCb(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque);
  static void commitCb(rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* offsets, void* opaque);

  // ---- delivery thread ----
  void deliveryMain();
  void onDelivery(const rd_kafka_message_t* m);
  void runDueRetries();

  RunConfig cfg;
  Stats& stats;

  // Kafka handles. Declared first so they are destroyed last (threads are joined before).
  kafka::HandlePtr producer;
  kafka::HandlePtr consumer;
  kafka::TopicPtr out_topic;
  kafka::TopicPtr dlq_topic;
  kafka::TopicPtr insights_topic;
  kafka::QueuePtr consumer_queue;
  // librdkafka commits the stored offsets (the default); false only when -X sets
  // enable.auto.commit=false: loginflow then commits them itself every second.
  bool auto_commit = true;

  // Slots and queues.
  std::vector<Slot> slots;
  std::vector<std::uint32_t> free_slots;  // poller only
  std::vector<std::unique_ptr<WorkQueue>> queues;
  AckQueue acks;
  struct alignas(kCacheLine) WorkerSignal {
    std::atomic<std::uint64_t> epoch{0};
  };
  std::vector<std::unique_ptr<WorkerSignal>> signals;

  // Poller-only state.
  OffsetTracker tracker;
  std::deque<rd_kafka_message_t*> stash;  // consumed while no slot was free
  // Partitions whose assignment was lost, or revoked without the commit going through: the
  // offset below which every record was output (acknowledged) but could not be committed.
  std::map<std::int32_t, std::int64_t> lost_positions;
  // Flow control's pause: `paused` is the state (set by a long shortage of slots, cleared when
  // half are free again); `paused_parts` what this member asked librdkafka to pause. librdkafka
  // keeps a partition's pause across an unassign and a later assign of the same partition, so
  // a partition paused before a revoke or a loss would come back paused with nothing left to
  // resume it: every partition is resumed before it is unassigned, and set explicitly (paused
  // or resumed, as `paused` says) when it is assigned.
  bool paused = false;
  std::set<std::int32_t> paused_parts;
  bool subscribed = false;     // start() subscribed (see ~Impl)
  bool ever_assigned = false;  // an assignment arrived (see ~Impl)
  Clock::time_point slots_full_since{};  // when the last free slot was taken; epoch when one is free
  Clock::time_point next_commit{};
  // A commit was refused because the group is rebalancing (or has moved to a new generation):
  // periodic commits wait for this member's next rebalance callback (see commitCb()).
  Clock::time_point commits_suspended_since{};
  // Per partition: the offset after the last record consumed, -1 when unknown (just assigned):
  // a record past it is a gap (PollerShard::input_gaps).
  std::vector<std::int64_t> next_offset;
  RateLimitedLog gap_log;
  std::vector<std::uint8_t> touched;  // workers that got records in this round
  std::size_t next_worker = 0;
  std::vector<rd_kafka_message_t*> batch;
  // Wakes librdkafka's fetcher once its queue has drained from its limit (librdkafka 2.0).
  std::optional<kafka::PrefetchWaker> prefetch_waker;

  // Delivery-thread-only state.
  std::vector<Retry> retries;
  std::mutex retry_mu;              // guards `incoming_retries` (workers' immediate failures)
  std::vector<Retry> incoming_retries;

  // Cross-thread flags.
  std::atomic<bool> stop_requested{false};
  std::atomic<bool> stopping{false};        // readiness off
  std::atomic<bool> workers_stop{false};    // poller dispatches no more
  std::atomic<bool> abandon{false};         // shutdown timeout passed: drop what is left
  std::atomic<bool> delivery_stop{false};
  std::atomic<bool> fatal{false};
  std::mutex fatal_mu;
  std::string fatal_reason;
  int exit_code = 0;
  // When the graceful stop must be over; set once by requestStop() (any thread).
  std::atomic<Clock::rep> stop_deadline_rep{0};
  Clock::time_point stopDeadline() const {
    return Clock::time_point(Clock::duration(stop_deadline_rep.load(std::memory_order_acquire)));
  }

  RateLimitedLog consume_error_log;
  RateLimitedLog produce_error_log;
  RateLimitedLog commit_error_log;

  std::function<void()> on_finished;
  std::mutex lag_wait_mu;
  std::condition_variable lag_wait_cv;
  bool lag_stop = false;  // guarded by lag_wait_mu
  // Threads last: destroyed (joined) first.
  std::jthread lag_thread;
  std::jthread delivery_thread;
  std::vector<std::jthread> worker_threads;
  std::jthread poller_thread;
};

// ---------------------------------------------------------------------------------------------
// librdkafka callbacks (C linkage friendly statics). The opaque is the Impl.

namespace {

void logCb(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  const char* name = rd_kafka_name(rk);
  // syslog levels: 0-3 error, 4 warning, 5-6 info, 7 debug
  if (level <= 3) spdlog::error("librdkafka {} {}: {}", name, fac, buf);
  else if (level == 4) spdlog::warn("librdkafka {} {}: {}", name, fac, buf);
  else if (level <= 6) spdlog::info("librdkafka {} {}: {}", name, fac, buf);
  else spdlog::debug("librdkafka {} {}: {}", name, fac, buf);
}

}  // namespace

void Pipeline::Impl::errorCb(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
  auto* self = implOf(opaque);
  auto code = static_cast<rd_kafka_resp_err_t>(err);
  if (code == RD_KAFKA_RESP_ERR__FATAL) {
    std::array<char, 512> buf{};
    rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf.data(), buf.size());
    {
      std::lock_guard lock(self->fatal_mu);
      self->fatal_reason = std::string(rd_kafka_name(rk)) + ": " + rd_kafka_err2name(orig) + ": " + buf.data();
    }
    spdlog::critical("fatal Kafka error, stopping: {}", self->fatal_reason);
    self->fatal.store(true);
    return;
  }
  std::uint64_t suppressed = 0;
  if (self->consume_error_log.shouldLog(suppressed))
    spdlog::warn("Kafka {}: {}: {} ({} similar suppressed)", rd_kafka_name(rk), rd_kafka_err2name(code), reason,
                 suppressed);
}

void Pipeline::Impl::rebalanceCb(rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
                                 void* opaque) {
  implOf(opaque)->onRebalance(err, parts);
}

void Pipeline::Impl::drMsgCb(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  implOf(opaque)->onDelivery(m);
}

void Pipeline::Impl::commitCb(rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* offsets,
                              void* opaque) {
  auto* self = implOf(opaque);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
    self->stats.poller().commit_failures.add();
    // Another periodic commit sent while the rejoin is under way makes librdkafka 2.0 declare
    // the assignment lost once the generation moves on (confluentinc/librdkafka#4059): every
    // rebalance then costs a lost assignment, and each loss another rebalance. So after such a
    // refusal the periodic commits wait until the rebalance reaches this member (onRebalance()),
    // at most kCommitSuspendMax.
    if (err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS || err == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION)
      self->commits_suspended_since = Clock::now();
    std::uint64_t suppressed = 0;
    if (self->commit_error_log.shouldLog(suppressed))
      spdlog::warn("offset commit failed: {} (the next commit sends these offsets again while the partitions are "
                   "still assigned; {} similar suppressed)",
                   rd_kafka_err2str(err), suppressed);
    return;
  }
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) self->stats.poller().commits.add();
  for (int i = 0; offsets && i < offsets->cnt; ++i) {
    const auto& p = offsets->elems[i];
    if (p.err == RD_KAFKA_RESP_ERR_NO_ERROR && p.offset >= 0) self->tracker.markCommitted(p.partition, p.offset);
  }
}

// ---------------------------------------------------------------------------------------------

Pipeline::Impl::Impl(const RunConfig& config, Stats& s)
    : cfg(config), stats(s), acks(config.queue_capacity + 1) {
  const std::string client_id = "loginflow-" + cfg.instance_id;

  // Producer.
  auto pbase = kafka::producerDefaults();
  pbase.emplace_back("bootstrap.servers", cfg.brokers);
  pbase.emplace_back("client.id", client_id);
  kafka::ConfPtr pconf = kafka::buildConf(pbase, cfg.kafka_properties, kafka::Role::kProducer);
  rd_kafka_conf_set_opaque(pconf.get(), this);
  rd_kafka_conf_set_dr_msg_cb(pconf.get(), drMsgCb);
  rd_kafka_conf_set_error_cb(pconf.get(), errorCb);
  rd_kafka_conf_set_log_cb(pconf.get(), logCb);

  // Consumer.
  std::vector<std::pair<std::string, std::string>> cbase = {
      {"bootstrap.servers", cfg.brokers},
      {"group.id", cfg.group_id},
      {"client.id", client_id},
      // librdkafka commits what loginflow stores (rd_kafka_offsets_store: only offsets whose
      // outputs are acknowledged), every auto.commit.interval.ms, and skips a commit while the
      // group is rebalancing: a commit sent then makes librdkafka 2.0 drop the assignment
      // (confluentinc/librdkafka#4059, see commitCb()).
      {"enable.auto.commit", "true"},
      {"auto.commit.interval.ms", "1000"},
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", "earliest"},
      {"partition.assignment.strategy", "cooperative-sticky"},
      {"enable.partition.eof", "false"},
      // Bound what librdkafka prefetches (the rest of the memory bound is --queue-capacity).
      {"queued.max.messages.kbytes", "16384"},
  };
  kafka::ConfPtr cconf = kafka::buildConf(cbase, cfg.kafka_properties, kafka::Role::kConsumer);
  rd_kafka_conf_set_opaque(cconf.get(), this);
  rd_kafka_conf_set_rebalance_cb(cconf.get(), rebalanceCb);
  rd_kafka_conf_set_offset_commit_cb(cconf.get(), commitCb);
  rd_kafka_conf_set_error_cb(cconf.get(), errorCb);
  rd_kafka_conf_set_log_cb(cconf.get(), logCb);

  producer = kafka::createClient(RD_KAFKA_PRODUCER, std::move(pconf));
  consumer = kafka::createClient(RD_KAFKA_CONSUMER, std::move(cconf));
  rd_kafka_poll_set_consumer(consumer.get());
  consumer_queue.reset(rd_kafka_queue_get_consumer(consumer.get()));
  {
    char value[16] = {};
    std::size_t size = sizeof value;
    auto_commit = rd_kafka_conf_get(rd_kafka_conf(consumer.get()), "enable.auto.commit", value, &size) ==
                      RD_KAFKA_CONF_OK &&
                  std::string_view(value) == "true";
  }
  prefetch_waker.emplace(kafka::PrefetchWaker::limitsOf(consumer.get()));

  out_topic.reset(rd_kafka_topic_new(producer.get(), cfg.output_topic.c_str(), nullptr));
  dlq_topic.reset(rd_kafka_topic_new(producer.get(), cfg.dlq_topic.c_str(), nullptr));
  insights_topic.reset(rd_kafka_topic_new(producer.get(), cfg.insights_topic.c_str(), nullptr));
  if (!out_topic || !dlq_topic || !insights_topic) throw std::runtime_error("cannot create the producer's topic handles");

  slots.resize(cfg.queue_capacity);
  free_slots.reserve(cfg.queue_capacity);
  for (std::size_t i = cfg.queue_capacity; i-- > 0;) free_slots.push_back(static_cast<std::uint32_t>(i));
  for (std::size_t i = 0; i < cfg.workers; ++i) {
    queues.push_back(std::make_unique<WorkQueue>(cfg.queue_capacity + 1));
    signals.push_back(std::make_unique<WorkerSignal>());
  }
  touched.assign(cfg.workers, 0);
  batch.resize(kConsumeBatch);
}

Pipeline::Impl::~Impl() {
  // Threads are joined by their members' destructors (declared last). Anything left in the
  // queues after an abandoned stop is released here.
  stopLagThread();
  delivery_thread = {};
  worker_threads.clear();
  poller_thread = {};
  WorkItem item;
  for (auto& q : queues)
    while (q->pop(item)) rd_kafka_message_destroy(item.msg);
  for (auto* m : stash) rd_kafka_message_destroy(m);
  for (auto& r : retries)
    if (r.headers) rd_kafka_headers_destroy(r.headers);
  for (auto& r : incoming_retries)
    if (r.headers) rd_kafka_headers_destroy(r.headers);
  // librdkafka 2.0.2 aborts in rd_kafka_destroy() when the cooperative-sticky assignor was
  // chosen by a JoinGroup answer but no SyncGroup completed yet (its state is still null:
  // "rd_kafka_sticky_assignor_state_destroy: Assertion `assignor_state' failed",
  // confluentinc/librdkafka#4312, fixed in 2.3.0): a stop before the first assignment. The
  // consumer has left the group by now (or its close ran out of time); it is not destroyed
  // then, and the process exits without it.
  if (consumer && subscribed && !ever_assigned) {
    spdlog::debug("the consumer never had an assignment: not destroyed (librdkafka#4312)");
    consumer_queue.reset();
#if defined(__SANITIZE_ADDRESS__)
    __lsan_ignore_object(consumer.get());  // on purpose, and reachable from its threads anyway
#endif
    (void)consumer.release();
    return;
  }
  // A consumer whose close ran out of time (brokers gone) must not be closed again by
  // rd_kafka_destroy(), which would wait for the group coordinator without a time limit.
  if (consumer && !rd_kafka_consumer_closed(consumer.get())) {
    consumer_queue.reset();
    rd_kafka_destroy_flags(consumer.release(), RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  }
}

void Pipeline::Impl::connect() {
  std::string err = kafka::waitForCluster(consumer.get(), cfg.connect_timeout);
  if (!err.empty()) {
    throw std::runtime_error("cannot reach the Kafka brokers at " + cfg.brokers + " within " +
                             std::to_string(cfg.connect_timeout.count()) + " ms: " + err);
  }
  int n = kafka::partitionCount(consumer.get(), cfg.input_topic, milliseconds(5000));
  if (n == 0) spdlog::warn("input topic {} does not exist (yet); waiting for it", cfg.input_topic);
  else spdlog::info("connected to {}; input topic {} has {} partitions", cfg.brokers, cfg.input_topic, n);
}

void Pipeline::Impl::start(std::function<void()> finished) {
  on_finished = std::move(finished);
  kafka::PartitionListPtr topics(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(topics.get(), cfg.input_topic.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t err = rd_kafka_subscribe(consumer.get(), topics.get());
  if (err) throw std::runtime_error(std::string("cannot subscribe to ") + cfg.input_topic + ": " + rd_kafka_err2str(err));
  subscribed = true;

  const std::int64_t now = steadyMs();
  stats.poller().heartbeat_ms.store(now);
  stats.poller().last_consumed_ms.store(now);
  stats.delivery().heartbeat_ms.store(now);
  for (std::size_t i = 0; i < cfg.workers; ++i) stats.worker(i).heartbeat_ms.store(now);

  delivery_thread = std::jthread([this] { deliveryMain(); });
  for (std::size_t i = 0; i < cfg.workers; ++i) worker_threads.emplace_back([this, i] { workerMain(i); });
  poller_thread = std::jthread([this] { pollerMain(); });
  lag_thread = std::jthread([this] { lagMain(); });
  spdlog::info("pipeline started: {} workers, queue capacity {}, ordering {}, group {}", cfg.workers,
               cfg.queue_capacity, orderingName(cfg.ordering), cfg.group_id);
}

// ---------------------------------------------------------------------------------------------
// Poller

void Pipeline::Impl::pollerMain() {
  next_commit = Clock::now() + kCommitInterval;
  try {
    while (!stop_requested.load(std::memory_order_acquire) && !fatal.load(std::memory_order_acquire)) {
      pollOnce();
    }
    shutdown();
  } catch (const std::exception& e) {
    spdlog::critical("poller failed: {}", e.what());
    exit_code = 1;
    abandon.store(true);
    workers_stop.store(true, std::memory_order_release);
    // Wake the idle workers, so that they see the stop (the destructor joins them).
    for (auto& sig : signals) {
      sig->epoch.fetch_add(1, std::memory_order_release);
      sig->epoch.notify_one();
    }
    delivery_stop.store(true, std::memory_order_release);
  }
  if (on_finished) on_finished();
}

void Pipeline::Impl::pollOnce() {
  touchPoller();
  drainAcks();
  if (Clock::now() >= next_commit) {
    if (auto_commit) {
      storeOffsets();
      next_commit = Clock::now() + kStoreInterval;
    } else {
      if (commits_suspended_since == Clock::time_point{} ||
          Clock::now() - commits_suspended_since >= kCommitSuspendMax) {
        commits_suspended_since = {};
        maybeCommit(false);
      }
      next_commit = Clock::now() + kCommitInterval;
    }
  }
  if (prefetch_waker->poll(consumer.get(), consumer_queue.get())) touchPoller();

  // Flow control on free slots. With none free the poller stops taking records from
  // librdkafka's queue: they wait there, and librdkafka stops fetching by itself once that queue
  // holds queued.max.messages.kbytes. Pausing the partitions for every shortage would cost a
  // second each time: librdkafka (2.0) starts fetching a resumed partition only at its broker
  // thread's next periodic wake-up, up to 1 s later, which capped a backlog's throughput at
  // about --queue-capacity records per second. Only a long shortage pauses them (librdkafka
  // then drops what it prefetched), so that the poller can go on serving group events while it
  // waits; they are resumed when half the slots are free again.
  if (free_slots.empty()) {
    const auto now = Clock::now();
    if (slots_full_since == Clock::time_point{}) slots_full_since = now;
    if (!paused && now - slots_full_since >= kPauseAfter) {
      pauseAll();
      spdlog::info("no free slot for {} ms ({} records in flight): fetching paused on [{}]", kPauseAfter.count(),
                   cfg.queue_capacity, joinIds(paused_parts));
    }
  } else {
    slots_full_since = {};
    if (paused && free_slots.size() >= cfg.queue_capacity / 2) {
      const std::string was = joinIds(paused_parts);
      resumeAll();
      spdlog::info("half the slots free again: fetching resumed (paused were [{}])", was);
    }
  }

  while (!stash.empty() && !free_slots.empty()) {
    rd_kafka_message_t* m = stash.front();
    stash.pop_front();
    dispatch(m);
  }

  // Paused with no free slot: take one at a time (into the stash), to go on serving events.
  const bool take = !free_slots.empty() || paused;
  const std::size_t want = free_slots.empty() || !stash.empty() ? 1 : std::min(free_slots.size(), kConsumeBatch);
  ssize_t n = 0;
  if (take) {
    // Non-blocking first: returns what is there at once.
    n = rd_kafka_consume_batch_queue(consumer_queue.get(), 0, batch.data(), want);
  } else {
    // Leave the records in librdkafka's queue; wait a little for acknowledgements.
    std::this_thread::sleep_for(milliseconds(1));
  }
  if (take && n == 0) {
    // Nothing there: block for the first record (or an event), then take the rest.
    rd_kafka_message_t* first = rd_kafka_consume_queue(consumer_queue.get(), static_cast<int>(kPollTimeout.count()));
    if (first) {
      batch[0] = first;
      n = 1;
      if (want > 1) {
        ssize_t more = rd_kafka_consume_batch_queue(consumer_queue.get(), 0, batch.data() + 1, want - 1);
        if (more > 0) n += more;
      }
    }
  }
  if (n > 0) stats.poller().last_consumed_ms.store(steadyMs(), std::memory_order_relaxed);
  for (ssize_t i = 0; i < n; ++i) {
    rd_kafka_message_t* m = batch[static_cast<std::size_t>(i)];
    if (m->err) {
      if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        std::uint64_t suppressed = 0;
        if (consume_error_log.shouldLog(suppressed))
          spdlog::warn("consumer: {} ({} similar suppressed)", rd_kafka_message_errstr(m), suppressed);
      }
      rd_kafka_message_destroy(m);
      continue;
    }
    prefetch_waker->noteRecord(m->len);
    noteOffset(m->partition, m->offset);
    dispatch(m);
  }
  // Wake the workers that got records.
  for (std::size_t w = 0; w < touched.size(); ++w) {
    if (!touched[w]) continue;
    touched[w] = 0;
    signals[w]->epoch.fetch_add(1, std::memory_order_release);
    signals[w]->epoch.notify_one();
  }
  stats.poller().in_flight.store(static_cast<std::int64_t>(cfg.queue_capacity - free_slots.size()),
                                 std::memory_order_relaxed);
}

void Pipeline::Impl::dispatch(rd_kafka_message_t* m) {
  const std::int32_t partition = m->partition;
  if (!tracker.assigned(partition)) {  // revoked since it was fetched
    rd_kafka_message_destroy(m);
    return;
  }
  if (free_slots.empty()) {
    stash.push_back(m);
    return;
  }
  auto handle = tracker.track(partition, m->offset);
  if (!handle) {
    rd_kafka_message_destroy(m);
    return;
  }
  const std::uint32_t slot_id = free_slots.back();
  free_slots.pop_back();
  Slot& slot = slots[slot_id];
  slot.handle = *handle;
  rd_kafka_timestamp_type_t tstype;
  slot.kafka_ts_ms = rd_kafka_message_timestamp(m, &tstype);
  slot.dead_letter = false;

  std::size_t w = 0;
  const std::size_t n = queues.size();
  switch (cfg.ordering) {
    case Ordering::kKey:
      w = m->key ? fnv1a(m->key, m->key_len) % n : fnv1a(&partition, sizeof partition) % n;
      break;
    case Ordering::kPartition:
      w = fnv1a(&partition, sizeof partition) % n;
      break;
    case Ordering::kUnordered:
      w = next_worker++ % n;
      break;
  }
  // Cannot fail: every queue has room for all slots.
  queues[w]->push(WorkItem{m, slot_id});
  touched[w] = 1;
  stats.poller().dispatched[w].add();
  stats.poller().consumed.add();
}

void Pipeline::Impl::noteOffset(std::int32_t partition, std::int64_t offset) {
  if (partition < 0) return;
  const auto p = static_cast<std::size_t>(partition);
  if (p >= next_offset.size()) next_offset.resize(p + 1, -1);
  const std::int64_t expected = next_offset[p];
  next_offset[p] = offset + 1;
  if (expected < 0 || offset <= expected) return;  // first record, contiguous, or a re-fetch
  stats.poller().input_gaps.add();
  std::uint64_t suppressed = 0;
  if (gap_log.shouldLog(suppressed))
    spdlog::warn("input gap: partition {} jumped from offset {} to {}: {} offsets never consumed (expected on a "
                 "compacted topic or after transaction markers; otherwise records were removed before loginflow "
                 "read them: retention, an offset reset) ({} similar suppressed)",
                 partition, expected, offset, offset - expected, suppressed);
}

void Pipeline::Impl::drainAcks() {
  std::uint32_t ids[256];
  std::size_t n;
  while ((n = acks.pop(ids, 256)) > 0) {
    for (std::size_t i = 0; i < n; ++i) {
      tracker.done(slots[ids[i]].handle);  // false for a revoked partition: ignored
      free_slots.push_back(ids[i]);
    }
  }
}

void Pipeline::Impl::storeOffsets() {
  const auto pending = tracker.pendingCommits();
  if (pending.empty()) return;
  kafka::PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(pending.size())));
  for (const auto& [p, off] : pending)
    rd_kafka_topic_partition_list_add(list.get(), cfg.input_topic.c_str(), p)->offset = off;
  // Per-partition errors (a partition revoked meanwhile) leave its offset unstored: harmless.
  rd_kafka_offsets_store(consumer.get(), list.get());
}

bool Pipeline::Impl::maybeCommit(bool sync, Clock::time_point deadline, Between between) {
  auto listOfPending = [this] {
    auto pending = tracker.pendingCommits();
    kafka::PartitionListPtr list;
    if (pending.empty()) return list;
    list.reset(rd_kafka_topic_partition_list_new(static_cast<int>(pending.size())));
    for (const auto& [p, off] : pending)
      rd_kafka_topic_partition_list_add(list.get(), cfg.input_topic.c_str(), p)->offset = off;
    return list;
  };
  if (!sync) {
    if (auto list = listOfPending()) rd_kafka_commit_queue(consumer.get(), list.get(), consumer_queue.get(), commitCb, this);
    return true;
  }
  // librdkafka commits the stored offsets of partitions it unassigns, and at close: they must
  // not be older than what this commit sends, or they would move the committed offset back.
  if (auto_commit) storeOffsets();
  // Not rd_kafka_commit_queue(…, NULL queue, …): that waits for the coordinator with no time
  // limit, so a stop with the brokers gone would hang past --shutdown-timeout. The result is
  // taken as an event from a queue of our own, polled until the deadline.
  const int max_attempts = between == Between::kWait ? 3 : 1'000'000;
  for (int attempt = 1; attempt <= max_attempts && Clock::now() < deadline; ++attempt) {
    auto list = listOfPending();  // again each time: a served rebalance may have changed it
    if (!list) return true;
    kafka::QueuePtr q(rd_kafka_queue_new(consumer.get()));
    rd_kafka_resp_err_t err = rd_kafka_commit_queue(consumer.get(), list.get(), q.get(), nullptr, this);
    bool answered = false;
    while (!err && !answered && Clock::now() < deadline) {
      touchPoller();
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
      rd_kafka_event_t* ev = rd_kafka_queue_poll(q.get(), static_cast<int>(std::clamp<std::int64_t>(left, 1, 100)));
      if (!ev) continue;
      if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_OFFSET_COMMIT) {
        answered = true;
        err = rd_kafka_event_error(ev);
        commitCb(consumer.get(), err, rd_kafka_event_topic_partition_list(ev), this);
      }
      rd_kafka_event_destroy(ev);
    }
    if (answered && (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET)) return true;
    if (attempt <= 3 || attempt % 10 == 0)
      spdlog::warn("synchronous offset commit {} (attempt {}{})",
                   answered || err ? std::string("failed: ") + rd_kafka_err2str(err) : std::string("timed out"), attempt,
                   between == Between::kWait ? " of 3" : ", retrying until the stop's deadline");
    const auto pause_until = std::min(deadline, Clock::now() + milliseconds(200));
    if (between == Between::kWait) {
      if (attempt < max_attempts && pause_until < deadline) std::this_thread::sleep_until(pause_until);
      continue;
    }
    // Serve the group's events meanwhile (the rebalance callback runs from here); the
    // partitions are paused, so a record that still arrives is dropped, as on any stop.
    while (Clock::now() < pause_until) {
      touchPoller();
      const auto left = std::chrono::duration_cast<milliseconds>(pause_until - Clock::now()).count();
      rd_kafka_message_t* m = rd_kafka_consume_queue(consumer_queue.get(), static_cast<int>(std::max<std::int64_t>(left, 1)));
      if (m) rd_kafka_message_destroy(m);
    }
  }
  return false;
}

void Pipeline::Impl::setPaused(const std::vector<std::int32_t>& ids, bool pause) {
  if (ids.empty()) return;
  kafka::PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(ids.size())));
  for (auto p : ids) rd_kafka_topic_partition_list_add(list.get(), cfg.input_topic.c_str(), p);
  const rd_kafka_resp_err_t err =
      pause ? rd_kafka_pause_partitions(consumer.get(), list.get()) : rd_kafka_resume_partitions(consumer.get(), list.get());
  if (err) spdlog::warn("cannot {} partitions: {}", pause ? "pause" : "resume", rd_kafka_err2str(err));
  for (auto p : ids) {
    if (pause) paused_parts.insert(p);
    else paused_parts.erase(p);
  }
}

void Pipeline::Impl::pauseAll() {
  std::vector<std::int32_t> ids;
  rd_kafka_topic_partition_list_t* a = nullptr;
  if (rd_kafka_assignment(consumer.get(), &a) == RD_KAFKA_RESP_ERR_NO_ERROR && a) {
    kafka::PartitionListPtr list(a);
    for (int i = 0; i < list->cnt; ++i) ids.push_back(list->elems[i].partition);
  }
  setPaused(ids, true);
  paused = true;
}

void Pipeline::Impl::resumeAll() {
  // What is assigned now, and whatever was paused before (a partition since unassigned was
  // resumed then; resuming one that is not paused is harmless).
  std::set<std::int32_t> ids(paused_parts);
  rd_kafka_topic_partition_list_t* a = nullptr;
  if (rd_kafka_assignment(consumer.get(), &a) == RD_KAFKA_RESP_ERR_NO_ERROR && a) {
    kafka::PartitionListPtr list(a);
    for (int i = 0; i < list->cnt; ++i) ids.insert(list->elems[i].partition);
  }
  setPaused(std::vector<std::int32_t>(ids.begin(), ids.end()), false);
  paused = false;
}

void Pipeline::Impl::waitForPartitions(const std::vector<std::int32_t>& parts, Clock::time_point deadline) {
  auto outstanding = [&] {
    std::size_t n = 0;
    for (auto p : parts) n += tracker.inFlight(p);
    return n;
  };
  while (outstanding() > 0 && Clock::now() < deadline) {
    touchPoller();
    drainAcks();
    if (outstanding() == 0) break;
    std::this_thread::sleep_for(milliseconds(1));
  }
}

void Pipeline::Impl::resumeLostPartitions(rd_kafka_topic_partition_list_t* parts) {
  if (lost_positions.empty()) return;
  kafka::PartitionListPtr query(rd_kafka_topic_partition_list_new(parts->cnt));
  std::map<std::int32_t, std::int64_t> candidates;
  for (int i = 0; i < parts->cnt; ++i) {
    const auto it = lost_positions.find(parts->elems[i].partition);
    if (it == lost_positions.end()) continue;
    rd_kafka_topic_partition_list_add(query.get(), cfg.input_topic.c_str(), it->first);
    candidates.emplace(*it);
    lost_positions.erase(it);
  }
  if (candidates.empty()) return;
  // Another member may have had the partition meanwhile and got further: resume at our
  // position only when the group's committed offset is behind it.
  rd_kafka_resp_err_t err = rd_kafka_committed(consumer.get(), query.get(), 5000);
  if (err) {
    spdlog::warn("cannot read the committed offsets of the partitions lost earlier ({}): they resume from the "
                 "committed offsets, and what was output since is output again",
                 rd_kafka_err2str(err));
    return;
  }
  for (int i = 0; i < query->cnt; ++i) {
    const auto& q = query->elems[i];
    const std::int64_t ours = candidates[q.partition];
    if (q.err || (q.offset >= 0 && q.offset >= ours)) continue;
    for (int j = 0; j < parts->cnt; ++j) {
      if (parts->elems[j].partition != q.partition) continue;
      parts->elems[j].offset = ours;
      spdlog::info("partition {} was lost with its outputs acknowledged up to offset {} (committed: {}): resuming there",
                   q.partition, ours, q.offset);
    }
  }
}

void Pipeline::Impl::onRebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts) {
  commits_suspended_since = {};  // the rebalance has reached this member: periodic commits resume
  // Decided per callback: the group's protocol is known only once it has one (before the first
  // join librdkafka says "NONE"). COOPERATIVE (cooperative-sticky) hands over increments; EAGER
  // (range, roundrobin) the whole assignment, revoked in full before every rebalance.
  const bool cooperative = std::string_view(rd_kafka_rebalance_protocol(consumer.get())) == "COOPERATIVE";
  std::vector<std::int32_t> ids;
  ids.reserve(static_cast<std::size_t>(parts->cnt));
  for (int i = 0; i < parts->cnt; ++i) ids.push_back(parts->elems[i].partition);
  const std::string text = joinIds(ids);

  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    resumeLostPartitions(parts);
    for (int i = 0; i < parts->cnt; ++i) {
      forgetOffset(parts->elems[i].partition);
      tracker.assign(parts->elems[i].partition);
      if (parts->elems[i].offset >= 0) tracker.resumeAt(parts->elems[i].partition, parts->elems[i].offset);
    }
    stats.poller().rebalances[static_cast<std::size_t>(RebalanceKind::kAssign)].add();
    std::string failed;
    if (cooperative) {
      if (rd_kafka_error_t* e = rd_kafka_incremental_assign(consumer.get(), parts)) {
        failed = rd_kafka_error_string(e);
        rd_kafka_error_destroy(e);
      }
    } else if (rd_kafka_resp_err_t e = rd_kafka_assign(consumer.get(), parts)) {
      failed = rd_kafka_err2str(e);
    }
    if (!failed.empty()) {
      spdlog::error("assigning [{}] failed ({} rebalance protocol): {}", text, cooperative ? "COOPERATIVE" : "EAGER",
                    failed);
      return;
    }
    ever_assigned = true;
    // Explicitly, either way: librdkafka may remember a pause from an earlier assignment.
    setPaused(ids, paused);
    stats.poller().ready.store(true);
    spdlog::info("partitions assigned: [{}]", text);
    return;
  }

  // Revoked or lost.
  const bool lost = rd_kafka_assignment_lost(consumer.get());
  // Records of these partitions that were consumed but not dispatched are dropped: the next
  // owner starts from the committed offset.
  for (auto it = stash.begin(); it != stash.end();) {
    if (std::find(ids.begin(), ids.end(), (*it)->partition) != ids.end()) {
      rd_kafka_message_destroy(*it);
      it = stash.erase(it);
    } else {
      ++it;
    }
  }
  // Finish what is in flight for them (bounded), then commit (not possible when lost), then
  // release.
  {
    auto bound = std::min<milliseconds>(cfg.shutdown_timeout, milliseconds(15'000));
    auto deadline = Clock::now() + bound;
    if (stopping.load() && stopDeadline() < deadline) deadline = stopDeadline();
    waitForPartitions(ids, deadline);
  }
  if (lost) {
    // The group moved on without this member's commit (an eviction, or librdkafka 2.0's
    // reaction to a commit that met a rejoin: confluentinc/librdkafka#4059). Remember how far
    // the outputs got: when the partition comes back to this member, it resumes there instead of
    // redoing the work since the last commit (resumeLostPartitions()).
    for (auto p : ids) {
      const std::int64_t done = tracker.committable(p);
      if (done >= 0 && done > tracker.committed(p)) lost_positions[p] = done;
    }
  } else {
    // The commit gets its own budget (the drain may have used all of its own), but never
    // beyond the stop's deadline.
    auto commit_deadline = Clock::now() + milliseconds(10'000);
    if (stopping.load()) commit_deadline = std::min(commit_deadline, std::max(stopDeadline(), Clock::now() + milliseconds(250)));
    const bool committed = maybeCommit(true, commit_deadline);
    std::size_t left = 0;
    for (auto p : ids) left += tracker.inFlight(p);
    if (left > 0) spdlog::warn("revoking [{}] with {} records not yet acknowledged; they will be processed again by the next owner", text, left);
    if (!committed) {
      spdlog::warn("revoking [{}] without committing their progress (see the commit errors above): the next owner "
                   "processes again what was output since their last commit",
                   text);
      for (auto p : ids) {
        const std::int64_t done = tracker.committable(p);
        if (done >= 0 && done > tracker.committed(p)) lost_positions[p] = done;
      }
    }
  }
  for (auto p : ids) {
    tracker.revoke(p);
    forgetOffset(p);
  }
  {
    std::lock_guard lock(stats.poller().lag_mu);
    for (auto p : ids) stats.poller().consumer_lag.erase(p);
  }
  stats.poller().rebalances[static_cast<std::size_t>(lost ? RebalanceKind::kLost : RebalanceKind::kRevoke)].add();
  // Resumed before they go, so that none comes back paused (see paused_parts).
  {
    std::vector<std::int32_t> resume;
    for (auto p : ids)
      if (paused_parts.count(p)) resume.push_back(p);
    setPaused(resume, false);
  }
  if (cooperative) {
    rd_kafka_error_t* e = rd_kafka_incremental_unassign(consumer.get(), parts);
    if (e) {
      spdlog::error("unassign failed: {}", rd_kafka_error_string(e));
      rd_kafka_error_destroy(e);
    }
  } else if (rd_kafka_resp_err_t e = rd_kafka_assign(consumer.get(), nullptr)) {
    spdlog::error("unassign failed: {}", rd_kafka_err2str(e));
  }
  if (lost) stats.poller().ready.store(false);
  spdlog::info("partitions {}: [{}]", lost ? "lost" : "revoked", text);
}

// ---------------------------------------------------------------------------------------------
// Lag thread: consumer_lag as `kafka-consumer-groups --describe` shows it, from the brokers, so
// that it keeps growing whenever consumption stops, whatever the reason (librdkafka's own
// statistics take the high watermark from fetch responses, and freeze with the fetcher).

void Pipeline::Impl::lagMain() {
  std::unique_lock lock(lag_wait_mu);
  while (!lag_stop) {
    lock.unlock();
    refreshLag();
    lock.lock();
    lag_wait_cv.wait_for(lock, kLagRefresh, [this] { return lag_stop; });
  }
}

void Pipeline::Impl::stopLagThread() {
  {
    std::lock_guard lock(lag_wait_mu);
    lag_stop = true;
  }
  lag_wait_cv.notify_all();
  if (lag_thread.joinable()) lag_thread.join();
}

void Pipeline::Impl::refreshLag() {
  rd_kafka_topic_partition_list_t* a = nullptr;
  if (rd_kafka_assignment(consumer.get(), &a) != RD_KAFKA_RESP_ERR_NO_ERROR || !a) return;
  kafka::PartitionListPtr owned(a);
  if (owned->cnt == 0) {
    std::lock_guard lock(stats.poller().lag_mu);
    stats.poller().consumer_lag.clear();
    stats.poller().lag_refreshed_ms = steadyMs();
    return;
  }
  // The group's committed offsets (OffsetFetch to the coordinator) and the high watermarks
  // (ListOffsets for the latest offset, to each leader).
  kafka::PartitionListPtr committed(rd_kafka_topic_partition_list_copy(owned.get()));
  kafka::PartitionListPtr ends(rd_kafka_topic_partition_list_copy(owned.get()));
  for (int i = 0; i < ends->cnt; ++i) ends->elems[i].offset = RD_KAFKA_OFFSET_END;  // latest
  const int timeout = static_cast<int>(kLagQueryTimeout.count());
  rd_kafka_resp_err_t err = rd_kafka_committed(consumer.get(), committed.get(), timeout);
  if (!err) err = rd_kafka_offsets_for_times(consumer.get(), ends.get(), timeout);
  if (err) {
    spdlog::debug("consumer lag not refreshed: {}", rd_kafka_err2str(err));
    return;
  }
  // Partitions the group has no committed offset for: the lag counts from the earliest offset
  // (where auto.offset.reset=earliest starts).
  kafka::PartitionListPtr starts(rd_kafka_topic_partition_list_new(1));
  for (int i = 0; i < committed->cnt; ++i)
    if (!committed->elems[i].err && committed->elems[i].offset < 0)
      rd_kafka_topic_partition_list_add(starts.get(), cfg.input_topic.c_str(), committed->elems[i].partition)->offset =
          RD_KAFKA_OFFSET_BEGINNING;
  if (starts->cnt > 0 && rd_kafka_offsets_for_times(consumer.get(), starts.get(), timeout)) return;
  std::map<std::int32_t, std::int64_t> lag;
  for (int i = 0; i < ends->cnt; ++i) {
    const auto& e = ends->elems[i];
    const auto* c = rd_kafka_topic_partition_list_find(committed.get(), cfg.input_topic.c_str(), e.partition);
    if (e.err || e.offset < 0 || !c || c->err) continue;
    std::int64_t from = c->offset;
    if (from < 0) {
      const auto* s = rd_kafka_topic_partition_list_find(starts.get(), cfg.input_topic.c_str(), e.partition);
      if (!s || s->err || s->offset < 0) continue;
      from = s->offset;
    }
    lag[e.partition] = std::max<std::int64_t>(0, e.offset - from);
  }
  std::lock_guard lock(stats.poller().lag_mu);
  stats.poller().consumer_lag = std::move(lag);
  stats.poller().lag_refreshed_ms = steadyMs();
}

void Pipeline::Impl::shutdown() {
  stopping.store(true);
  stats.poller().ready.store(false);
  if (stop_deadline_rep.load() == 0)
    stop_deadline_rep.store((Clock::now() + cfg.shutdown_timeout).time_since_epoch().count());
  const Clock::time_point stop_deadline = stopDeadline();
  if (fatal.load()) {
    std::lock_guard lock(fatal_mu);
    spdlog::error("stopping after a fatal error: {}", fatal_reason);
  } else {
    spdlog::info("stopping: finishing {} records in flight", tracker.inFlight());
  }
  // Stop fetching; what was consumed but not dispatched is dropped (not committed either).
  pauseAll();
  for (auto* m : stash) rd_kafka_message_destroy(m);
  stash.clear();

  // Leave a little of the budget for the final commit and leaving the group.
  const auto reserve = std::min<milliseconds>(milliseconds(2000), cfg.shutdown_timeout / 4);
  const auto drain_deadline = stop_deadline - reserve;
  while (tracker.inFlight() > 0 && Clock::now() < drain_deadline && !fatal.load()) {
    touchPoller();
    drainAcks();
    if (tracker.inFlight() == 0) break;
    std::this_thread::sleep_for(milliseconds(1));
  }
  drainAcks();
  const std::size_t left = tracker.inFlight();
  maybeCommit(true, std::max(stop_deadline - reserve / 2, Clock::now() + milliseconds(250)), Between::kServeGroupEvents);
  drainAcks();
  if (!lost_positions.empty())
    spdlog::warn("{} partitions were lost to a rebalance during the stop: their next owner processes again what was "
                 "output since their last commit",
                 lost_positions.size());
  const bool clean = left == 0 && tracker.pendingCommits().empty() && !fatal.load();
  if (!clean) {
    abandon.store(true);
    std::string detail;
    for (auto p : tracker.partitions()) {
      detail += " partition " + std::to_string(p) + ": " + std::to_string(tracker.inFlight(p)) +
                " in flight, committed " + std::to_string(tracker.committed(p)) + ";";
    }
    spdlog::error("stop incomplete: {} records not acknowledged{} when the shutdown timeout passed; they will be "
                  "processed again on restart.{}",
                  left, tracker.pendingCommits().empty() ? "" : " and offsets not committed", detail);
    exit_code = 1;
  }

  // Leave the group (revocation runs through onRebalance: nothing left to wait for).
  kafka::QueuePtr close_q(rd_kafka_queue_new(consumer.get()));
  rd_kafka_error_t* e = rd_kafka_consumer_close_queue(consumer.get(), close_q.get());
  if (e) {
    spdlog::warn("leaving the group: {}", rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
  } else {
    const auto close_deadline = std::max(stop_deadline, Clock::now() + milliseconds(500));
    while (!rd_kafka_consumer_closed(consumer.get()) && Clock::now() < close_deadline) {
      touchPoller();
      rd_kafka_event_t* ev = rd_kafka_queue_poll(close_q.get(), 50);
      if (ev) {
        if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE) {
          onRebalance(rd_kafka_event_error(ev), rd_kafka_event_topic_partition_list(ev));
        }
        rd_kafka_event_destroy(ev);
      }
    }
    if (!rd_kafka_consumer_closed(consumer.get())) spdlog::warn("leaving the group timed out");
  }

  stopLagThread();
  // Workers: no more records come; on an incomplete stop they drop what is queued.
  workers_stop.store(true, std::memory_order_release);
  for (auto& s : signals) {
    s->epoch.fetch_add(1, std::memory_order_release);
    s->epoch.notify_one();
  }
  for (auto& t : worker_threads)
    if (t.joinable()) t.join();
  delivery_stop.store(true, std::memory_order_release);
  if (delivery_thread.joinable()) delivery_thread.join();
  const StatsSnapshot totals = stats.snapshot();
  spdlog::info("stopped{}; since the start: consumed {}, outputs acknowledged {}, dead letters acknowledged {}",
               clean ? " cleanly: everything consumed was produced and committed" : "", totals.consumed,
               totals.produced, std::accumulate(totals.dlq.begin(), totals.dlq.end(), std::uint64_t{0}));
}

// ---------------------------------------------------------------------------------------------
// Workers

void Pipeline::Impl::workerMain(std::size_t index) {
  Transformer transformer;
  WorkQueue& q = *queues[index];
  WorkerSignal& sig = *signals[index];
  WorkerShard& shard = stats.worker(index);
  WorkItem items[kWorkerBatch];
  while (true) {
    std::size_t n = q.pop(items, kWorkerBatch);
    if (n > 0) {
      shard.heartbeat_ms.store(steadyMs(), std::memory_order_relaxed);
      for (std::size_t i = 0; i < n; ++i) {
        if (abandon.load(std::memory_order_relaxed)) {
          rd_kafka_message_destroy(items[i].msg);
        } else {
          process(index, transformer, items[i]);
        }
      }
      shard.popped.add(n);
      continue;
    }
    const std::uint64_t epoch = sig.epoch.load(std::memory_order_acquire);
    if (q.read_available() > 0) continue;
    if (workers_stop.load(std::memory_order_acquire)) break;
    shard.idle.store(true, std::memory_order_relaxed);
    sig.epoch.wait(epoch, std::memory_order_acquire);
    shard.idle.store(false, std::memory_order_relaxed);
    shard.heartbeat_ms.store(steadyMs(), std::memory_order_relaxed);
  }
  shard.idle.store(true);
}

bool Pipeline::Impl::produceWithBackpressure(std::size_t index, rd_kafka_topic_t* rkt, const char* key,
                                             std::size_t key_len, const char* value, std::size_t value_len,
                                             rd_kafka_headers_t* headers, void* opaque, Clock::duration& waited) {
  while (true) {
    rd_kafka_resp_err_t err;
    if (headers) {
      err = rd_kafka_producev(producer.get(), RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, key_len),
                              RD_KAFKA_V_VALUE(const_cast<char*>(value), value_len), RD_KAFKA_V_HEADERS(headers),
                              RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    } else {
      err = rd_kafka_producev(producer.get(), RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, key_len),
                              RD_KAFKA_V_VALUE(const_cast<char*>(value), value_len), RD_KAFKA_V_OPAQUE(opaque),
                              RD_KAFKA_V_END);
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return true;  // headers now owned by librdkafka
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      // Backpressure from librdkafka's own queue: wait for deliveries to make room.
      stats.worker(index).producer_queue_full.add();
      stats.worker(index).heartbeat_ms.store(steadyMs(), std::memory_order_relaxed);
      if (abandon.load(std::memory_order_relaxed)) {
        if (headers) rd_kafka_headers_destroy(headers);
        return false;
      }
      const auto sleep_start = Clock::now();
      std::this_thread::sleep_for(milliseconds(1));
      waited += Clock::now() - sleep_start;
      continue;
    }
    // Refused at once (unknown topic, message too large, fatal state): hand it to the
    // delivery thread's retry list, so that this worker goes on.
    Retry r;
    r.rkt = rkt;
    r.key_null = key == nullptr;
    if (key) r.key.assign(key, key_len);
    r.value_null = value == nullptr;
    if (value) r.value.assign(value, value_len);
    r.headers = headers;
    r.slot = static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(opaque) - 1);
    r.attempt = 1;
    r.due = Clock::now() + retryBackoff(0);
    r.first_error = err;  // counted by the delivery thread (the shard's single writer)
    std::uint64_t suppressed = 0;
    if (produce_error_log.shouldLog(suppressed))
      spdlog::warn("produce to {} refused: {}; retrying with backoff ({} similar suppressed)", rd_kafka_topic_name(rkt),
                   rd_kafka_err2str(err), suppressed);
    std::lock_guard lock(retry_mu);
    incoming_retries.push_back(std::move(r));
    return true;
  }
}

void Pipeline::Impl::process(std::size_t index, Transformer& t, const WorkItem& item) {
  WorkerShard& shard = stats.worker(index);
  rd_kafka_message_t* m = item.msg;
  const auto t0 = Clock::now();
  Clock::duration waited{};
  InputRecord in;
  in.key = static_cast<const char*>(m->key);
  in.key_len = m->key_len;
  in.value = static_cast<const char*>(m->payload);
  in.value_len = m->len;
  in.source = SourceMeta{cfg.input_topic, m->partition, m->offset};
  const Result& r = t.apply(in, wallClockMs());
  Slot& slot = slots[item.slot];
  void* opaque = slotOpaque(item.slot);
  if (r.kind == Result::Kind::kOutput) {
    slot.dead_letter = false;
    shard.outputs.add();
    shard.by_device_type.add(r.has_device_type ? r.device_type : std::string_view());
    shard.by_locale[r.has_locale ? localeIndex(r.locale) : 0].add();
    for (std::size_t w = 0; w < kWarningCount; ++w)
      if (r.warnings & (1U << w)) shard.warnings[w].add();
    produceWithBackpressure(index, out_topic.get(), r.key.data(), r.key.size(), r.value.data(), r.value.size(),
                            nullptr, opaque, waited);
  } else {
    slot.dead_letter = true;
    slot.reason = r.reason;
    shard.dead_letters.add();
    char part[16], off[24], size[24];
    auto pe = std::to_chars(part, part + sizeof part, m->partition).ptr;
    auto oe = std::to_chars(off, off + sizeof off, m->offset).ptr;
    rd_kafka_headers_t* h = rd_kafka_headers_new(6);
    const std::string_view reason = dlqReasonName(r.reason);
    rd_kafka_header_add(h, "error.reason", -1, reason.data(), static_cast<ssize_t>(reason.size()));
    rd_kafka_header_add(h, "error.detail", -1, r.detail.data(), static_cast<ssize_t>(r.detail.size()));
    rd_kafka_header_add(h, "source.topic", -1, cfg.input_topic.data(), static_cast<ssize_t>(cfg.input_topic.size()));
    rd_kafka_header_add(h, "source.partition", -1, part, pe - part);
    rd_kafka_header_add(h, "source.offset", -1, off, oe - off);
    if (r.reason == DlqReason::kTooLarge) {
      auto se = std::to_chars(size, size + sizeof size, r.original_size).ptr;
      rd_kafka_header_add(h, "error.original_size", -1, size, se - size);
    }
    produceWithBackpressure(index, dlq_topic.get(), static_cast<const char*>(m->key), m->key_len,
                            r.dlq_value_null ? nullptr : r.dlq_value.data(), r.dlq_value.size(), h, opaque, waited);
  }
  // The worker's own time: waiting for room in librdkafka's queue (backpressure from the
  // brokers) is counted by producer_queue_full, not here.
  shard.processing.observe(std::chrono::duration<double>(Clock::now() - t0 - waited).count());
  rd_kafka_message_destroy(m);
}

// ---------------------------------------------------------------------------------------------
// Delivery thread

void Pipeline::Impl::deliveryMain() {
  while (!delivery_stop.load(std::memory_order_acquire)) {
    stats.delivery().heartbeat_ms.store(steadyMs(), std::memory_order_relaxed);
    rd_kafka_poll(producer.get(), retries.empty() ? 50 : 10);
    runDueRetries();
  }
  // Final flush: whatever is still queued in librdkafka gets its chance (insights too).
  const auto budget = std::max<std::int64_t>(
      500, std::chrono::duration_cast<milliseconds>(stopDeadline() - Clock::now()).count());
  rd_kafka_flush(producer.get(), static_cast<int>(std::min<std::int64_t>(budget, 30'000)));
}

void Pipeline::Impl::onDelivery(const rd_kafka_message_t* m) {
  auto id = reinterpret_cast<std::uintptr_t>(m->_private);
  DeliveryShard& shard = stats.delivery();
  if (m->err) shard.producer_errors[errorSlot(m->err)].add();
  if (id == 0) {  // an insights snapshot: best effort
    if (m->err) spdlog::warn("insights snapshot not delivered: {}", rd_kafka_err2str(m->err));
    return;
  }
  const auto slot_id = static_cast<std::uint32_t>(id - 1);
  const Slot& slot = slots[slot_id];
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (slot.dead_letter) {
      shard.dlq[static_cast<std::size_t>(slot.reason)].add();
    } else {
      shard.produced.add();
      if (slot.kafka_ts_ms > 0) {
        const double seconds = static_cast<double>(wallClockMs() - slot.kafka_ts_ms) / 1000.0;
        shard.end_to_end.observe(seconds < 0 ? 0 : seconds);
      }
    }
    acks.push(slot_id);  // cannot fail: one entry per slot at most
    return;
  }
  // librdkafka gave up (its retries exhausted, or a permanent error). Never count it done:
  // retry with capped exponential backoff until it is acknowledged or we stop.
  std::uint64_t suppressed = 0;
  if (produce_error_log.shouldLog(suppressed))
    spdlog::warn("delivery to {} failed: {}; retrying with backoff ({} similar suppressed)",
                 rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err), suppressed);
  if (abandon.load()) return;
  Retry r;
  r.rkt = m->rkt == out_topic.get() || m->rkt == dlq_topic.get() ? m->rkt
          : slot.dead_letter                                     ? dlq_topic.get()
                                                                 : out_topic.get();
  r.key_null = m->key == nullptr;
  if (m->key) r.key.assign(static_cast<const char*>(m->key), m->key_len);
  r.value_null = m->payload == nullptr;
  if (m->payload) r.value.assign(static_cast<const char*>(m->payload), m->len);
  rd_kafka_headers_t* h = nullptr;
  if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR && h) r.headers = rd_kafka_headers_copy(h);
  r.slot = slot_id;
  r.attempt = 1;
  r.due = Clock::now() + retryBackoff(0);
  retries.push_back(std::move(r));
}

void Pipeline::Impl::runDueRetries() {
  {
    std::lock_guard lock(retry_mu);
    for (auto& r : incoming_retries) {
      stats.delivery().producer_errors[errorSlot(r.first_error)].add();
      retries.push_back(std::move(r));
    }
    incoming_retries.clear();
  }
  if (retries.empty()) return;
  const auto now = Clock::now();
  for (auto it = retries.begin(); it != retries.end();) {
    if (abandon.load()) {
      if (it->headers) rd_kafka_headers_destroy(it->headers);
      it = retries.erase(it);
      continue;
    }
    if (it->due > now) {
      ++it;
      continue;
    }
    rd_kafka_resp_err_t err;
    if (it->headers) {
      err = rd_kafka_producev(producer.get(), RD_KAFKA_V_RKT(it->rkt), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_KEY(it->key_null ? nullptr : it->key.data(), it->key.size()),
                              RD_KAFKA_V_VALUE(it->value_null ? nullptr : it->value.data(), it->value.size()),
                              RD_KAFKA_V_HEADERS(it->headers), RD_KAFKA_V_OPAQUE(slotOpaque(it->slot)),
                              RD_KAFKA_V_END);
    } else {
      err = rd_kafka_producev(producer.get(), RD_KAFKA_V_RKT(it->rkt), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_KEY(it->key_null ? nullptr : it->key.data(), it->key.size()),
                              RD_KAFKA_V_VALUE(it->value_null ? nullptr : it->value.data(), it->value.size()),
                              RD_KAFKA_V_OPAQUE(slotOpaque(it->slot)), RD_KAFKA_V_END);
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      it = retries.erase(it);  // headers now owned by librdkafka
    } else {
      stats.delivery().producer_errors[errorSlot(err)].add();
      it->due = now + retryBackoff(it->attempt++);
      ++it;
    }
  }
}

// ---------------------------------------------------------------------------------------------

Pipeline::Pipeline(const RunConfig& config, Stats& stats) : impl_(std::make_unique<Impl>(config, stats)) {}
Pipeline::~Pipeline() = default;
void Pipeline::connect() { impl_->connect(); }
void Pipeline::start(std::function<void()> on_finished) { impl_->start(std::move(on_finished)); }

void Pipeline::requestStop() noexcept {
  if (!impl_->stop_requested.load()) {
    impl_->stop_deadline_rep.store((Clock::now() + impl_->cfg.shutdown_timeout).time_since_epoch().count(),
                                   std::memory_order_release);
    impl_->stopping.store(true);
    impl_->stop_requested.store(true, std::memory_order_release);
  }
}

int Pipeline::join() {
  if (impl_->poller_thread.joinable()) impl_->poller_thread.join();
  return impl_->exit_code != 0 || impl_->fatal.load() ? 1 : 0;
}

bool Pipeline::healthy(std::string* why) const {
  const std::int64_t now = steadyMs();
  const Stats& s = impl_->stats;
  auto stale = [&](std::int64_t hb) { return now - hb > kLivenessMs; };
  if (stale(s.poller().heartbeat_ms.load())) {
    if (why) *why = "poller made no progress in 10 s";
    return false;
  }
  if (stale(s.delivery().heartbeat_ms.load())) {
    if (why) *why = "delivery thread made no progress in 10 s";
    return false;
  }
  for (std::size_t i = 0; i < s.workers(); ++i) {
    if (!s.worker(i).idle.load() && stale(s.worker(i).heartbeat_ms.load())) {
      if (why) *why = "worker " + std::to_string(i) + " made no progress in 10 s";
      return false;
    }
  }
  // Stuck by its own state: records to consume (lag the brokers report), room to take them
  // (free slots), and nothing taken for kStallMs. A broker outage is not such a state: the lag
  // is then unknown (not refreshed lately), or the slots are full (the output is stuck).
  const std::int64_t idle_ms = now - s.poller().last_consumed_ms.load(std::memory_order_relaxed);
  if (idle_ms > kStallMs && !impl_->stopping.load() &&
      s.poller().in_flight.load(std::memory_order_relaxed) < static_cast<std::int64_t>(impl_->cfg.queue_capacity)) {
    std::int64_t lag = 0;
    std::size_t behind = 0;
    {
      std::lock_guard lock(s.poller().lag_mu);
      if (now - s.poller().lag_refreshed_ms <= kLagFreshMs)
        for (const auto& [p, l] : s.poller().consumer_lag)
          if (l > 0) {
            lag += l;
            ++behind;
          }
    }
    if (behind > 0) {
      if (why)
        *why = "stalled: " + std::to_string(behind) + " owned partitions are " + std::to_string(lag) +
               " records behind, slots are free, and nothing was consumed for " + std::to_string(idle_ms / 1000) + " s";
      return false;
    }
  }
  return true;
}

bool Pipeline::ready() const {
  return impl_->stats.poller().ready.load() && !impl_->stopping.load() && !impl_->fatal.load();
}

void Pipeline::publishInsights(const std::string& key, const std::string& value) {
  rd_kafka_resp_err_t err = rd_kafka_producev(
      impl_->producer.get(), RD_KAFKA_V_RKT(impl_->insights_topic.get()), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key.data(), key.size()),
      RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()), RD_KAFKA_V_OPAQUE(nullptr), RD_KAFKA_V_END);
  if (err) spdlog::warn("insights snapshot not published: {}", rd_kafka_err2str(err));
}

}  // namespace loginflow
