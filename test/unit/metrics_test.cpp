#include "loginflow/metrics.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

namespace loginflow {
namespace {

// "name{labels}" → value, for every sample line of an exposition; and the # TYPE of each
// family.
struct Exposition {
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;
  std::map<std::string, std::string> help;

  bool has(const std::string& series) const { return samples.count(series) != 0; }
  double at(const std::string& series) const {
    const auto it = samples.find(series);
    if (it == samples.end()) {
      ADD_FAILURE() << "no series " << series;
      return -1;
    }
    return it->second;
  }
  // The number of series of a family with a label of this name.
  std::size_t seriesWithLabel(const std::string& family, const std::string& label) const {
    std::size_t n = 0;
    const std::string prefix = family + "{" + label + "=\"";
    for (const auto& [series, value] : samples) n += series.rfind(prefix, 0) == 0 ? 1 : 0;
    return n;
  }
};

Exposition parse(const std::string& text) {
  Exposition e;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream fields(line.substr(7));
      std::string name;
      std::string type;
      fields >> name >> type;
      e.types[name] = type;
      continue;
    }
    if (line.rfind("# HELP ", 0) == 0) {
      const std::string rest = line.substr(7);
      const std::size_t space = rest.find(' ');
      e.help[rest.substr(0, space)] = space == std::string::npos ? "" : rest.substr(space + 1);
      continue;
    }
    if (line[0] == '#') continue;
    const std::size_t space = line.rfind(' ');
    EXPECT_NE(space, std::string::npos) << line;
    if (space == std::string::npos) continue;
    e.samples[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return e;
}

StatsSnapshot emptySnapshot(std::size_t workers = 1) {
  Stats stats(workers);
  return stats.snapshot();
}

const std::map<std::string, std::string>& specFamilies() {
  static const std::map<std::string, std::string> families = {
      {"loginflow_records_consumed_total", "counter"},
      {"loginflow_records_produced_total", "counter"},
      {"loginflow_records_dlq_total", "counter"},
      {"loginflow_records_warnings_total", "counter"},
      {"loginflow_logins_total", "counter"},
      {"loginflow_logins_by_locale_total", "counter"},
      {"loginflow_processing_seconds", "histogram"},
      {"loginflow_end_to_end_seconds", "histogram"},
      {"loginflow_queue_depth", "gauge"},
      {"loginflow_in_flight_records", "gauge"},
      {"loginflow_consumer_lag", "gauge"},
      {"loginflow_rebalances_total", "counter"},
      {"loginflow_commits_total", "counter"},
      {"loginflow_producer_errors_total", "counter"},
      {"loginflow_workers", "gauge"},
      {"loginflow_build_info", "gauge"},
      {"process_cpu_seconds_total", "counter"},
      {"process_resident_memory_bytes", "gauge"},
  };
  return families;
}

void expectEveryFamily(const Exposition& e) {
  for (const auto& [name, type] : specFamilies()) {
    ASSERT_EQ(e.types.count(name), 1U) << name;
    EXPECT_EQ(e.types.at(name), type) << name;
    ASSERT_EQ(e.help.count(name), 1U) << name;
    EXPECT_FALSE(e.help.at(name).empty()) << name;
  }
}

TEST(MetricsExporter, EveryFamilyIsVisibleBeforeAnyData) {
  MetricsExporter exporter("1.2.3");
  Exposition e = parse(exporter.serialize());
  expectEveryFamily(e);
  exporter.update(emptySnapshot());
  e = parse(exporter.serialize());
  expectEveryFamily(e);
  EXPECT_EQ(e.at("loginflow_records_dlq_total{reason=\"too_large\"}"), 0);
  EXPECT_EQ(e.at("loginflow_rebalances_total{kind=\"lost\"}"), 0);
  EXPECT_EQ(e.at("loginflow_logins_total{device_type=\"unknown\"}"), 0);
  EXPECT_EQ(e.at("loginflow_build_info{version=\"1.2.3\"}"), 1);
}

TEST(MetricsExporter, ExposesEverySpecFamilyWithItsLabels) {
  Stats stats(2);
  stats.poller().consumed.add(10);
  stats.delivery().produced.add(7);
  stats.delivery().dlq[static_cast<std::size_t>(DlqReason::kMissingUserId)].add(2);
  stats.worker(0).warnings[static_cast<std::size_t>(Warning::kInvalidLocale)].add(3);
  stats.worker(0).by_device_type.add("android");
  stats.worker(1).by_device_type.add("");
  stats.worker(0).by_locale[localeIndex("RU")].add(4);
  stats.worker(1).by_locale[0].add(1);
  stats.worker(0).processing.observe(2e-6);
  stats.delivery().end_to_end.observe(0.2);
  stats.poller().dispatched[0].add(5);
  stats.worker(0).popped.add(2);
  stats.poller().in_flight.store(4);
  {
    const std::lock_guard lock(stats.poller().lag_mu);
    stats.poller().consumer_lag[2] = 42;
  }
  stats.poller().rebalances[static_cast<std::size_t>(RebalanceKind::kAssign)].add();
  stats.poller().commits.add(6);
  stats.delivery().producer_errors[DeliveryShard::kErrorCodeOffset - 192].add(1);

  MetricsExporter exporter("1.2.3");
  exporter.update(stats.snapshot());
  const Exposition e = parse(exporter.serialize());

  expectEveryFamily(e);

  EXPECT_EQ(e.at("loginflow_records_consumed_total"), 10);
  EXPECT_EQ(e.at("loginflow_records_produced_total"), 7);
  for (const char* reason : {"too_large", "invalid_json", "not_an_object", "missing_user_id",
                             "invalid_user_id", "missing_timestamp", "invalid_timestamp"}) {
    const std::string series = std::string("loginflow_records_dlq_total{reason=\"") + reason + "\"}";
    EXPECT_EQ(e.at(series), std::string(reason) == "missing_user_id" ? 2 : 0) << series;
  }
  EXPECT_EQ(e.seriesWithLabel("loginflow_records_dlq_total", "reason"), kDlqReasonCount);
  for (const char* warning : {"invalid_device_id", "invalid_device_type", "invalid_app_version",
                              "invalid_locale", "invalid_ip"}) {
    const std::string series =
        std::string("loginflow_records_warnings_total{warning=\"") + warning + "\"}";
    EXPECT_EQ(e.at(series), std::string(warning) == "invalid_locale" ? 3 : 0) << series;
  }
  EXPECT_EQ(e.at("loginflow_logins_total{device_type=\"android\"}"), 1);
  EXPECT_EQ(e.at("loginflow_logins_total{device_type=\"unknown\"}"), 1);
  EXPECT_EQ(e.at("loginflow_logins_by_locale_total{locale=\"RU\"}"), 4);
  EXPECT_EQ(e.at("loginflow_logins_by_locale_total{locale=\"unknown\"}"), 1);
  EXPECT_EQ(e.at("loginflow_processing_seconds_bucket{le=\"1e-06\"}"), 0);
  EXPECT_EQ(e.at("loginflow_processing_seconds_bucket{le=\"2.5e-06\"}"), 1);
  EXPECT_EQ(e.at("loginflow_processing_seconds_bucket{le=\"+Inf\"}"), 1);
  EXPECT_EQ(e.at("loginflow_processing_seconds_count"), 1);
  EXPECT_NEAR(e.at("loginflow_processing_seconds_sum"), 2e-6, 1e-12);
  EXPECT_EQ(e.at("loginflow_end_to_end_seconds_bucket{le=\"0.1\"}"), 0);
  EXPECT_EQ(e.at("loginflow_end_to_end_seconds_bucket{le=\"0.25\"}"), 1);
  EXPECT_EQ(e.at("loginflow_end_to_end_seconds_bucket{le=\"300\"}"), 1);
  EXPECT_EQ(e.at("loginflow_end_to_end_seconds_count"), 1);
  EXPECT_EQ(e.at("loginflow_queue_depth"), 3);
  EXPECT_EQ(e.at("loginflow_in_flight_records"), 4);
  EXPECT_EQ(e.at("loginflow_consumer_lag{partition=\"2\"}"), 42);
  EXPECT_EQ(e.at("loginflow_rebalances_total{kind=\"assign\"}"), 1);
  EXPECT_EQ(e.at("loginflow_rebalances_total{kind=\"revoke\"}"), 0);
  EXPECT_EQ(e.at("loginflow_rebalances_total{kind=\"lost\"}"), 0);
  EXPECT_EQ(e.at("loginflow_commits_total"), 6);
  EXPECT_EQ(e.at("loginflow_producer_errors_total{code=\"-192\"}"), 1);
  EXPECT_EQ(e.at("loginflow_workers"), 2);
  EXPECT_EQ(e.at("loginflow_build_info{version=\"1.2.3\"}"), 1);
  EXPECT_GE(e.at("process_cpu_seconds_total"), 0);
  EXPECT_GT(e.at("process_resident_memory_bytes"), 0);
}

TEST(MetricsExporter, CountersMoveByDeltasAndNeverBackwards) {
  MetricsExporter exporter("t");
  StatsSnapshot s = emptySnapshot();
  s.consumed = 10;
  exporter.update(s);
  EXPECT_EQ(parse(exporter.serialize()).at("loginflow_records_consumed_total"), 10);
  s.consumed = 25;
  exporter.update(s);
  exporter.update(s);  // no change, no movement
  EXPECT_EQ(parse(exporter.serialize()).at("loginflow_records_consumed_total"), 25);
  s.consumed = 5;  // a smaller total (shards re-created): the counter stays
  exporter.update(s);
  EXPECT_EQ(parse(exporter.serialize()).at("loginflow_records_consumed_total"), 25);
  s.consumed = 8;  // and moves on by the increase from the new baseline
  exporter.update(s);
  EXPECT_EQ(parse(exporter.serialize()).at("loginflow_records_consumed_total"), 28);
}

TEST(MetricsExporter, HistogramsAccumulateDeltas) {
  Stats stats(1);
  MetricsExporter exporter("t");
  stats.worker(0).processing.observe(3e-6);
  exporter.update(stats.snapshot());
  stats.worker(0).processing.observe(3e-6);
  stats.worker(0).processing.observe(0.5);
  exporter.update(stats.snapshot());
  exporter.update(stats.snapshot());
  const Exposition e = parse(exporter.serialize());
  EXPECT_EQ(e.at("loginflow_processing_seconds_bucket{le=\"2.5e-06\"}"), 0);
  EXPECT_EQ(e.at("loginflow_processing_seconds_bucket{le=\"5e-06\"}"), 2);
  EXPECT_EQ(e.at("loginflow_processing_seconds_bucket{le=\"0.1\"}"), 2);
  EXPECT_EQ(e.at("loginflow_processing_seconds_bucket{le=\"1\"}"), 3);
  EXPECT_EQ(e.at("loginflow_processing_seconds_bucket{le=\"+Inf\"}"), 3);
  EXPECT_EQ(e.at("loginflow_processing_seconds_count"), 3);
  EXPECT_NEAR(e.at("loginflow_processing_seconds_sum"), 0.500006, 1e-9);
}

std::string threeLetters(std::size_t i) {
  return {static_cast<char>('A' + i / 676 % 26), static_cast<char>('A' + i / 26 % 26),
          static_cast<char>('A' + i % 26)};
}

TEST(MetricsExporter, LocaleLabelsAreCappedFirstComeAndSticky) {
  MetricsExporter exporter("t");
  StatsSnapshot s = emptySnapshot();
  s.by_locale["unknown"] = 7;
  for (std::size_t i = 0; i < 150; ++i) s.by_locale[threeLetters(i)] = 1;
  exporter.update(s);
  Exposition e = parse(exporter.serialize());
  // 100 locales besides "unknown", plus "unknown" and "other".
  EXPECT_EQ(e.seriesWithLabel("loginflow_logins_by_locale_total", "locale"), kMaxLabelValues + 2);
  EXPECT_EQ(e.at("loginflow_logins_by_locale_total{locale=\"unknown\"}"), 7);
  EXPECT_EQ(e.at("loginflow_logins_by_locale_total{locale=\"other\"}"), 50);
  // The smallest 100 names came in the first update (map order): AAA … ADV.
  EXPECT_EQ(e.at("loginflow_logins_by_locale_total{locale=\"" + threeLetters(99) + "\"}"), 1);
  EXPECT_FALSE(e.has("loginflow_logins_by_locale_total{locale=\"" + threeLetters(100) + "\"}"));

  // Later: an admitted locale keeps its label; a newcomer, however big, goes to "other".
  s.by_locale[threeLetters(0)] = 11;
  s.by_locale["ZZ"] = 1000;
  exporter.update(s);
  e = parse(exporter.serialize());
  EXPECT_EQ(e.at("loginflow_logins_by_locale_total{locale=\"" + threeLetters(0) + "\"}"), 11);
  EXPECT_EQ(e.at("loginflow_logins_by_locale_total{locale=\"other\"}"), 1050);
  EXPECT_FALSE(e.has("loginflow_logins_by_locale_total{locale=\"ZZ\"}"));
  EXPECT_EQ(e.seriesWithLabel("loginflow_logins_by_locale_total", "locale"), kMaxLabelValues + 2);
}

TEST(MetricsExporter, DeviceTypeLabelsAreCappedAndSanitised) {
  MetricsExporter exporter("t");
  StatsSnapshot s = emptySnapshot();
  s.by_device_type["quote\"back\\slash"] = 1;
  s.by_device_type["tab\there"] = 1;
  for (std::size_t i = 0; i < 120; ++i) s.by_device_type["zz-model-" + std::to_string(1000 + i)] = 2;
  exporter.update(s);
  const std::string text = exporter.serialize();
  const Exposition e = parse(text);
  EXPECT_EQ(e.seriesWithLabel("loginflow_logins_total", "device_type"), kMaxLabelValues + 2);
  // Labels are escaped per the text format; a control character becomes U+FFFD.
  // Admitted in map order: the two odd names, then zz-model-1000 … zz-model-1097.
  EXPECT_EQ(e.at("loginflow_logins_total{device_type=\"zz-model-1097\"}"), 2);
  EXPECT_FALSE(e.has("loginflow_logins_total{device_type=\"zz-model-1098\"}"));
  EXPECT_EQ(e.at("loginflow_logins_total{device_type=\"quote\\\"back\\\\slash\"}"), 1);
  EXPECT_EQ(e.at("loginflow_logins_total{device_type=\"tab\xEF\xBF\xBDhere\"}"), 1);
  EXPECT_EQ(e.at("loginflow_logins_total{device_type=\"other\"}"), 2.0 * 22);  // 1098 … 1119
  EXPECT_EQ(text.find('\t'), std::string::npos);
}

TEST(MetricsExporter, ConsumerLagFollowsTheAssignment) {
  MetricsExporter exporter("t");
  StatsSnapshot s = emptySnapshot();
  s.consumer_lag = {{0, 5}, {1, 6}};
  exporter.update(s);
  EXPECT_EQ(parse(exporter.serialize()).at("loginflow_consumer_lag{partition=\"1\"}"), 6);
  s.consumer_lag = {{0, 2}};
  exporter.update(s);
  const Exposition e = parse(exporter.serialize());
  EXPECT_EQ(e.at("loginflow_consumer_lag{partition=\"0\"}"), 2);
  EXPECT_FALSE(e.has("loginflow_consumer_lag{partition=\"1\"}"));
}

TEST(MetricsExporter, ProducerErrorCodesUseTheNamer) {
  MetricsExporter exporter("t");
  exporter.setErrorCodeNamer([](int code) { return code == -192 ? std::string("_MSG_TIMED_OUT") : ""; });
  StatsSnapshot s = emptySnapshot();
  s.producer_errors = {{-192, 2}, {10, 1}};
  exporter.update(s);
  const Exposition e = parse(exporter.serialize());
  EXPECT_EQ(e.at("loginflow_producer_errors_total{code=\"_MSG_TIMED_OUT\"}"), 2);
  EXPECT_EQ(e.at("loginflow_producer_errors_total{code=\"10\"}"), 1);  // no name: decimal
}

// Runs `promtool check metrics` on the text; returns its output and exit status.
std::pair<std::string, int> promtoolCheck(const char* promtool, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("loginflow_metrics_test_" + std::to_string(getpid()) + ".prom");
  std::ofstream(path) << text;
  const std::string command = std::string(promtool) + " check metrics < " + path.string() + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return {"popen failed", -1};
  std::string output;
  char chunk[512];
  while (const std::size_t n = fread(chunk, 1, sizeof chunk, pipe)) output.append(chunk, n);
  const int status = pclose(pipe);
  std::filesystem::remove(path);
  return {output, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

// promtool is the reference linter for the exposition (SPEC: passes `promtool check metrics`).
TEST(MetricsExporter, PassesPromtoolCheckMetrics) {
  const char* promtool = "/usr/bin/promtool";
  if (access(promtool, X_OK) != 0) GTEST_SKIP() << "no " << promtool;
  {
    // The checker itself works here: a counter without _total and HELP is reported.
    const auto [output, status] = promtoolCheck(promtool, "# TYPE bad counter\nbad 1\n");
    ASSERT_NE(status, 0) << output;
  }
  {
    MetricsExporter fresh(LOGINFLOW_VERSION);
    const std::string text = fresh.serialize();
    const auto [output, status] = promtoolCheck(promtool, text);
    EXPECT_EQ(status, 0) << output << "\n" << text;
    EXPECT_EQ(output, "") << text;
  }
  Stats stats(2);
  stats.poller().consumed.add(3);
  stats.worker(0).by_device_type.add("android");
  stats.worker(0).by_device_type.add("");
  stats.worker(1).by_locale[localeIndex("RU")].add();
  stats.worker(0).processing.observe(1e-5);
  stats.delivery().end_to_end.observe(0.5);
  stats.delivery().producer_errors[DeliveryShard::kErrorCodeOffset - 195].add();
  {
    const std::lock_guard lock(stats.poller().lag_mu);
    stats.poller().consumer_lag[0] = 1;
  }
  MetricsExporter exporter(LOGINFLOW_VERSION);
  exporter.update(stats.snapshot());
  const std::string text = exporter.serialize();
  const auto [output, status] = promtoolCheck(promtool, text);
  EXPECT_EQ(status, 0) << output << "\n" << text;
  EXPECT_EQ(output, "") << text;
}

}  // namespace
}  // namespace loginflow
