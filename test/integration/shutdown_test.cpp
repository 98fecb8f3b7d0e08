// A graceful stop when the brokers are gone: SPEC says it commits what it can, logs what was
// left and exits 1 within --shutdown-timeout; nothing is lost, the rest is processed again on
// restart.
#include <gtest/gtest.h>

#include <set>

#include "loginflow/mock_broker.h"
#include "support/kafka_test_util.h"
#include "support/reliability.h"

namespace loginflow {
namespace {

using namespace std::chrono_literals;
using testing::Child;
using testing::Clock;

constexpr int kPartitions = 2;

TEST(Shutdown, BrokersGoneExits1WithinTheTimeoutAndARestartLosesNothing) {
  MockBroker broker;
  for (const char* t : {"user-login", "processed-user-login", "user-login-dlq"}) broker.createTopic(t, kPartitions);
  broker.createTopic("login-insights", 1);
  // Unique user ids, so that the audit can match every output to its input.
  const auto events = testing::uniqueEvents(5'000, 0.0, 5);
  testing::produceAll(broker.bootstrap(), "user-login", events);
  const auto n = static_cast<std::int64_t>(events.size());

  // Every offset commit fails (retriably) for a while, so that offsets are still to be
  // committed when the brokers go away.
  std::vector<rd_kafka_resp_err_t> errors(400, RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS);
  rd_kafka_mock_push_request_errors_array(broker.cluster(), 8 /* OffsetCommit */, errors.size(), errors.data());

  auto args = [&](const std::string& timeout) {
    return std::vector<std::string>{LOGINFLOW_BINARY, "run", "--brokers", broker.bootstrap(), "--group-id", "gone",
                                    "--http-port", "0", "--http-address", "127.0.0.1", "--shutdown-timeout", timeout,
                                    "-X", "consumer.session.timeout.ms=6000", "-X", "consumer.heartbeat.interval.ms=500"};
  };
  auto probe = testing::makeConsumer(broker.bootstrap(), "probe");
  auto results = [&] {
    return testing::total(testing::endOffsets(probe.get(), "processed-user-login", kPartitions)) +
           testing::total(testing::endOffsets(probe.get(), "user-login-dlq", kPartitions));
  };
  {
    Child child(args("5s"), testing::tempPath("gone.log"));
    ASSERT_TRUE(testing::waitFor([&] { return results() >= n; }, 60s, 100ms)) << child.log();
    ASSERT_TRUE(testing::waitFor([&] { return child.log().find("offset commit failed") != std::string::npos; }, 10s))
        << child.log();
    probe.reset();
    rd_kafka_mock_broker_set_down(broker.cluster(), 1);
    const auto t0 = Clock::now();
    child.signal(SIGTERM);
    auto status = child.wait(15s);
    const auto took = Clock::now() - t0;
    ASSERT_TRUE(status.has_value()) << "no exit 15 s after SIGTERM with a 5 s shutdown timeout\n" << child.log();
    EXPECT_EQ(*status, 1) << child.log();
    EXPECT_LT(took, 8s) << "the stop overran --shutdown-timeout 5s by more than 3 s\n" << child.log();
    EXPECT_NE(child.log().find("stop incomplete"), std::string::npos) << child.log();
  }

  // The brokers come back: a restart processes the rest again and commits everything.
  rd_kafka_mock_clear_request_errors(broker.cluster(), 8);
  rd_kafka_mock_broker_set_up(broker.cluster(), 1);
  // Where the stopped member's commits got: what lies past them may be processed twice.
  const auto committed_at_stop = testing::committedOffsets(broker.bootstrap(), "gone", "user-login", kPartitions);
  ASSERT_EQ(committed_at_stop.size(), static_cast<std::size_t>(kPartitions)) << "the coordinator did not answer";
  probe = testing::makeConsumer(broker.bootstrap(), "probe");
  Child again(args("20s"), testing::tempPath("gone-again.log"));
  const auto ends = testing::endOffsets(probe.get(), "user-login", kPartitions);
  ASSERT_TRUE(testing::waitFor([&] { return testing::committedOffsets(broker.bootstrap(), "gone", "user-login", kPartitions) == ends; },
                               60s, 250ms))
      << again.log();
  again.signal(SIGTERM);
  EXPECT_EQ(again.wait(30s).value_or(-1), 0) << again.log();
  // Nothing lost: every input has its result, matched by identity, and the committed offsets are
  // at the end. Duplicates only of inputs at or past the offsets the stopped member had committed
  // (the rest of its work, done again after the restart as SPEC says).
  const testing::Audit audit = testing::auditRun(broker.bootstrap(), "gone", kPartitions);
  EXPECT_EQ(audit.events, events.size()) << audit.describe();
  EXPECT_EQ(audit.lost, 0u) << audit.describe();
  EXPECT_EQ(audit.wrong, 0u) << audit.describe();
  EXPECT_EQ(audit.unmatched, 0u) << audit.describe();
  EXPECT_TRUE(audit.committed_ok) << audit.describe();
  std::size_t redone = 0;
  for (const auto& [id, count] : audit.count) {
    if (count < 2) continue;
    const auto it = committed_at_stop.find(id.first);
    EXPECT_TRUE(it != committed_at_stop.end() && id.second >= it->second)
        << "input " << id.first << "/" << id.second << " processed twice although committed before the stop";
    ++redone;
  }
  std::cout << "[ info ] " << redone << " inputs processed again after the incomplete stop\n";
}

}  // namespace
}  // namespace loginflow
