#include "loginflow/stats.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace loginflow {
namespace {

std::map<std::string, std::uint64_t> entries(const DeviceTypeCounts& counts) {
  std::map<std::string, std::uint64_t> out;
  counts.forEach([&](std::string_view name, std::uint64_t n) {
    EXPECT_EQ(out.count(std::string(name)), 0U) << "duplicate entry " << name;
    out[std::string(name)] = n;
  });
  return out;
}

TEST(LocaleIndex, EveryTwoAndThreeLetterLocaleRoundTrips) {
  std::set<std::size_t> seen;
  std::string s;
  for (char a = 'A'; a <= 'Z'; ++a) {
    for (char b = 'A'; b <= 'Z'; ++b) {
      for (int len = 2; len <= 3; ++len) {
        for (char c = 'A'; c <= (len == 3 ? 'Z' : 'A'); ++c) {
          s = std::string{a, b};
          if (len == 3) s.push_back(c);
          const std::size_t index = localeIndex(s);
          ASSERT_GT(index, 0U) << s;
          ASSERT_LT(index, kLocaleSlots) << s;
          ASSERT_TRUE(seen.insert(index).second) << "index collision for " << s;
          ASSERT_EQ(localeName(index), s);
        }
      }
    }
  }
  EXPECT_EQ(seen.size(), 26U * 26U + 26U * 26U * 26U);
}

TEST(LocaleIndex, AnythingElseIsUnknown) {
  for (const char* bad : {"", "A", "ABCD", "ab", "Ab", "A1", "A ", "@A", "[A", "\xC3\x89T"}) {
    EXPECT_EQ(localeIndex(bad), 0U) << bad;
  }
  EXPECT_EQ(localeName(0), "unknown");
  EXPECT_EQ(localeName(kLocaleSlots), "unknown");
  EXPECT_EQ(localeName(1), "unknown");  // a first letter without a second: never produced
}

TEST(DeviceTypeCounts, CountsNamesAndNullAsUnknown) {
  DeviceTypeCounts counts;
  counts.add("android");
  counts.add("ios");
  counts.add("android");
  counts.add("");
  counts.add("android");
  const auto got = entries(counts);
  EXPECT_EQ(got, (std::map<std::string, std::uint64_t>{{"android", 3}, {"ios", 1}, {"unknown", 1}}));
}

// SPEC: insights are uncapped. Names past the lock-free table, and overlong names, are counted
// all the same, each under its own name.
TEST(DeviceTypeCounts, NamesPastTheTableAreCountedUnderTheirOwnNames) {
  DeviceTypeCounts counts;
  for (std::size_t i = 0; i < kMaxDeviceTypesPerShard; ++i) counts.add("type-" + std::to_string(i));
  counts.add("one-too-many");
  counts.add("another");
  counts.add("one-too-many");
  counts.add("type-7");  // admitted to the table: still its own entry there
  counts.add("");        // null still counts as "unknown" once the table is full
  const auto got = entries(counts);
  EXPECT_EQ(got.size(), kMaxDeviceTypesPerShard + 3);
  EXPECT_EQ(got.at("one-too-many"), 2U);
  EXPECT_EQ(got.at("another"), 1U);
  EXPECT_EQ(got.at("type-7"), 2U);
  EXPECT_EQ(got.at("unknown"), 1U);
  EXPECT_EQ(got.count("other"), 0U);
}

TEST(DeviceTypeCounts, OverlongNamesAreCountedUnderTheirOwnNames) {
  DeviceTypeCounts counts;
  const std::string longest(kMaxDeviceTypeNameBytes, 'x'), longer(kMaxDeviceTypeNameBytes + 1, 'x');
  counts.add(longest);
  counts.add(longer);
  counts.add(longer);
  const auto got = entries(counts);
  EXPECT_EQ(got.at(longest), 1U);
  EXPECT_EQ(got.at(longer), 2U);
  EXPECT_EQ(got.count("other"), 0U);
}

TEST(Stats, SnapshotMergesEveryShard) {
  Stats stats(2);
  ASSERT_EQ(stats.workers(), 2U);
  ASSERT_EQ(stats.poller().dispatched.size(), 2U);
  WorkerShard& w0 = stats.worker(0);
  WorkerShard& w1 = stats.worker(1);
  w0.outputs.add(3);
  w1.outputs.add(4);
  w1.dead_letters.add(2);
  w0.warnings[static_cast<std::size_t>(Warning::kInvalidIp)].add();
  w1.warnings[static_cast<std::size_t>(Warning::kInvalidIp)].add(2);
  w0.by_locale[localeIndex("RU")].add(2);
  w1.by_locale[localeIndex("RU")].add(1);
  w1.by_locale[localeIndex("DEU")].add(1);
  w1.by_locale[0].add(4);
  w0.by_device_type.add("android");
  w1.by_device_type.add("android");
  w1.by_device_type.add("");
  w0.processing.observe(3e-6);   // (2.5e-6, 5e-6] → bucket 2
  w1.processing.observe(2.0);    // > 1.0 → +Inf bucket
  w1.producer_queue_full.add(5);
  w0.popped.add(7);
  w1.popped.add(1);

  DeliveryShard& d = stats.delivery();
  d.produced.add(6);
  d.dlq[static_cast<std::size_t>(DlqReason::kInvalidJson)].add(2);
  d.end_to_end.observe(0.003);   // (0.0025, 0.005] → bucket 2
  d.producer_errors[DeliveryShard::kErrorCodeOffset - 192].add(3);  // _MSG_TIMED_OUT
  d.producer_errors[DeliveryShard::kErrorCodeOffset].add(1);        // NO_ERROR: not an error

  PollerShard& p = stats.poller();
  p.consumed.add(9);
  p.rebalances[static_cast<std::size_t>(RebalanceKind::kRevoke)].add();
  p.commits.add(11);
  p.commit_failures.add(1);
  p.dispatched[0].add(10);
  p.dispatched[1].add(2);
  p.in_flight.store(3);
  {
    const std::lock_guard lock(p.lag_mu);
    p.consumer_lag = {{0, 5}, {3, 0}};
  }

  const StatsSnapshot s = stats.snapshot();
  EXPECT_EQ(s.workers, 2U);
  EXPECT_EQ(s.outputs, 7U);
  EXPECT_EQ(s.dead_letters, 2U);
  EXPECT_EQ(s.warnings[static_cast<std::size_t>(Warning::kInvalidIp)], 3U);
  EXPECT_EQ(s.warnings[static_cast<std::size_t>(Warning::kInvalidLocale)], 0U);
  EXPECT_EQ(s.by_locale, (std::map<std::string, std::uint64_t>{{"RU", 3}, {"DEU", 1}, {"unknown", 4}}));
  EXPECT_EQ(s.by_device_type, (std::map<std::string, std::uint64_t>{{"android", 2}, {"unknown", 1}}));
  ASSERT_EQ(s.processing.buckets.size(), kProcessingBuckets.size() + 1);
  EXPECT_EQ(s.processing.buckets[2], 1U);
  EXPECT_EQ(s.processing.buckets.back(), 1U);
  EXPECT_EQ(s.processing.count(), 2U);
  EXPECT_NEAR(s.processing.sum, 2.000003, 1e-9);
  EXPECT_EQ(s.processing.bounds, std::vector<double>(kProcessingBuckets.begin(), kProcessingBuckets.end()));
  EXPECT_EQ(s.producer_queue_full, 5U);
  EXPECT_EQ(s.produced, 6U);
  EXPECT_EQ(s.dlq[static_cast<std::size_t>(DlqReason::kInvalidJson)], 2U);
  ASSERT_EQ(s.end_to_end.buckets.size(), kEndToEndBuckets.size() + 1);
  EXPECT_EQ(s.end_to_end.buckets[2], 1U);
  EXPECT_EQ(s.end_to_end.count(), 1U);
  EXPECT_EQ(s.producer_errors, (std::map<int, std::uint64_t>{{-192, 3}}));
  EXPECT_EQ(s.consumed, 9U);
  EXPECT_EQ(s.rebalances[static_cast<std::size_t>(RebalanceKind::kRevoke)], 1U);
  EXPECT_EQ(s.rebalances[static_cast<std::size_t>(RebalanceKind::kAssign)], 0U);
  EXPECT_EQ(s.commits, 11U);
  EXPECT_EQ(s.commit_failures, 1U);
  EXPECT_EQ(s.queue_depth, 4);  // 12 dispatched − 8 popped
  EXPECT_EQ(s.in_flight, 3);
  EXPECT_EQ(s.consumer_lag, (std::map<std::int32_t, std::int64_t>{{0, 5}, {3, 0}}));
}

TEST(Stats, RebalanceKindNames) {
  EXPECT_EQ(rebalanceKindName(RebalanceKind::kAssign), "assign");
  EXPECT_EQ(rebalanceKindName(RebalanceKind::kRevoke), "revoke");
  EXPECT_EQ(rebalanceKindName(RebalanceKind::kLost), "lost");
}

TEST(HistogramSnapshot, CountIsTheSumOfTheBuckets) {
  HistogramSnapshot h;
  EXPECT_EQ(h.count(), 0U);
  h.buckets = {1, 0, 5, 2};
  EXPECT_EQ(h.count(), 8U);
}

// Writers on their own shards while a reader snapshots: every snapshot is monotonic, and the
// final one is exact. Run under TSan too (no lock on the writer side, so any race shows).
TEST(Stats, ConcurrentWritersWithAReaderGiveExactTotals) {
  constexpr std::size_t kWorkers = 3;
  constexpr std::uint64_t kPerWorker = 100'000;
  Stats stats(kWorkers);
  const std::vector<std::string> locales = {"RU", "DE", "USA", "FR"};
  std::atomic<bool> writers_done{false};
  std::atomic<std::size_t> snapshots{0};

  std::thread reader([&] {
    StatsSnapshot previous;
    while (true) {
      // Read the flag first: a snapshot taken after seeing it is taken after every write.
      const bool done = writers_done.load(std::memory_order_acquire);
      const StatsSnapshot s = stats.snapshot();
      EXPECT_GE(s.outputs, previous.outputs);
      EXPECT_GE(s.consumed, previous.consumed);
      EXPECT_GE(s.produced, previous.produced);
      EXPECT_GE(s.processing.count(), previous.processing.count());
      EXPECT_GE(s.queue_depth, 0);
      for (const auto& [name, count] : previous.by_device_type) {
        EXPECT_GE(s.by_device_type.count(name) ? s.by_device_type.at(name) : 0, count) << name;
      }
      previous = s;
      snapshots.fetch_add(1, std::memory_order_relaxed);
      if (done) break;
    }
  });

  std::vector<std::thread> writers;
  for (std::size_t w = 0; w < kWorkers; ++w) {
    writers.emplace_back([&, w] {
      WorkerShard& shard = stats.worker(w);
      for (std::uint64_t i = 0; i < kPerWorker; ++i) {
        shard.outputs.add();
        shard.by_locale[localeIndex(locales[i % locales.size()])].add();
        // New names keep appearing while the reader iterates the published entries.
        shard.by_device_type.add(i % 2 == 0 ? std::string("android")
                                            : "model-" + std::to_string(i % 500));
        shard.processing.observe(1e-6 * static_cast<double>(i % 7));
        shard.popped.add();
      }
    });
  }
  std::thread poller([&] {
    PollerShard& p = stats.poller();
    for (std::uint64_t i = 0; i < kPerWorker; ++i) {
      p.consumed.add(kWorkers);
      for (std::size_t w = 0; w < kWorkers; ++w) p.dispatched[w].add();
      if (i % 1000 == 0) {
        const std::lock_guard lock(p.lag_mu);
        p.consumer_lag[0] = static_cast<std::int64_t>(i);
      }
    }
  });
  std::thread delivery([&] {
    DeliveryShard& d = stats.delivery();
    for (std::uint64_t i = 0; i < kPerWorker; ++i) {
      d.produced.add();
      d.end_to_end.observe(0.01);
    }
  });
  for (auto& t : writers) t.join();
  poller.join();
  delivery.join();
  writers_done.store(true, std::memory_order_release);
  reader.join();

  const StatsSnapshot s = stats.snapshot();
  EXPECT_GE(snapshots.load(), 1U);
  EXPECT_EQ(s.outputs, kWorkers * kPerWorker);
  EXPECT_EQ(s.consumed, kWorkers * kPerWorker);
  EXPECT_EQ(s.produced, kPerWorker);
  EXPECT_EQ(s.end_to_end.count(), kPerWorker);
  EXPECT_EQ(s.processing.count(), kWorkers * kPerWorker);
  EXPECT_EQ(s.queue_depth, 0);
  std::uint64_t locale_total = 0;
  for (const auto& [name, count] : s.by_locale) locale_total += count;
  EXPECT_EQ(locale_total, kWorkers * kPerWorker);
  EXPECT_EQ(s.by_locale.at("USA"), kWorkers * kPerWorker / 4);
  EXPECT_EQ(s.by_device_type.at("android"), kWorkers * kPerWorker / 2);
  std::uint64_t device_total = 0;
  for (const auto& [name, count] : s.by_device_type) device_total += count;
  EXPECT_EQ(device_total, kWorkers * kPerWorker);
  EXPECT_EQ(s.by_device_type.size(), 1U + 250U);  // "android" + the odd model numbers
  EXPECT_EQ(s.consumer_lag.at(0), 99'000);
}

TEST(Stats, SteadyMsMovesForward) {
  const std::int64_t a = steadyMs();
  const std::int64_t b = steadyMs();
  EXPECT_GT(a, 0);
  EXPECT_GE(b, a);
}

}  // namespace
}  // namespace loginflow
