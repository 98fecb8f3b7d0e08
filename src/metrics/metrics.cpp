#include "loginflow/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "loginflow/utf8.h"
#include "process_metrics.h"

namespace loginflow {

namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;
using prometheus::Registry;

constexpr std::string_view kUnknown = "unknown";
constexpr std::string_view kOther = "other";

// A Prometheus counter fed from a cumulative total: it moves by the increase since the
// previous update and never backwards (a smaller total only resets the baseline).
class DeltaCounter {
 public:
  explicit DeltaCounter(Counter& counter) : counter_(&counter) {}
  void update(std::uint64_t total) {
    if (total > last_) counter_->Increment(static_cast<double>(total - last_));
    last_ = total;
  }
  void update(double total) {
    if (total > last_double_) counter_->Increment(total - last_double_);
    last_double_ = total;
  }

 private:
  Counter* counter_;
  std::uint64_t last_ = 0;
  double last_double_ = 0;
};

constexpr const char* kConsumerLagName = "loginflow_consumer_lag";
constexpr const char* kConsumerLagHelp =
    "Records behind of each input partition this member owns: the high watermark minus the group's committed "
    "offset, read from the brokers every 2 s.";
constexpr const char* kProducerErrorsName = "loginflow_producer_errors_total";
constexpr const char* kProducerErrorsHelp =
    "Producer errors, by librdkafka error code (its name, e.g. _MSG_TIMED_OUT).";

Family<Counter>& counterFamily(Registry& r, const std::string& name, const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r);
}
Family<Gauge>& gaugeFamily(Registry& r, const std::string& name, const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r);
}

// Label values may be any UTF-8, but a value taken from input data (a device type) is made
// safe for every consumer of the exposition: ill-formed UTF-8 and control characters (which
// the text format cannot escape, except LF) become U+FFFD.
std::string labelValue(std::string_view s) { return sanitizeUtf8(s, /*controls_too=*/true); }

// A counter family with one label whose values come from the data (device types, locales):
// at most `cap` distinct values besides "unknown", admitted first come and kept for the
// process's life; the rest are counted under "other".
class CappedCounterFamily {
 public:
  CappedCounterFamily(Family<Counter>& family, std::string label, std::size_t cap)
      : family_(&family), label_(std::move(label)), cap_(cap) {
    counter(std::string(kUnknown));  // always exported, so the series exists from the start
  }

  void update(const std::map<std::string, std::uint64_t>& totals) {
    // Map order: when more new values arrive in one update than there is room for, the
    // admitted ones are the smallest names — deterministic, and sticky afterwards.
    std::map<std::string, std::uint64_t> increments;
    for (const auto& [name, total] : totals) {
      std::uint64_t& last = last_[name];
      if (total <= last) {
        last = total;
        continue;
      }
      const std::uint64_t delta = total - last;
      last = total;
      increments[target(name)] += delta;
    }
    for (const auto& [value, delta] : increments) {
      counter(value).Increment(static_cast<double>(delta));
    }
  }

  std::size_t admitted() const noexcept { return admitted_.size(); }

 private:
  std::string target(const std::string& name) {
    std::string value = labelValue(name);
    if (value == kUnknown || admitted_.count(value) != 0) return value;
    if (admitted_.size() < cap_) {
      admitted_.insert(value);
      return value;
    }
    return std::string(kOther);
  }

  Counter& counter(const std::string& value) {
    auto it = counters_.find(value);
    if (it == counters_.end()) {
      it = counters_.emplace(value, &family_->Add({{label_, value}})).first;
    }
    return *it->second;
  }

  Family<Counter>* family_;
  std::string label_;
  std::size_t cap_;
  std::set<std::string> admitted_;                  // label values besides "unknown"
  std::map<std::string, std::uint64_t> last_;       // per raw name: total at the last update
  std::unordered_map<std::string, Counter*> counters_;
};

// A histogram fed from cumulative non-cumulative-bucket snapshots by ObserveMultiple.
class DeltaHistogram {
 public:
  DeltaHistogram(Family<Histogram>& family, std::span<const double> bounds)
      : histogram_(&family.Add({}, Histogram::BucketBoundaries(bounds.begin(), bounds.end()))),
        last_buckets_(bounds.size() + 1, 0) {}

  void update(const HistogramSnapshot& s) {
    if (s.buckets.size() != last_buckets_.size()) return;  // not this histogram's layout
    std::vector<double> increments(last_buckets_.size(), 0);
    bool moved = false;
    for (std::size_t i = 0; i < increments.size(); ++i) {
      if (s.buckets[i] > last_buckets_[i]) {
        increments[i] = static_cast<double>(s.buckets[i] - last_buckets_[i]);
        moved = true;
      }
      last_buckets_[i] = s.buckets[i];
    }
    const double sum_delta = s.sum > last_sum_ ? s.sum - last_sum_ : 0;
    last_sum_ = s.sum;
    if (moved || sum_delta > 0) histogram_->ObserveMultiple(increments, sum_delta);
  }

 private:
  Histogram* histogram_;
  std::vector<std::uint64_t> last_buckets_;
  double last_sum_ = 0;
};

}  // namespace

struct MetricsExporter::Impl {
  explicit Impl(const std::string& version);

  // The registry first: every family below lives in it.
  Registry registry;

  DeltaCounter consumed;
  DeltaCounter produced;
  std::vector<DeltaCounter> dlq;       // by DlqReason
  std::vector<DeltaCounter> warnings;  // by Warning
  CappedCounterFamily logins;
  CappedCounterFamily logins_by_locale;
  DeltaHistogram processing;
  DeltaHistogram end_to_end;
  Gauge& queue_depth;
  Gauge& in_flight;
  Family<Gauge>& consumer_lag_family;
  std::map<std::int32_t, Gauge*> consumer_lag;
  std::vector<DeltaCounter> rebalances;  // by RebalanceKind
  DeltaCounter commits;
  DeltaCounter commit_failures;
  DeltaCounter input_gaps;
  Family<Counter>& producer_errors_family;
  std::map<int, DeltaCounter> producer_errors;
  DeltaCounter producer_queue_full;
  Gauge& workers;

  DeltaCounter process_cpu;
  Gauge& process_rss;
  Gauge& process_vsize;
  Gauge& process_start_time;
  Gauge& process_open_fds;
  Gauge& process_max_fds;

  ErrorCodeNamer error_code_namer;
  prometheus::MetricFamily consumer_lag_meta;
  prometheus::MetricFamily producer_errors_meta;

  std::string errorLabel(int code) const;
};

MetricsExporter::Impl::Impl(const std::string& version)
    : consumed(counterFamily(registry, "loginflow_records_consumed_total",
                             "Records consumed from the input topic.")
                   .Add({})),
      produced(counterFamily(registry, "loginflow_records_produced_total",
                             "Output records acknowledged by the brokers.")
                   .Add({})),
      logins(counterFamily(registry, "loginflow_logins_total",
                           "Logins by device type (null counts as unknown; at most 100 device "
                           "types besides unknown, the rest count as other)."),
             "device_type", kMaxLabelValues),
      logins_by_locale(counterFamily(registry, "loginflow_logins_by_locale_total",
                                     "Logins by locale (null counts as unknown; at most 100 "
                                     "locales besides unknown, the rest count as other)."),
                       "locale", kMaxLabelValues),
      processing(prometheus::BuildHistogram()
                     .Name("loginflow_processing_seconds")
                     .Help("Time to transform one record, in seconds.")
                     .Register(registry),
                 kProcessingBuckets),
      end_to_end(prometheus::BuildHistogram()
                     .Name("loginflow_end_to_end_seconds")
                     .Help("From the Kafka timestamp of an input record to the broker's "
                           "acknowledgement of its output, in seconds.")
                     .Register(registry),
                 kEndToEndBuckets),
      queue_depth(gaugeFamily(registry, "loginflow_queue_depth",
                              "Records dispatched to the workers' queues and not yet taken.")
                      .Add({})),
      in_flight(gaugeFamily(registry, "loginflow_in_flight_records",
                            "Records consumed and not yet acknowledged by the brokers.")
                    .Add({})),
      consumer_lag_family(gaugeFamily(registry, kConsumerLagName, kConsumerLagHelp)),
      commits(counterFamily(registry, "loginflow_commits_total", "Successful offset commits.")
                  .Add({})),
      commit_failures(counterFamily(registry, "loginflow_commit_failures_total",
                                    "Offset commits that failed.")
                          .Add({})),
      input_gaps(counterFamily(registry, "loginflow_input_gaps_total",
                               "Jumps in the input offsets consumed from one partition: records never consumed "
                               "(normal on compacted topics and after transaction markers).")
                     .Add({})),
      producer_errors_family(counterFamily(registry, kProducerErrorsName, kProducerErrorsHelp)),
      producer_queue_full(counterFamily(registry, "loginflow_producer_queue_full_total",
                                        "Produce calls retried because librdkafka's queue was "
                                        "full.")
                              .Add({})),
      workers(gaugeFamily(registry, "loginflow_workers", "Worker threads.").Add({})),
      process_cpu(counterFamily(registry, "process_cpu_seconds_total",
                                "Total user and system CPU time spent in seconds.")
                      .Add({})),
      process_rss(gaugeFamily(registry, "process_resident_memory_bytes",
                              "Resident memory size in bytes.")
                      .Add({})),
      process_vsize(gaugeFamily(registry, "process_virtual_memory_bytes",
                                "Virtual memory size in bytes.")
                        .Add({})),
      process_start_time(gaugeFamily(registry, "process_start_time_seconds",
                                     "Start time of the process since unix epoch in seconds.")
                             .Add({})),
      process_open_fds(gaugeFamily(registry, "process_open_fds", "Number of open file descriptors.")
                           .Add({})),
      process_max_fds(gaugeFamily(registry, "process_max_fds",
                                  "Maximum number of open file descriptors.")
                          .Add({})),
      consumer_lag_meta{kConsumerLagName, kConsumerLagHelp, prometheus::MetricType::Gauge, {}},
      producer_errors_meta{kProducerErrorsName, kProducerErrorsHelp,
                           prometheus::MetricType::Counter, {}} {
  auto& dlq_family = counterFamily(registry, "loginflow_records_dlq_total",
                                   "Dead letters acknowledged by the brokers, by reason.");
  for (std::size_t i = 0; i < kDlqReasonCount; ++i) {
    const std::string_view name = dlqReasonName(static_cast<DlqReason>(i));
    dlq.emplace_back(dlq_family.Add({{"reason", std::string(name)}}));
  }
  auto& warning_family = counterFamily(registry, "loginflow_records_warnings_total",
                                       "Output records with a warning, by warning.");
  for (std::size_t i = 0; i < kWarningCount; ++i) {
    const std::string_view name = warningName(static_cast<Warning>(i));
    warnings.emplace_back(warning_family.Add({{"warning", std::string(name)}}));
  }
  auto& rebalance_family =
      counterFamily(registry, "loginflow_rebalances_total", "Consumer group rebalances, by kind.");
  for (std::size_t i = 0; i < kRebalanceKindCount; ++i) {
    const std::string_view name = rebalanceKindName(static_cast<RebalanceKind>(i));
    rebalances.emplace_back(rebalance_family.Add({{"kind", std::string(name)}}));
  }
  gaugeFamily(registry, "loginflow_build_info", "Build information; the value is always 1.")
      .Add({{"version", version}})
      .Set(1);
}

std::string MetricsExporter::Impl::errorLabel(int code) const {
  if (error_code_namer) {
    std::string name = error_code_namer(code);
    if (!name.empty()) return labelValue(name);
  }
  return std::to_string(code);
}

MetricsExporter::MetricsExporter(const std::string& version)
    : impl_(std::make_unique<Impl>(version)) {
  if (auto sample = metrics_detail::readProcessSample()) {
    impl_->process_start_time.Set(sample->start_time_seconds);
  }
}

MetricsExporter::~MetricsExporter() = default;

void MetricsExporter::setErrorCodeNamer(ErrorCodeNamer namer) {
  impl_->error_code_namer = std::move(namer);
}

void MetricsExporter::update(const StatsSnapshot& s) {
  Impl& m = *impl_;
  m.consumed.update(s.consumed);
  m.produced.update(s.produced);
  for (std::size_t i = 0; i < kDlqReasonCount; ++i) m.dlq[i].update(s.dlq[i]);
  for (std::size_t i = 0; i < kWarningCount; ++i) m.warnings[i].update(s.warnings[i]);
  m.logins.update(s.by_device_type);
  m.logins_by_locale.update(s.by_locale);
  m.processing.update(s.processing);
  m.end_to_end.update(s.end_to_end);
  m.queue_depth.Set(static_cast<double>(s.queue_depth));
  m.in_flight.Set(static_cast<double>(s.in_flight));

  // Lag of the partitions assigned now; a revoked partition's series disappears rather than
  // staying frozen at its last value.
  for (auto it = m.consumer_lag.begin(); it != m.consumer_lag.end();) {
    if (s.consumer_lag.count(it->first) == 0) {
      m.consumer_lag_family.Remove(it->second);
      it = m.consumer_lag.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [partition, lag] : s.consumer_lag) {
    Gauge*& gauge = m.consumer_lag[partition];
    if (gauge == nullptr) {
      gauge = &m.consumer_lag_family.Add({{"partition", std::to_string(partition)}});
    }
    gauge->Set(static_cast<double>(lag));
  }

  for (std::size_t i = 0; i < kRebalanceKindCount; ++i) m.rebalances[i].update(s.rebalances[i]);
  m.commits.update(s.commits);
  m.commit_failures.update(s.commit_failures);
  m.input_gaps.update(s.input_gaps);
  for (const auto& [code, count] : s.producer_errors) {
    auto it = m.producer_errors.find(code);
    if (it == m.producer_errors.end()) {
      Counter& counter = m.producer_errors_family.Add({{"code", m.errorLabel(code)}});
      it = m.producer_errors.emplace(code, DeltaCounter(counter)).first;
    }
    it->second.update(count);
  }
  m.producer_queue_full.update(s.producer_queue_full);
  m.workers.Set(static_cast<double>(s.workers));

  if (auto sample = metrics_detail::readProcessSample()) {
    m.process_cpu.update(sample->cpu_seconds);
    m.process_rss.Set(sample->resident_memory_bytes);
    m.process_vsize.Set(sample->virtual_memory_bytes);
    m.process_start_time.Set(sample->start_time_seconds);
    m.process_open_fds.Set(sample->open_fds);
    m.process_max_fds.Set(sample->max_fds);
  }
}

std::string MetricsExporter::serialize() const {
  std::vector<prometheus::MetricFamily> families = impl_->registry.Collect();
  // prometheus-cpp leaves out a family without series (consumer_lag before an assignment,
  // producer_errors_total before the first error). Keep its HELP and TYPE, so that every
  // family of the contract is always visible to whoever reads the exposition.
  for (const auto* empty : {&impl_->consumer_lag_meta, &impl_->producer_errors_meta}) {
    const bool present = std::any_of(families.begin(), families.end(),
                                     [&](const auto& f) { return f.name == empty->name; });
    if (!present) families.push_back(*empty);
  }
  // A stable order (families by name, series by labels) for people and diffs; prometheus-cpp
  // keeps series in a hash map.
  std::sort(families.begin(), families.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  for (auto& family : families) {
    std::sort(family.metric.begin(), family.metric.end(),
              [](const auto& a, const auto& b) { return a.label < b.label; });
  }
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace loginflow
