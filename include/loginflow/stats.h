// Sharded counters: every thread that counts owns one shard; the control thread merges all
// shards into a StatsSnapshot once a second (metrics) and every --insights-interval (insights).
//
// Hot-path rule: a shard has exactly one writer thread. Its counters are std::atomic only so
// that the merging thread may read them; the writer increments with a relaxed load + relaxed
// store (a plain add, no lock prefix, no shared cache line written by two threads). Shards are
// cache-line aligned so that two writers never share a line.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "loginflow/transform.h"

namespace loginflow {

inline constexpr std::size_t kCacheLine = 64;

// A counter with a single writer thread and any number of reader threads.
class ShardCounter {
 public:
  void add(std::uint64_t n = 1) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::uint64_t load() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

// Histogram bucket upper bounds (seconds); +Inf is implicit.
inline constexpr std::array<double, 14> kProcessingBuckets = {
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.1, 1.0};
inline constexpr std::array<double, 16> kEndToEndBuckets = {
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0};
inline constexpr std::size_t kMaxBuckets = 17;  // the largest bound list + the +Inf bucket

// A fixed-bucket histogram with a single writer thread. Bucket counts are NOT cumulative
// (bucket i counts observations in (bound[i-1], bound[i]]; the last is +Inf).
class ShardHistogram {
 public:
  explicit ShardHistogram(std::span<const double> bounds) noexcept : bounds_(bounds) {}
  void observe(double v) noexcept {
    std::size_t i = 0;
    while (i < bounds_.size() && v > bounds_[i]) ++i;
    buckets_[i].add();
    // sum kept in nanounits so that it stays an integer counter
    sum_nanos_.add(v > 0 ? static_cast<std::uint64_t>(v * 1e9) : 0);
  }
  std::span<const double> bounds() const noexcept { return bounds_; }
  std::uint64_t bucket(std::size_t i) const noexcept { return buckets_[i].load(); }
  std::size_t bucketCount() const noexcept { return bounds_.size() + 1; }
  double sum() const noexcept { return static_cast<double>(sum_nanos_.load()) / 1e9; }

 private:
  std::span<const double> bounds_;
  std::array<ShardCounter, kMaxBuckets> buckets_{};
  ShardCounter sum_nanos_;
};

// Locales are 2–3 letters A–Z: each maps to a dense index in [1, kLocaleSlots); 0 is "unknown".
inline constexpr std::size_t kLocaleSlots = std::size_t{27} * 27 * 27;
std::size_t localeIndex(std::string_view upper_locale) noexcept;  // 0 when not 2–3 letters A–Z
std::string localeName(std::size_t index);                       // "unknown" for 0

// Distinct device-type names one shard counts in its lock-free table; further names, and
// names longer than kMaxDeviceTypeNameBytes, are counted in an overflow map under a mutex (the
// insights are uncapped, SPEC; only pathological input reaches it, and it costs memory in
// proportion to the distinct names seen).
inline constexpr std::size_t kMaxDeviceTypesPerShard = 1000;
inline constexpr std::size_t kMaxDeviceTypeNameBytes = 128;

// Per-shard device-type counts. Single writer; readers see every published entry.
class DeviceTypeCounts {
 public:
  DeviceTypeCounts();
  // Counts one login; `name` empty means null (counted as "unknown").
  void add(std::string_view name);
  // Calls f(name, count) for every entry (reader side; any thread). A name appears once.
  template <typename F>
  void forEach(F&& f) const {
    const std::size_t n = published_.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < n; ++i) f(std::string_view(entries_[i].name), entries_[i].count.load());
    const std::lock_guard lock(overflow_mu_);
    for (const auto& [name, count] : overflow_) f(std::string_view(name), count);
  }

 private:
  struct Entry {
    std::string name;
    ShardCounter count;
  };
  std::size_t find(std::string_view name, std::uint64_t hash) const noexcept;
  std::unique_ptr<Entry[]> entries_;
  std::vector<std::uint16_t> index_;  // open addressing: entry index + 1, 0 = empty
  std::atomic<std::size_t> published_{0};
  std::size_t last_hit_ = 0;
  mutable std::mutex overflow_mu_;
  std::map<std::string, std::uint64_t, std::less<>> overflow_;  // guarded by overflow_mu_
};

// What one worker thread counts (at transform time).
struct alignas(kCacheLine) WorkerShard {
  WorkerShard() : processing(kProcessingBuckets) {}
  ShardCounter outputs;        // records turned into output records
  ShardCounter dead_letters;   // records turned into dead letters
  std::array<ShardCounter, kWarningCount> warnings{};
  std::array<ShardCounter, kLocaleSlots> by_locale{};
  DeviceTypeCounts by_device_type;
  ShardHistogram processing;   // seconds per record
  ShardCounter producer_queue_full;  // produce() retried because librdkafka's queue was full
  // Dispatch accounting for the queue_depth gauge: the poller counts pushes into the
  // dispatched counter of PollerShard; the worker counts pops here.
  ShardCounter popped;
  // Liveness for /healthz: last time (steady clock, ms) the worker made progress or was
  // idle-waiting, and whether it is idle-waiting right now.
  std::atomic<std::int64_t> heartbeat_ms{0};
  std::atomic<bool> idle{false};
};

// What the delivery-report thread counts (at acknowledgement time).
struct alignas(kCacheLine) DeliveryShard {
  DeliveryShard() : end_to_end(kEndToEndBuckets) {}
  ShardCounter produced;  // outputs acknowledged by the brokers
  std::array<ShardCounter, kDlqReasonCount> dlq{};  // dead letters acknowledged, by reason
  ShardHistogram end_to_end;  // input Kafka timestamp → output delivery, seconds
  // librdkafka error codes (rd_kafka_resp_err_t) are in [-200, 200): index = code + 200.
  static constexpr int kErrorCodeOffset = 200;
  std::array<ShardCounter, 400> producer_errors{};
  std::atomic<std::int64_t> heartbeat_ms{0};
};

// Rebalance kinds for rebalances_total{kind}.
enum class RebalanceKind : std::uint8_t { kAssign = 0, kRevoke, kLost };
inline constexpr std::size_t kRebalanceKindCount = 3;
std::string_view rebalanceKindName(RebalanceKind kind) noexcept;  // "assign", "revoke", "lost"

// What the poller thread counts and publishes.
struct alignas(kCacheLine) PollerShard {
  ShardCounter consumed;
  std::array<ShardCounter, kRebalanceKindCount> rebalances{};
  ShardCounter commits;         // successful offset commits
  ShardCounter commit_failures;
  // Jumps in the offsets consumed from one partition (a record whose offset is past the one
  // after the partition's previous record): records that were never consumed. Normal on a
  // compacted topic or after a transactional producer's commit markers; otherwise a loss
  // upstream of loginflow (retention, an offset reset).
  ShardCounter input_gaps;
  std::vector<ShardCounter> dispatched;  // per worker: records pushed into its queue
  std::atomic<std::int64_t> in_flight{0};  // registered and not yet acknowledged
  std::atomic<std::int64_t> heartbeat_ms{0};
  std::atomic<bool> ready{false};  // connected and a member of the group

  // When the poller last took a record from librdkafka (steadyMs()); the start until then.
  std::atomic<std::int64_t> last_consumed_ms{0};

  // Consumer lag per owned partition of the input topic: the high watermark minus the group's
  // committed offset, both read from the brokers by the pipeline's lag thread (cold path:
  // written every refresh under the mutex). `lag_refreshed_ms` (steadyMs()) is when the brokers
  // last answered both queries; 0 before that. A failed refresh keeps the last values.
  mutable std::mutex lag_mu;
  std::map<std::int32_t, std::int64_t> consumer_lag;
  std::int64_t lag_refreshed_ms = 0;
};

// The merged view of every shard at one instant.
struct HistogramSnapshot {
  std::vector<double> bounds;
  std::vector<std::uint64_t> buckets;  // non-cumulative, bounds.size() + 1 entries
  double sum = 0;
  std::uint64_t count() const noexcept;
};

struct StatsSnapshot {
  std::uint64_t consumed = 0;
  std::uint64_t produced = 0;
  std::uint64_t outputs = 0;
  std::uint64_t dead_letters = 0;
  std::array<std::uint64_t, kDlqReasonCount> dlq{};
  std::array<std::uint64_t, kWarningCount> warnings{};
  std::map<std::string, std::uint64_t> by_device_type;  // "unknown" for null
  std::map<std::string, std::uint64_t> by_locale;       // "unknown" for null
  HistogramSnapshot processing;
  HistogramSnapshot end_to_end;
  std::array<std::uint64_t, kRebalanceKindCount> rebalances{};
  std::uint64_t commits = 0;
  std::uint64_t commit_failures = 0;
  std::uint64_t input_gaps = 0;
  std::map<int, std::uint64_t> producer_errors;  // librdkafka error code → count
  std::uint64_t producer_queue_full = 0;
  std::int64_t queue_depth = 0;
  std::int64_t in_flight = 0;
  std::map<std::int32_t, std::int64_t> consumer_lag;
  std::size_t workers = 0;
};

// Owns every shard. Created once at start-up with the worker count; shards never move.
// Thread-safety: each shard has one writer (see above); snapshot() may run on any thread.
class Stats {
 public:
  explicit Stats(std::size_t workers);
  std::size_t workers() const noexcept { return workers_.size(); }
  WorkerShard& worker(std::size_t i) noexcept { return *workers_[i]; }
  DeliveryShard& delivery() noexcept { return *delivery_; }
  PollerShard& poller() noexcept { return *poller_; }
  const WorkerShard& worker(std::size_t i) const noexcept { return *workers_[i]; }
  const DeliveryShard& delivery() const noexcept { return *delivery_; }
  const PollerShard& poller() const noexcept { return *poller_; }

  StatsSnapshot snapshot() const;

 private:
  std::vector<std::unique_ptr<WorkerShard>> workers_;
  std::unique_ptr<DeliveryShard> delivery_;
  std::unique_ptr<PollerShard> poller_;
};

// Steady clock in milliseconds (for heartbeats).
std::int64_t steadyMs() noexcept;

}  // namespace loginflow
