// Backpressure: a backlog far larger than --queue-capacity is processed completely by the real
// binary, at full speed, with bounded memory, and the slots are what bounds the work inside the
// process.
//
// How the pipeline holds a backlog back: when no slot is free the poller stops taking records
// from librdkafka's queue, and librdkafka stops fetching once that queue holds
// queued.max.messages.kbytes; only a shortage longer than a second pauses the partitions. (It
// used to pause them on every shortage, and librdkafka 2.0 resumes fetching only up to a second
// after a resume: a backlog went at ~--queue-capacity records per second, 256/s here, and this
// test ran into its deadline with a quarter of the backlog done.) No metric tells a pause apart,
// so the test checks what backpressure must achieve: the slots all taken from early on, never
// more than the capacity, the whole backlog processed fast, and memory far below the backlog.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "loginflow/mock_broker.h"
#include "support/kafka_test_util.h"
#include "support/reliability.h"

namespace loginflow {
namespace {

using namespace std::chrono_literals;
using testing::Child;

constexpr int kPartitions = 16;
constexpr std::size_t kEvents = 300'000;
constexpr int kCapacity = 256;
// Throughput floor, events per second: 10 × what the pause/resume stall allowed (about
// kCapacity per second). Measured: ~20,000/s in the dev build, ~12,000/s under TSan, 2 CPUs.
constexpr double kMinRate = 10.0 * kCapacity;

// Peak resident memory allowed for the child, in KiB. What the process may legitimately hold:
//   * its baseline (binary, libraries, thread stacks, HTTP server, metrics): ~11 MiB at idle;
//   * librdkafka's prefetch: the consumer queue is capped at queued.max.messages.kbytes=16384,
//     i.e. 16 MiB of payload, but each queued record also costs a librdkafka op (a few hundred
//     bytes: ~25 MiB for the ~65,000 records of 250 bytes that fit), and the (decompressed)
//     fetch buffers behind them stay alive until their last record is released; one fetch
//     response in flight adds up to max.partition.fetch.bytes (1 MiB) per partition;
//   * --queue-capacity 256 records in flight and the producer's queue, which cannot hold more
//     than those: < 1 MiB.
// Measured: VmRSS plateaus at ~66 MiB (reached within a second of the assignment and flat from
// then on), VmHWM 90-95 MiB. 128 MiB leaves room for allocator and scheduling noise while
// staying well below what buffering the backlog would cost: 300,000 events are ~75 MiB of
// payload plus ~120 MiB of librdkafka ops, over 200 MiB.
// (Sanitizer builds multiply memory several times over; the bound is not checked there.)
constexpr long kMaxPeakRssKiB = 128 * 1024;
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr bool kCheckRss = false;
#else
constexpr bool kCheckRss = true;
#endif

struct Topics {
  Topics() {
    broker.createTopic("user-login", kPartitions);
    broker.createTopic("processed-user-login", kPartitions);
    broker.createTopic("user-login-dlq", kPartitions);
    broker.createTopic("login-insights", 1);
  }
  MockBroker broker;
};

TEST(Backpressure, BacklogFarBeyondQueueCapacityIsProcessedWithBoundedMemory) {
  Topics t;
  const std::string& bootstrap = t.broker.bootstrap();
  // No too_large events: they are 1 MB each, and the embedded broker keeps ~5 MiB per partition.
  // Unique user ids, so that the audit can match every output to its input.
  const auto events = testing::uniqueEvents(kEvents, 0.01, 42, /*include_too_large=*/false);
  const auto bad = static_cast<std::int64_t>(std::count_if(events.begin(), events.end(), [](const auto& e) { return e.bad; }));
  ASSERT_GT(bad, 0);
  testing::produceAll(bootstrap, "user-login", events);

  // The whole backlog must really be in the input: nothing trimmed by the embedded broker.
  auto probe = testing::makeConsumer(bootstrap, "probe");
  const auto begins = testing::beginOffsets(probe.get(), "user-login", kPartitions);
  const auto ends = testing::endOffsets(probe.get(), "user-login", kPartitions);
  ASSERT_EQ(static_cast<int>(ends.size()), kPartitions);
  ASSERT_EQ(testing::total(ends), static_cast<std::int64_t>(kEvents));
  for (const auto& [p, lo] : begins) ASSERT_EQ(lo, 0) << "partition " << p << " was trimmed by the embedded broker";

  Child child({LOGINFLOW_BINARY, "run", "--brokers", bootstrap, "--group-id", "backpressure", "--queue-capacity",
               std::to_string(kCapacity), "--workers", "2", "--http-address", "127.0.0.1", "--http-port", "0",
               "--shutdown-timeout", "20s"},
              testing::tempPath("backpressure.log"));
  std::optional<std::uint16_t> port;
  ASSERT_TRUE(testing::waitFor([&] { return (port = testing::httpPortFromLog(child.log())).has_value() || !child.running(); }, 20s) &&
              port.has_value())
      << child.log();

  // Until every result is there: sample /metrics (in-flight records and how far the consumer
  // got) and the child's memory.
  double max_in_flight = -1;
  // Records inside the process as the brokers see it: consumed (loginflow's count) minus the
  // results in the output topics read after that scrape (so never more than were really in
  // flight then); its maximum must stay within the capacity.
  double max_held = -1;
  int scrapes = 0, scrape_failures = 0;
  int samples_at_capacity = 0;
  double consumed_at_full = -1;  // records consumed when the slots were first seen all taken
  std::int64_t results = 0;
  const auto start = testing::Clock::now();
  const bool complete = testing::waitFor(
      [&] {
        ++scrapes;
        auto r = testing::httpGet(*port, "/metrics");
        if (!r || r->first != 200) ++scrape_failures;
        if (r && r->first == 200) {
          const auto in_flight = testing::metricValue(r->second, "loginflow_in_flight_records");
          if (in_flight) {
            max_in_flight = std::max(max_in_flight, *in_flight);
            if (*in_flight >= kCapacity) {
              ++samples_at_capacity;
              if (consumed_at_full < 0)
                consumed_at_full = testing::metricValue(r->second, "loginflow_records_consumed_total").value_or(-1);
            }
          }
        }
        const double consumed =
            r && r->first == 200 ? testing::metricValue(r->second, "loginflow_records_consumed_total").value_or(-1) : -1;
        results = testing::total(testing::endOffsets(probe.get(), "processed-user-login", kPartitions)) +
                  testing::total(testing::endOffsets(probe.get(), "user-login-dlq", kPartitions));
        if (consumed >= 0) max_held = std::max(max_held, consumed - static_cast<double>(results));
        return results >= static_cast<std::int64_t>(kEvents) || !child.running();
      },
      // The deadline is the throughput floor (plus the group join), so that a regression fails
      // here rather than at the CTest timeout.
      std::chrono::milliseconds(static_cast<long>(1000.0 * kEvents / kMinRate)) + 15s, 100ms);
  const double seconds = std::chrono::duration<double>(testing::Clock::now() - start).count();
  // Peak memory while the process still runs (VmHWM disappears with the process).
  const long peak_kib = child.peakRssKiB();
  ASSERT_TRUE(complete && results >= static_cast<std::int64_t>(kEvents))
      << results << " of " << kEvents << " results after " << seconds << " s\n"
      << child.log().substr(0, 20'000);
  std::cout << "[ info ] " << kEvents << " events in " << seconds << " s (" << static_cast<double>(kEvents) / seconds
            << "/s), peak RSS " << peak_kib / 1024 << " MiB, max in_flight " << max_in_flight << ", "
            << samples_at_capacity << " samples at capacity; " << scrapes << " scrapes, " << scrape_failures
            << " failed\n";

  child.signal(SIGTERM);
  const auto status = child.wait(30s);
  ASSERT_TRUE(status.has_value()) << "no exit within the shutdown timeout\n" << child.log();
  EXPECT_EQ(*status, 0) << child.log();

  // Every event has exactly one result, of the expected kind, matched by identity.
  const testing::Audit audit = testing::auditRun(bootstrap, "backpressure", kPartitions);
  EXPECT_EQ(audit.events, kEvents) << audit.describe();
  EXPECT_EQ(audit.lost, 0u) << audit.describe();
  EXPECT_EQ(audit.duplicated, 0u) << audit.describe();
  EXPECT_EQ(audit.wrong, 0u) << audit.describe();
  EXPECT_EQ(audit.unmatched, 0u) << audit.describe();
  EXPECT_EQ(static_cast<std::int64_t>(audit.dead_letters), bad) << audit.describe();
  EXPECT_TRUE(audit.committed_ok) << audit.describe();
  EXPECT_EQ(testing::committedOffsets(bootstrap, "backpressure", "user-login", kPartitions), ends);

  // Bounded memory.
  ASSERT_GT(peak_kib, 0) << "VmHWM not readable";
  if (kCheckRss) {
    EXPECT_LT(peak_kib, kMaxPeakRssKiB) << "peak RSS " << peak_kib << " KiB";
  }

  // Full speed: the backlog was not held back more than the workers needed.
  EXPECT_GT(static_cast<double>(kEvents) / seconds, kMinRate);

  // The slots bounded the work in the process: all of them taken from early on (backpressure
  // engaged; the rest of the backlog waited in the broker and librdkafka's bounded prefetch
  // queue), and never more than the capacity.
  EXPECT_GT(samples_at_capacity, 0) << "the slots never filled up: no backpressure was exercised";
  EXPECT_LT(consumed_at_full, static_cast<double>(kEvents) / 2) << "the slots filled up only late in the run";
  EXPECT_LE(max_in_flight, kCapacity);  // the gauge agrees with
  EXPECT_LE(max_held, kCapacity) << "more records held inside the process than --queue-capacity";
}

}  // namespace
}  // namespace loginflow
