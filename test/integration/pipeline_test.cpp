// The pipeline end to end on the embedded broker, with the real loginflow binary as a child
// process: every valid event exactly once on the output topic with the right content, every
// malformed one on the dead-letter topic with its reason and source headers, and the group's
// committed offsets at the end offsets after SIGTERM.
#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>

#include <algorithm>
#include <map>
#include <set>

#include "loginflow/mock_broker.h"
#include "loginflow/transform.h"
#include "support/kafka_test_util.h"

namespace loginflow {
namespace {

using namespace std::chrono_literals;
using testing::Child;
using testing::Record;

struct Fixture {
  explicit Fixture(int n) : partitions(n) {
    broker.createTopic("user-login", partitions);
    broker.createTopic("processed-user-login", partitions);
    broker.createTopic("user-login-dlq", partitions);
    broker.createTopic("login-insights", 1);
  }
  std::vector<std::string> runArgs(const std::string& group, std::vector<std::string> extra = {}) const {
    std::vector<std::string> a = {LOGINFLOW_BINARY, "run", "--brokers", broker.bootstrap(), "--group-id", group,
                                  "--http-port", "0", "--http-address", "127.0.0.1", "--shutdown-timeout", "20s",
                                  "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  MockBroker broker;
  int partitions;
};

std::vector<GeneratedEvent> generate(std::size_t n, double bad, std::size_t users, std::uint64_t seed) {
  EventGenerator gen(seed, bad, wallClockMs() / 1000, users);
  std::vector<GeneratedEvent> out(n);
  for (auto& e : out) gen.next(e);
  return out;
}

// Waits until outputs + dead letters reach `expected`.
bool waitForResults(Fixture& f, std::int64_t expected, std::chrono::milliseconds timeout) {
  auto c = testing::makeConsumer(f.broker.bootstrap(), "watch");
  return testing::waitFor(
      [&] {
        return testing::total(testing::endOffsets(c.get(), "processed-user-login", f.partitions)) +
                   testing::total(testing::endOffsets(c.get(), "user-login-dlq", f.partitions)) >=
               expected;
      },
      timeout, 200ms);
}

// The periodic commits, while the process runs (not the stop's commit): librdkafka's
// auto-commit of the offsets loginflow stores (the default), and loginflow's own commits with
// -X enable.auto.commit=false. Either way the group's committed offsets reach the end offsets
// within a few seconds of the last result.
TEST(Pipeline, PeriodicCommitsReachTheEndWhileRunning) {
  for (const bool auto_commit : {true, false}) {
    SCOPED_TRACE(auto_commit ? "auto-commit of stored offsets" : "-X enable.auto.commit=false");
    Fixture f(4);
    const std::size_t kEvents = 5'000;
    testing::produceAll(f.broker.bootstrap(), "user-login", generate(kEvents, 0.03, 1'000, 11));
    std::vector<std::string> extra;
    if (!auto_commit) extra = {"-X", "consumer.enable.auto.commit=false"};
    const std::string group = auto_commit ? "periodic-auto" : "periodic-own";
    Child child(f.runArgs(group, extra), testing::tempPath(group + ".log"));
    ASSERT_TRUE(waitForResults(f, kEvents, 60s)) << child.log();
    auto probe = testing::makeConsumer(f.broker.bootstrap(), "probe");
    const auto ends = testing::endOffsets(probe.get(), "user-login", f.partitions);
    EXPECT_TRUE(testing::waitFor(
        [&] { return testing::committedOffsets(f.broker.bootstrap(), group, "user-login", f.partitions) == ends; },
        15s, 100ms))
        << child.log();
    EXPECT_TRUE(child.running()) << child.log();
    child.signal(SIGTERM);
    const auto status = child.wait(30s);
    ASSERT_TRUE(status.has_value()) << child.log();
    EXPECT_EQ(*status, 0) << child.log();
  }
}

TEST(Pipeline, EveryEventOnceOutputOrDeadLetterAndOffsetsCommitted) {
  Fixture f(8);
  const std::size_t kEvents = 100'000;
  auto events = generate(kEvents, 0.03, 10'000, 7);
  std::size_t bad = std::count_if(events.begin(), events.end(), [](const auto& e) { return e.bad; });
  ASSERT_GT(bad, 2000u);
  testing::produceAll(f.broker.bootstrap(), "user-login", events);

  Child child(f.runArgs("e2e", {"--workers", "4"}), testing::tempPath("e2e.log"));
  ASSERT_TRUE(waitForResults(f, kEvents, 180s)) << child.log();
  child.signal(SIGTERM);
  auto status = child.wait(30s);
  ASSERT_TRUE(status.has_value()) << "no exit within the shutdown timeout\n" << child.log();
  EXPECT_EQ(*status, 0) << child.log();

  // Committed offsets == end offsets of every input partition.
  auto probe = testing::makeConsumer(f.broker.bootstrap(), "probe");
  auto ends = testing::endOffsets(probe.get(), "user-login", f.partitions);
  auto committed = testing::committedOffsets(f.broker.bootstrap(), "e2e", "user-login", f.partitions);
  EXPECT_EQ(committed, ends);

  // Expected results: the transform applied to what is in the input topic.
  auto inputs = testing::readAll(f.broker.bootstrap(), "user-login", f.partitions);
  ASSERT_EQ(inputs.size(), kEvents);
  std::map<std::pair<int, std::int64_t>, const Record*> by_source;
  std::multiset<std::pair<std::string, std::string>> expected_out;
  std::map<std::pair<int, std::int64_t>, std::string> expected_reason;
  Transformer t;
  const std::int64_t now = wallClockMs();
  for (const auto& in : inputs) {
    by_source[{in.partition, in.offset}] = &in;
    InputRecord r{in.key_null ? nullptr : in.key.data(), in.key.size(), in.value_null ? nullptr : in.value.data(),
                  in.value.size(), {"user-login", in.partition, in.offset}};
    const Result& res = t.apply(r, now);
    if (res.kind == Result::Kind::kOutput) {
      expected_out.emplace(std::string(res.key), testing::withoutProcessedAt(std::string(res.value)));
    } else {
      expected_reason[{in.partition, in.offset}] = std::string(dlqReasonName(res.reason));
    }
  }
  EXPECT_EQ(expected_out.size() + expected_reason.size(), kEvents);

  auto outputs = testing::readAll(f.broker.bootstrap(), "processed-user-login", f.partitions);
  std::multiset<std::pair<std::string, std::string>> actual_out;
  for (const auto& o : outputs) actual_out.emplace(o.key, testing::withoutProcessedAt(o.value));
  EXPECT_EQ(outputs.size(), expected_out.size());
  if (actual_out != expected_out) {
    // Which: the expected outputs missing, and the outputs nobody expected (a few of each).
    std::vector<std::pair<std::string, std::string>> missing, unexpected;
    std::set_difference(expected_out.begin(), expected_out.end(), actual_out.begin(), actual_out.end(),
                        std::back_inserter(missing));
    std::set_difference(actual_out.begin(), actual_out.end(), expected_out.begin(), expected_out.end(),
                        std::back_inserter(unexpected));
    std::string diff;
    for (std::size_t i = 0; i < std::min<std::size_t>(5, missing.size()); ++i)
      diff += "\n  expected, not output: key " + missing[i].first + " " + missing[i].second;
    for (std::size_t i = 0; i < std::min<std::size_t>(5, unexpected.size()); ++i)
      diff += "\n  output, not expected: key " + unexpected[i].first + " " + unexpected[i].second;
    ADD_FAILURE() << "outputs differ from the transform of the inputs: " << missing.size() << " missing, "
                  << unexpected.size() << " unexpected" << diff;
  }

  auto dlq = testing::readAll(f.broker.bootstrap(), "user-login-dlq", f.partitions);
  EXPECT_EQ(dlq.size(), expected_reason.size());
  std::set<std::pair<int, std::int64_t>> seen;
  for (const auto& d : dlq) {
    ASSERT_EQ(d.headers.at("source.topic"), "user-login");
    std::pair<int, std::int64_t> src{std::stoi(d.headers.at("source.partition")),
                                     std::stoll(d.headers.at("source.offset"))};
    EXPECT_TRUE(seen.insert(src).second) << "dead letter twice";
    ASSERT_TRUE(expected_reason.count(src));
    EXPECT_EQ(d.headers.at("error.reason"), expected_reason[src]);
    EXPECT_FALSE(d.headers.at("error.detail").empty());
    const Record& in = *by_source.at(src);
    EXPECT_EQ(d.key_null, in.key_null);
    EXPECT_EQ(d.key, in.key);
    if (expected_reason[src] == "too_large") {
      EXPECT_EQ(d.value, in.value.substr(0, 1024));
      EXPECT_EQ(d.headers.at("error.original_size"), std::to_string(in.value.size()));
    } else {
      EXPECT_EQ(d.value_null, in.value_null);
      EXPECT_EQ(d.value, in.value);
    }
  }
  // Every kind of dead letter was exercised.
  std::set<std::string> reasons;
  for (const auto& [src, r] : expected_reason) reasons.insert(r);
  EXPECT_EQ(reasons.size(), kDlqReasonCount);
}

TEST(Pipeline, KeyOrderingKeepsInputOrderPerKey) {
  Fixture f(4);
  auto events = generate(20'000, 0.0, 200, 11);
  std::erase_if(events, [](const GeneratedEvent& e) { return e.key_null; });  // keyed events only
  const auto n = static_cast<std::int64_t>(events.size());
  testing::produceAll(f.broker.bootstrap(), "user-login", events);
  Child child(f.runArgs("ordering", {"--workers", "4", "--ordering", "key"}), testing::tempPath("ordering.log"));
  ASSERT_TRUE(waitForResults(f, n, 120s)) << child.log();
  child.signal(SIGTERM);
  ASSERT_EQ(child.wait(30s).value_or(-1), 0) << child.log();

  auto inputs = testing::readAll(f.broker.bootstrap(), "user-login", f.partitions);
  auto outputs = testing::readAll(f.broker.bootstrap(), "processed-user-login", f.partitions);
  // Identity of an event: its output without processed_at. Order per key on each side.
  Transformer t;
  const std::int64_t now = wallClockMs();
  std::map<std::string, std::vector<std::string>> in_order, out_order;
  std::sort(inputs.begin(), inputs.end(), [](const Record& a, const Record& b) {
    return std::tie(a.partition, a.offset) < std::tie(b.partition, b.offset);
  });
  for (const auto& in : inputs) {
    if (in.key_null) continue;
    InputRecord r{in.key.data(), in.key.size(), in.value.data(), in.value.size(), {"user-login", in.partition, in.offset}};
    const Result& res = t.apply(r, now);
    if (res.kind == Result::Kind::kOutput) in_order[in.key].push_back(testing::withoutProcessedAt(std::string(res.value)));
  }
  std::sort(outputs.begin(), outputs.end(), [](const Record& a, const Record& b) {
    return std::tie(a.partition, a.offset) < std::tie(b.partition, b.offset);
  });
  for (const auto& o : outputs) out_order[o.key].push_back(testing::withoutProcessedAt(o.value));
  std::size_t keys = 0;
  for (const auto& [key, seq] : in_order) {
    ASSERT_EQ(out_order[key], seq) << "order differs for key " << key;
    ++keys;
  }
  EXPECT_GT(keys, 100u);
}

}  // namespace
}  // namespace loginflow
