// PrefetchWaker's decision: wake librdkafka's fetcher only after its queue came near a limit
// and then drained to half of it, at most once per interval. (That the wake-up works against a
// broker is shown by bench/: docs/BENCHMARKS.md.)
#include "loginflow/prefetch_waker.h"

#include <gtest/gtest.h>

namespace loginflow::kafka {
namespace {

using namespace std::chrono_literals;
using Clock = PrefetchWaker::Clock;

PrefetchWaker::Limits limits(double bytes, double messages) {
  PrefetchWaker::Limits l;
  l.bytes = bytes;
  l.messages = messages;
  return l;
}

// 1,000 records of 100 bytes fill a 100,000-byte limit.
PrefetchWaker hundredByteRecords(double bytes = 100'000, double messages = 1'000'000) {
  PrefetchWaker w(limits(bytes, messages), 50ms);
  for (int i = 0; i < 20'000; ++i) w.noteRecord(100);
  return w;
}

TEST(PrefetchWaker, NeverWakesAQueueThatWasNeverNearItsLimit) {
  auto w = hundredByteRecords();
  auto t = Clock::now();
  for (std::size_t len : {0, 10, 500, 740, 300, 0}) {
    EXPECT_FALSE(w.shouldWake(len, t)) << len;
    t += 1s;
  }
}

TEST(PrefetchWaker, WakesOnceTheQueueDrainsFromNearTheByteLimitToHalf) {
  auto w = hundredByteRecords();
  auto t = Clock::now() + 1h;
  EXPECT_FALSE(w.shouldWake(1'000, t));  // full: the fetcher has stopped
  EXPECT_FALSE(w.shouldWake(800, t));
  EXPECT_FALSE(w.shouldWake(502, t));    // still above half
  EXPECT_TRUE(w.shouldWake(499, t));     // half: wake
  EXPECT_FALSE(w.shouldWake(100, t + 1s));  // once per fill
  EXPECT_FALSE(w.shouldWake(0, t + 2s));
}

TEST(PrefetchWaker, TheMessageCountLimitCountsToo) {
  auto w = hundredByteRecords(/*bytes=*/1e12, /*messages=*/1'000);
  auto t = Clock::now() + 1h;
  EXPECT_FALSE(w.shouldWake(760, t));
  EXPECT_TRUE(w.shouldWake(499, t));
}

TEST(PrefetchWaker, WakesAtMostOncePerInterval) {
  auto w = hundredByteRecords();
  auto t = Clock::now() + 1h;
  EXPECT_FALSE(w.shouldWake(900, t));
  EXPECT_TRUE(w.shouldWake(100, t));
  EXPECT_FALSE(w.shouldWake(900, t + 10ms));  // full again at once
  EXPECT_FALSE(w.shouldWake(100, t + 20ms));  // too soon: waits
  EXPECT_TRUE(w.shouldWake(100, t + 50ms));   // the interval has passed: wakes
}

TEST(PrefetchWaker, TheRecordSizeIsARunningAverage) {
  PrefetchWaker w(limits(100'000, 1e9), 0ms);
  for (int i = 0; i < 20'000; ++i) w.noteRecord(1'000);  // 100 records of 1,000 bytes fill it
  auto t = Clock::now() + 1h;
  EXPECT_FALSE(w.shouldWake(80, t));
  EXPECT_TRUE(w.shouldWake(40, t));
  for (int i = 0; i < 20'000; ++i) w.noteRecord(10);  // now 10,000 records fill it
  EXPECT_FALSE(w.shouldWake(80, t));  // far from full at 10 bytes each
  EXPECT_FALSE(w.shouldWake(40, t));
}

}  // namespace
}  // namespace loginflow::kafka
