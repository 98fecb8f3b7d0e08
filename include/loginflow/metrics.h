// The Prometheus exposition: prometheus-cpp families fed from merged StatsSnapshots.
//
// update() runs once a second on the control thread; it turns the snapshot's totals into
// counter increments (delta since the previous update), sets the gauges, adds the process
// metrics (process_cpu_seconds_total, process_resident_memory_bytes from /proc/self) and
// applies the label-cardinality caps: at most 100 distinct locale values besides "unknown"
// (the rest are counted as "other"), and the same cap for device types. No user data
// (user_id, ip, device_id) is ever a label.
//
// Besides the families of SPEC "Metrics" it exports commit_failures_total and
// producer_queue_full_total (degraded modes), and the standard process_virtual_memory_bytes,
// process_start_time_seconds, process_open_fds and process_max_fds.
//
// Thread-safety: update() and serialize() from one thread at a time (the control thread).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "loginflow/stats.h"

namespace loginflow {

inline constexpr std::size_t kMaxLabelValues = 100;

class MetricsExporter {
 public:
  explicit MetricsExporter(const std::string& version);
  ~MetricsExporter();
  MetricsExporter(const MetricsExporter&) = delete;
  MetricsExporter& operator=(const MetricsExporter&) = delete;

  void update(const StatsSnapshot& snapshot);

  // Turns a librdkafka error code into the `code` label of producer_errors_total. This
  // library does not link librdkafka, so the app sets it to rd_kafka_err2name (labels such as
  // "_MSG_TIMED_OUT"); without it, or when it returns "", the label is the code in decimal
  // ("-192"). Set it before the first update(): a code keeps the label it was first given.
  using ErrorCodeNamer = std::function<std::string(int code)>;
  void setErrorCodeNamer(ErrorCodeNamer namer);

  // The Prometheus text exposition format 0.0.4.
  std::string serialize() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace loginflow
