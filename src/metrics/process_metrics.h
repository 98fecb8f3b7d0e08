// The standard process_* metrics, read from /proc/self (prometheus-cpp has no process
// collector; these follow the Go and Java clients' names and units).
#pragma once

#include <optional>

namespace loginflow::metrics_detail {

struct ProcessSample {
  double cpu_seconds = 0;             // user + system CPU time
  double resident_memory_bytes = 0;   // /proc/self/statm resident pages × page size
  double virtual_memory_bytes = 0;    // /proc/self/statm size pages × page size
  double start_time_seconds = 0;      // since the Unix epoch
  double open_fds = 0;
  double max_fds = 0;                 // the soft RLIMIT_NOFILE
};

// Reads the current values; std::nullopt when /proc is not readable (not Linux, or hidden).
std::optional<ProcessSample> readProcessSample();

}  // namespace loginflow::metrics_detail
