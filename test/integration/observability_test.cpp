// Observability of a live pipeline on the embedded broker, with the real loginflow binary as a
// child process: after N records the scraped counters equal the true counts exactly (computed
// by applying the transform to what is in the input topic), /insights and the insights topic
// agree with them, health and readiness answer as Kubernetes expects, and abusive HTTP clients
// during the run neither stop the pipeline nor the scrapes.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <map>
#include <regex>
#include <string>
#include <vector>

#include "loginflow/mock_broker.h"
#include "loginflow/transform.h"
#include "support/kafka_test_util.h"

namespace loginflow {
namespace {

using namespace std::chrono_literals;
using testing::Child;
using testing::Record;

constexpr int kPartitions = 4;

struct Truth {
  std::int64_t consumed = 0;
  std::int64_t produced = 0;
  std::map<std::string, std::int64_t> dlq;       // by reason
  std::map<std::string, std::int64_t> warnings;  // by warning
  std::map<std::string, std::int64_t> devices;   // null → "unknown"
  std::map<std::string, std::int64_t> locales;   // null → "unknown"
};

// The true counts: the transform applied to everything in the input topic.
Truth truthOf(const std::vector<Record>& inputs) {
  Truth t;
  Transformer transformer;
  const std::int64_t now = wallClockMs();
  for (const auto& in : inputs) {
    ++t.consumed;
    InputRecord r{in.key_null ? nullptr : in.key.data(), in.key.size(), in.value_null ? nullptr : in.value.data(),
                  in.value.size(), {"user-login", in.partition, in.offset}};
    const Result& res = transformer.apply(r, now);
    if (res.kind != Result::Kind::kOutput) {
      ++t.dlq[std::string(dlqReasonName(res.reason))];
      continue;
    }
    ++t.produced;
    ++t.devices[res.has_device_type ? std::string(res.device_type) : "unknown"];
    ++t.locales[res.has_locale ? std::string(res.locale) : "unknown"];
    for (std::size_t w = 0; w < kWarningCount; ++w) {
      const auto warning = static_cast<Warning>(w);
      if (res.warnings & warningBit(warning)) ++t.warnings[std::string(warningName(warning))];
    }
  }
  return t;
}

std::int64_t scraped(const std::string& exposition, const std::string& series) {
  return static_cast<std::int64_t>(testing::metricValue(exposition, series).value_or(-1));
}

std::map<std::string, std::int64_t> jsonCounts(const rapidjson::Value& object) {
  std::map<std::string, std::int64_t> out;
  for (const auto& m : object.GetObject()) out[m.name.GetString()] = m.value.GetInt64();
  return out;
}

class Observability : public ::testing::Test {
 protected:
  void SetUp() override {
    broker.createTopic("user-login", kPartitions);
    broker.createTopic("processed-user-login", kPartitions);
    broker.createTopic("user-login-dlq", kPartitions);
    broker.createTopic("login-insights", 1);
  }
  std::vector<std::string> runArgs(const std::string& group) const {
    return {LOGINFLOW_BINARY, "run", "--brokers", broker.bootstrap(), "--group-id", group, "--http-port", "0",
            "--http-address", "127.0.0.1", "--workers", "2", "--insights-interval", "1s", "--shutdown-timeout", "20s",
            "-X", "consumer.session.timeout.ms=6000", "-X", "consumer.heartbeat.interval.ms=500"};
  }
  void produce(std::size_t n, std::uint64_t seed) {
    EventGenerator gen(seed, 0.03, wallClockMs() / 1000, 5'000);
    std::vector<GeneratedEvent> events(n);
    for (auto& e : events) gen.next(e);
    testing::produceAll(broker.bootstrap(), "user-login", events);
  }
  std::uint16_t portOf(Child& child) {
    std::optional<std::uint16_t> port;
    EXPECT_TRUE(testing::waitFor([&] { return (port = testing::httpPortFromLog(child.log())).has_value(); }, 20s))
        << child.log();
    return port.value_or(0);
  }
  MockBroker broker;
};

TEST_F(Observability, ScrapedCountersInsightsAndTopicEqualTheTrueCounts) {
  const std::size_t kEvents = 20'000;
  produce(kEvents, 21);
  Child child(runArgs("observability"), testing::tempPath("observability.log"));
  const std::uint16_t port = portOf(child);
  ASSERT_NE(port, 0);

  // Readiness turns 200 once the group assigned partitions; health is 200 throughout.
  ASSERT_TRUE(testing::waitFor(
      [&] {
        auto r = testing::httpGet(port, "/readyz");
        return r && r->first == 200;
      },
      30s, 100ms))
      << child.log();
  auto health = testing::httpGet(port, "/healthz");
  ASSERT_TRUE(health.has_value());
  EXPECT_EQ(health->first, 200) << health->second;

  // Counters are merged every second: wait until every record is accounted for.
  std::string metrics;
  ASSERT_TRUE(testing::waitFor(
      [&] {
        auto r = testing::httpGet(port, "/metrics");
        if (!r || r->first != 200) return false;
        metrics = r->second;
        return scraped(metrics, "loginflow_records_produced_total") +
                   scraped(metrics, "loginflow_records_dlq_total") ==
               static_cast<std::int64_t>(kEvents);
      },
      120s, 250ms))
      << child.log() << metrics;

  const Truth truth = truthOf(testing::readAll(broker.bootstrap(), "user-login", kPartitions));
  ASSERT_EQ(truth.consumed, static_cast<std::int64_t>(kEvents));
  EXPECT_EQ(scraped(metrics, "loginflow_records_consumed_total"), truth.consumed);
  EXPECT_EQ(scraped(metrics, "loginflow_records_produced_total"), truth.produced);
  for (std::size_t r = 0; r < kDlqReasonCount; ++r) {
    const std::string reason(dlqReasonName(static_cast<DlqReason>(r)));
    const auto it = truth.dlq.find(reason);
    EXPECT_EQ(scraped(metrics, "loginflow_records_dlq_total{reason=\"" + reason + "\"}"),
              it == truth.dlq.end() ? 0 : it->second)
        << reason;
  }
  for (std::size_t w = 0; w < kWarningCount; ++w) {
    const std::string warning(warningName(static_cast<Warning>(w)));
    const auto it = truth.warnings.find(warning);
    EXPECT_EQ(scraped(metrics, "loginflow_records_warnings_total{warning=\"" + warning + "\"}"),
              it == truth.warnings.end() ? 0 : it->second)
        << warning;
  }
  for (const auto& [device, n] : truth.devices)
    EXPECT_EQ(scraped(metrics, "loginflow_logins_total{device_type=\"" + device + "\"}"), n) << device;
  EXPECT_EQ(scraped(metrics, "loginflow_logins_total"), truth.produced);
  ASSERT_LE(truth.locales.size(), 101U) << "the generator now makes more locales than the metric cap";
  for (const auto& [locale, n] : truth.locales)
    EXPECT_EQ(scraped(metrics, "loginflow_logins_by_locale_total{locale=\"" + locale + "\"}"), n) << locale;
  EXPECT_EQ(scraped(metrics, "loginflow_logins_by_locale_total"), truth.produced);
  EXPECT_EQ(scraped(metrics, "loginflow_processing_seconds_count"), truth.consumed);
  EXPECT_EQ(scraped(metrics, "loginflow_end_to_end_seconds_count"), truth.produced);
  EXPECT_EQ(scraped(metrics, "loginflow_workers"), 2);
  EXPECT_EQ(scraped(metrics, "loginflow_build_info{version=\"" LOGINFLOW_VERSION "\"}"), 1);
  EXPECT_GT(testing::metricValue(metrics, "process_resident_memory_bytes").value_or(0), 0);

  // /insights: the cumulative view equals the true counts (uncapped, null → "unknown").
  auto insights = testing::httpGet(port, "/insights");
  ASSERT_TRUE(insights.has_value());
  ASSERT_EQ(insights->first, 200);
  rapidjson::Document doc;
  doc.Parse(insights->second.c_str());
  ASSERT_FALSE(doc.HasParseError()) << insights->second;
  const auto& cumulative = doc["cumulative"];
  EXPECT_EQ(cumulative["records"].GetInt64(), truth.produced);
  EXPECT_EQ(cumulative["dead_letters"].GetInt64(),
            static_cast<std::int64_t>(kEvents) - truth.produced);
  EXPECT_EQ(jsonCounts(cumulative["by_device_type"]), truth.devices);
  EXPECT_EQ(jsonCounts(cumulative["by_locale"]), truth.locales);

  // The insights topic: snapshots keyed by the instance id, the last one as complete as the
  // scrape once a whole interval has passed after the last record.
  std::vector<Record> snapshots;
  ASSERT_TRUE(testing::waitFor(
      [&] {
        snapshots = testing::readAll(broker.bootstrap(), "login-insights", 1);
        if (snapshots.empty()) return false;
        rapidjson::Document last;
        last.Parse(snapshots.back().value.c_str());
        return !last.HasParseError() && last["cumulative"]["records"].GetInt64() == truth.produced;
      },
      20s, 250ms))
      << child.log();
  for (const auto& s : snapshots) {
    rapidjson::Document d;
    d.Parse(s.value.c_str());
    ASSERT_FALSE(d.HasParseError()) << s.value;
    EXPECT_EQ(s.key, d["instance"].GetString());
    for (const char* field : {"window_start", "window_end", "records", "dead_letters", "by_device_type", "by_locale",
                              "top_device_type", "top_locale", "cumulative"})
      EXPECT_TRUE(d.HasMember(field)) << field << " missing in " << s.value;
  }
  // And the log line.
  EXPECT_NE(child.log().find("insights {\"instance\""), std::string::npos);

  child.signal(SIGTERM);
  EXPECT_EQ(child.wait(30s).value_or(-1), 0) << child.log();
}

// consumer_lag comes from the brokers (high watermark minus the group's committed offset), so it
// follows the input while consumption is blocked, and /healthz turns 503 once the pipeline owns
// partitions with lag, has free slots, and has consumed nothing for 60 s; both recover when
// consumption does. Consumption is blocked by failing every Fetch request (from the brokers'
// side: what a stuck fetcher looks like from loginflow's), while ListOffsets and OffsetFetch,
// which the lag is read with, keep working.
TEST_F(Observability, LagFromTheBrokersGrowsWhileConsumptionIsBlockedAndHealthTurns503) {
  constexpr std::int16_t kFetch = 1;  // Kafka protocol ApiKey
  const std::size_t kFirst = 4'000, kBlocked = 1'500;
  produce(kFirst, 41);
  Child child(runArgs("stall"), testing::tempPath("stall.log"));
  const std::uint16_t port = portOf(child);
  ASSERT_NE(port, 0);
  auto scrape = [&] {
    auto r = testing::httpGet(port, "/metrics");
    return r && r->first == 200 ? r->second : std::string();
  };
  auto lagOf = [&](const std::string& m) { return scraped(m, "loginflow_consumer_lag"); };
  auto partitionsWithLag = [&](const std::string& m) {
    int n = 0;
    for (int p = 0; p < kPartitions; ++p)
      n += testing::metricValue(m, "loginflow_consumer_lag{partition=\"" + std::to_string(p) + "\"}").has_value();
    return n;
  };
  // Everything consumed and committed: one series per owned partition, all 0. The last record
  // was consumed before `all_consumed`.
  std::string m;
  std::optional<std::chrono::steady_clock::time_point> all_consumed;
  ASSERT_TRUE(testing::waitFor(
      [&] {
        m = scrape();
        const bool consumed = scraped(m, "loginflow_records_consumed_total") == static_cast<std::int64_t>(kFirst);
        if (consumed && !all_consumed) all_consumed = std::chrono::steady_clock::now();
        return consumed && partitionsWithLag(m) == kPartitions && lagOf(m) == 0;
      },
      60s, 250ms))
      << m << child.log();

  // Every Fetch fails from now on (far more errors than the test can use up; cleared below).
  std::vector<rd_kafka_resp_err_t> errors(100'000, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION);
  rd_kafka_mock_push_request_errors_array(broker.cluster(), kFetch, errors.size(), errors.data());
  // The lag follows the input, exactly: the committed offsets stay where they were.
  for (std::size_t step = 1; step <= 2; ++step) {
    produce(kBlocked, 41 + step);
    ASSERT_TRUE(testing::waitFor([&] { return lagOf(m = scrape()) == static_cast<std::int64_t>(step * kBlocked); },
                                 20s, 250ms))
        << "consumer_lag does not follow the input while consumption is blocked\n" << m << child.log();
    EXPECT_EQ(scraped(m, "loginflow_records_consumed_total"), static_cast<std::int64_t>(kFirst));
  }
  // /healthz: 200 until nothing has been consumed for 60 s, then 503 naming the stall (and how
  // long nothing was consumed), within a few lag refreshes of the 60 s.
  std::optional<std::pair<int, std::string>> health;
  ASSERT_TRUE(testing::waitFor(
      [&] {
        health = testing::httpGet(port, "/healthz");
        if (health && health->first == 200) {
          return false;
        }
        return health.has_value();
      },
      100s, 500ms))
      << child.log();
  const auto unhealthy_after =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - *all_consumed);
  EXPECT_EQ(health->first, 503) << health->second;
  static const std::regex kStalled(R"(stalled: (\d+) owned partitions are (\d+) records behind, slots are free, and nothing was consumed for (\d+) s)");
  std::smatch sm;
  ASSERT_TRUE(std::regex_search(health->second, sm, kStalled)) << health->second;
  EXPECT_EQ(std::stoi(sm[1].str()), kPartitions) << health->second;
  EXPECT_EQ(std::stoll(sm[2].str()), static_cast<std::int64_t>(2 * kBlocked)) << health->second;
  EXPECT_GE(std::stoi(sm[3].str()), 60) << health->second;
  EXPECT_LE(unhealthy_after.count(), 75) << "the stall was told late";
  auto ready = testing::httpGet(port, "/readyz");
  ASSERT_TRUE(ready.has_value());
  EXPECT_EQ(ready->first, 200) << "readiness is about membership, not progress";

  // Fetching works again: everything is consumed, the lag goes back to 0 and /healthz to 200.
  rd_kafka_mock_clear_request_errors(broker.cluster(), kFetch);
  const auto total = static_cast<std::int64_t>(kFirst + 2 * kBlocked);
  ASSERT_TRUE(testing::waitFor(
      [&] {
        m = scrape();
        return scraped(m, "loginflow_records_produced_total") + scraped(m, "loginflow_records_dlq_total") == total &&
               lagOf(m) == 0;
      },
      60s, 250ms))
      << m << child.log();
  health = testing::httpGet(port, "/healthz");
  ASSERT_TRUE(health.has_value());
  EXPECT_EQ(health->first, 200) << health->second;
  child.signal(SIGTERM);
  EXPECT_EQ(child.wait(30s).value_or(-1), 0) << child.log();
}

// Abusive HTTP clients (idle connections held open, below the cap of 64, garbage, an oversized
// header) while the pipeline runs: the pipeline finishes every record, scrapes keep working, and a scrape during
// the graceful stop gets an answer or a refused connection, never a hang or a crash.
TEST_F(Observability, HttpAbuseDoesNotHurtThePipelineAndScrapesSurviveShutdown) {
  const std::size_t kEvents = 20'000;
  Child child(runArgs("abuse"), testing::tempPath("abuse.log"));
  const std::uint16_t port = portOf(child);
  ASSERT_NE(port, 0);

  // Idle connections that never send a byte, and clients that send nonsense.
  std::vector<int> idle;
  auto open = [&] {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      close(fd);
      return -1;
    }
    return fd;
  };
  for (int i = 0; i < 40; ++i) {
    const int fd = open();
    if (fd >= 0) idle.push_back(fd);
  }
  const std::vector<std::string> garbage = {
      std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11),  // a TLS ClientHello
      "GET /metrics HTTP/1.1\r\nHost: x\r\nX: " + std::string(20'000, 'a') + "\r\n\r\n",
      "GARBAGE\r\n\r\n",
      "GET /metrics HTTP/9.9\r\n\r\n",
      "GET /metrics HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
  };
  for (const auto& g : garbage) {
    const int fd = open();
    ASSERT_GE(fd, 0);
    (void)send(fd, g.data(), g.size(), MSG_NOSIGNAL);
    close(fd);
  }

  produce(kEvents, 33);
  auto probe = testing::makeConsumer(broker.bootstrap(), "abuse-probe");
  ASSERT_TRUE(testing::waitFor(
      [&] {
        return testing::total(testing::endOffsets(probe.get(), "processed-user-login", kPartitions)) +
                   testing::total(testing::endOffsets(probe.get(), "user-login-dlq", kPartitions)) >=
               static_cast<std::int64_t>(kEvents);
      },
      120s, 200ms))
      << child.log();
  auto metrics = testing::httpGet(port, "/metrics");
  ASSERT_TRUE(metrics.has_value()) << "a scrape failed while idle connections are held";
  EXPECT_EQ(metrics->first, 200);
  for (int fd : idle) close(fd);

  // Scrape continuously through the graceful stop.
  child.signal(SIGTERM);
  std::optional<int> status;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!(status = child.wait(0ms)) && std::chrono::steady_clock::now() < deadline) {
    auto r = testing::httpGet(port, "/metrics", 1000ms);
    if (r) {
      EXPECT_EQ(r->first, 200);
    }
  }
  ASSERT_TRUE(status.has_value()) << "no exit within the shutdown timeout\n" << child.log();
  EXPECT_EQ(*status, 0) << child.log();
  // An orderly stop, not merely exit 0: the last line counts what was consumed and acknowledged.
  EXPECT_NE(child.log().find("stopped cleanly: everything consumed was produced and committed"), std::string::npos)
      << child.log();
}

}  // namespace
}  // namespace loginflow
