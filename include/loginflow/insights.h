// Running insights: logins per device type and per locale, the most popular of each, over the
// last window and since start (SPEC "Insights").
//
// The control thread calls roll() every --insights-interval with the merged snapshot; the
// result is the JSON document that is published to the insights topic, logged and served at
// /insights. Counts are uncapped here (the metric label cap does not apply).
//
// Thread-safety: not thread-safe; the control thread owns it.
#pragma once

#include <cstdint>
#include <string>

#include "loginflow/stats.h"

namespace loginflow {

class Insights {
 public:
  Insights(std::string instance, std::int64_t start_ms);

  // Closes the window [previous roll (or start), now_ms] and returns its JSON snapshot
  // (compact, one line), which becomes latest().
  std::string roll(const StatsSnapshot& cumulative, std::int64_t now_ms);

  // The last rolled snapshot; before the first roll, a snapshot of everything since start
  // computed from `cumulative` at now_ms.
  std::string latest(const StatsSnapshot& cumulative, std::int64_t now_ms) const;

  const std::string& instance() const noexcept { return instance_; }

 private:
  std::string render(const StatsSnapshot& cumulative, std::int64_t now_ms) const;
  std::string instance_;
  std::int64_t start_ms_;
  std::int64_t window_start_ms_;
  StatsSnapshot at_window_start_;
  std::string latest_;
};

// ISO-8601 UTC with three fraction digits: 2026-11-25T10:00:00.123Z
std::string formatIsoMillis(std::int64_t epoch_ms);

}  // namespace loginflow
