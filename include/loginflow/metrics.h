// The Prometheus exposition: prometheus-cpp families fed from merged StatsSnapshots.
//
// update() runs once a second on the control thread; it turns the snapshot's totals into
// counter increments (delta since the previous update), sets the gauges, adds the process
// metrics (process_cpu_seconds_total, process_resident_memory_bytes from /proc/self) and
// applies the label-cardinality caps: at most 100 distinct locale values besides "unknown"
// (the rest are counted as "other"), and the same cap for device types. No user data
// (user_id, ip, device_id) is ever a label.
//
// Thread-safety: update() and serialize() from one thread at a time (the control thread).
#pragma once

#include <memory>
#include <string>

#include "loginflow/stats.h"

namespace loginflow {

inline constexpr std::size_t kMaxLabelValues = 100;

class MetricsExporter {
 public:
  explicit MetricsExporter(std::string version);
  ~MetricsExporter();
  MetricsExporter(const MetricsExporter&) = delete;
  MetricsExporter& operator=(const MetricsExporter&) = delete;

  void update(const StatsSnapshot& snapshot);

  // The Prometheus text exposition format 0.0.4.
  std::string serialize() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace loginflow
