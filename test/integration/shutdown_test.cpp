// A graceful stop when the brokers are gone: SPEC says it commits what it can, logs what was
// left and exits 1 within --shutdown-timeout; nothing is lost, the rest is processed again on
// restart.
#include <gtest/gtest.h>

#include <set>

#include "loginflow/mock_broker.h"
#include "support/kafka_test_util.h"

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
  EventGenerator gen(5, 0.0, wallClockMs() / 1000, 1'000);
  std::vector<GeneratedEvent> events(5'000);
  for (auto& e : events) gen.next(e);
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
  probe = testing::makeConsumer(broker.bootstrap(), "probe");
  Child again(args("20s"), testing::tempPath("gone-again.log"));
  const auto ends = testing::endOffsets(probe.get(), "user-login", kPartitions);
  ASSERT_TRUE(testing::waitFor([&] { return testing::committedOffsets(broker.bootstrap(), "gone", "user-login", kPartitions) == ends; },
                               60s, 250ms))
      << again.log();
  again.signal(SIGTERM);
  EXPECT_EQ(again.wait(30s).value_or(-1), 0) << again.log();
  // Nothing lost: every input has an output (at least once).
  std::set<std::string> outputs;
  for (const auto& r : testing::readAll(broker.bootstrap(), "processed-user-login", kPartitions))
    outputs.insert(testing::withoutProcessedAt(r.value));
  Transformer t;
  std::size_t missing = 0;
  for (const auto& in : testing::readAll(broker.bootstrap(), "user-login", kPartitions)) {
    InputRecord r{in.key.data(), in.key.size(), in.value.data(), in.value.size(), {"user-login", in.partition, in.offset}};
    const Result& res = t.apply(r, wallClockMs());
    if (res.kind == Result::Kind::kOutput && !outputs.count(testing::withoutProcessedAt(std::string(res.value))))
      ++missing;
  }
  EXPECT_EQ(missing, 0U);
}

}  // namespace
}  // namespace loginflow
