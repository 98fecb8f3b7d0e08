#include "loginflow/stats.h"

#include <chrono>

namespace loginflow {

namespace {

constexpr std::string_view kUnknown = "unknown";

// Room for kMaxDeviceTypesPerShard ordinary names plus "unknown", which always gets a slot.
constexpr std::size_t kEntryCapacity = kMaxDeviceTypesPerShard + 1;
// Open addressing at a load factor below one half; a power of two for masking.
constexpr std::size_t kIndexSize = 2048;
static_assert(kIndexSize >= 2 * kEntryCapacity && (kIndexSize & (kIndexSize - 1)) == 0);
static_assert(kEntryCapacity < 0xFFFF, "index_ stores entry index + 1 in 16 bits");

// FNV-1a: short names, no allocation, good enough spread for a table this small.
std::uint64_t hashName(std::string_view s) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

constexpr std::size_t kLetters = 27;  // digit 0 = no letter, 1..26 = 'A'..'Z'

// `to` already has the bounds and bucket count of `from` (set up by snapshot()).
void addHistogram(const ShardHistogram& from, HistogramSnapshot& to) {
  for (std::size_t i = 0; i < from.bucketCount() && i < to.buckets.size(); ++i) {
    to.buckets[i] += from.bucket(i);
  }
  to.sum += from.sum();
}

}  // namespace

// Base 27, most significant letter first: "AB" = 1·27² + 2·27, "ABC" = 1·27² + 2·27 + 3. The
// first letter is never 0, so 0 stays free for "unknown" and every index is below 27³.
std::size_t localeIndex(std::string_view upper_locale) noexcept {
  if (upper_locale.size() != 2 && upper_locale.size() != 3) return 0;
  std::size_t index = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    std::size_t digit = 0;
    if (i < upper_locale.size()) {
      const char c = upper_locale[i];
      if (c < 'A' || c > 'Z') return 0;
      digit = static_cast<std::size_t>(c - 'A') + 1;
    }
    index = index * kLetters + digit;
  }
  return index;
}

std::string localeName(std::size_t index) {
  if (index == 0 || index >= kLocaleSlots) return std::string(kUnknown);
  const std::size_t d0 = index / (kLetters * kLetters);
  const std::size_t d1 = index / kLetters % kLetters;
  const std::size_t d2 = index % kLetters;
  if (d0 == 0 || d1 == 0) return std::string(kUnknown);  // never produced by localeIndex()
  std::string name;
  name.push_back(static_cast<char>('A' + d0 - 1));
  name.push_back(static_cast<char>('A' + d1 - 1));
  if (d2 != 0) name.push_back(static_cast<char>('A' + d2 - 1));
  return name;
}

DeviceTypeCounts::DeviceTypeCounts()
    : entries_(std::make_unique<Entry[]>(kEntryCapacity)), index_(kIndexSize, 0) {}

// Returns the index_ slot that holds `name`, or the empty slot where it belongs. The table is
// never more than half full, so the probe always ends.
std::size_t DeviceTypeCounts::find(std::string_view name, std::uint64_t hash) const noexcept {
  const std::size_t mask = index_.size() - 1;
  for (std::size_t slot = static_cast<std::size_t>(hash) & mask;; slot = (slot + 1) & mask) {
    const std::uint16_t e = index_[slot];
    if (e == 0 || entries_[e - 1].name == name) return slot;
  }
}

void DeviceTypeCounts::add(std::string_view name) {
  if (name.empty()) name = kUnknown;
  auto overflow = [&] {
    const std::lock_guard lock(overflow_mu_);
    auto it = overflow_.find(name);
    if (it == overflow_.end()) it = overflow_.emplace(std::string(name), 0).first;
    ++it->second;
  };
  if (name.size() > kMaxDeviceTypeNameBytes) {
    overflow();
    return;
  }
  // Only this (the writer) thread stores published_, so a relaxed load sees its own value.
  const std::size_t n = published_.load(std::memory_order_relaxed);
  // Most logins repeat the previous device type of the same worker: skip the hash.
  if (last_hit_ < n && entries_[last_hit_].name == name) {
    entries_[last_hit_].count.add();
    return;
  }
  const std::size_t slot = find(name, hashName(name));
  if (index_[slot] == 0 && n >= kMaxDeviceTypesPerShard && name != kUnknown) {
    overflow();
    return;
  }
  if (index_[slot] == 0) {
    // A new entry: fill it completely, then publish it (release) so that a reader that sees
    // the new count (acquire) also sees the name. Published entries are never modified again
    // except for their atomic counter.
    Entry& entry = entries_[n];
    entry.name.assign(name.data(), name.size());
    index_[slot] = static_cast<std::uint16_t>(n + 1);
    published_.store(n + 1, std::memory_order_release);
  }
  last_hit_ = index_[slot] - 1U;
  entries_[last_hit_].count.add();
}

std::string_view rebalanceKindName(RebalanceKind kind) noexcept {
  switch (kind) {
    case RebalanceKind::kAssign:
      return "assign";
    case RebalanceKind::kRevoke:
      return "revoke";
    case RebalanceKind::kLost:
      return "lost";
  }
  return "unknown";
}

std::uint64_t HistogramSnapshot::count() const noexcept {
  std::uint64_t total = 0;
  for (const std::uint64_t b : buckets) total += b;
  return total;
}

Stats::Stats(std::size_t workers)
    : delivery_(std::make_unique<DeliveryShard>()), poller_(std::make_unique<PollerShard>()) {
  workers_.reserve(workers);
  for (std::size_t i = 0; i < workers; ++i) workers_.push_back(std::make_unique<WorkerShard>());
  poller_->dispatched = std::vector<ShardCounter>(workers);
}

StatsSnapshot Stats::snapshot() const {
  StatsSnapshot s;
  s.workers = workers_.size();
  s.processing.bounds.assign(kProcessingBuckets.begin(), kProcessingBuckets.end());
  s.processing.buckets.assign(kProcessingBuckets.size() + 1, 0);
  s.end_to_end.bounds.assign(kEndToEndBuckets.begin(), kEndToEndBuckets.end());
  s.end_to_end.buckets.assign(kEndToEndBuckets.size() + 1, 0);

  std::vector<std::uint64_t> locales(kLocaleSlots, 0);
  std::uint64_t popped = 0;
  for (const auto& w : workers_) {
    s.outputs += w->outputs.load();
    s.dead_letters += w->dead_letters.load();
    for (std::size_t i = 0; i < kWarningCount; ++i) s.warnings[i] += w->warnings[i].load();
    for (std::size_t i = 0; i < kLocaleSlots; ++i) locales[i] += w->by_locale[i].load();
    w->by_device_type.forEach([&s](std::string_view name, std::uint64_t count) {
      if (count != 0) s.by_device_type[std::string(name)] += count;
    });
    addHistogram(w->processing, s.processing);
    s.producer_queue_full += w->producer_queue_full.load();
    popped += w->popped.load();
  }
  for (std::size_t i = 0; i < kLocaleSlots; ++i) {
    if (locales[i] != 0) s.by_locale[localeName(i)] += locales[i];
  }

  const DeliveryShard& d = *delivery_;
  s.produced = d.produced.load();
  for (std::size_t i = 0; i < kDlqReasonCount; ++i) s.dlq[i] = d.dlq[i].load();
  addHistogram(d.end_to_end, s.end_to_end);
  for (std::size_t i = 0; i < d.producer_errors.size(); ++i) {
    const int code = static_cast<int>(i) - DeliveryShard::kErrorCodeOffset;
    const std::uint64_t n = d.producer_errors[i].load();
    if (code != 0 && n != 0) s.producer_errors[code] = n;
  }

  const PollerShard& p = *poller_;
  s.consumed = p.consumed.load();
  for (std::size_t i = 0; i < kRebalanceKindCount; ++i) s.rebalances[i] = p.rebalances[i].load();
  s.commits = p.commits.load();
  s.commit_failures = p.commit_failures.load();
  s.input_gaps = p.input_gaps.load();
  s.in_flight = p.in_flight.load(std::memory_order_relaxed);
  {
    const std::lock_guard lock(p.lag_mu);
    s.consumer_lag = p.consumer_lag;
  }
  // The pops were read before the pushes, so a record popped meanwhile is counted as pushed
  // too; the clamp covers a poller that counts its push only after the worker popped it.
  std::uint64_t dispatched = 0;
  for (const ShardCounter& c : p.dispatched) dispatched += c.load();
  s.queue_depth = dispatched > popped ? static_cast<std::int64_t>(dispatched - popped) : 0;
  return s;
}

std::int64_t steadyMs() noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace loginflow
