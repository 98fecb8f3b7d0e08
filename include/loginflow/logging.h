// Logging set-up: spdlog's default logger, as text (default) or one JSON object per line
// ({"ts","level","logger","msg"} plus any "key=value" fields) for log pipelines.
//
// Also RateLimitedLog, for errors on the hot path: the message is logged at most once per
// interval, with the count of suppressed repeats; the caller counts every occurrence in a
// metric regardless.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace loginflow {

enum class LogFormat { kText, kJson };

// Parses "trace|debug|info|warn|error|critical|off"; false when unknown.
bool parseLogLevel(std::string_view s, int& spdlog_level);
// Parses "text|json"; false when unknown.
bool parseLogFormat(std::string_view s, LogFormat& format);

// Installs the default logger on stderr. Call once at start-up, before threads start.
void setupLogging(int spdlog_level, LogFormat format);

// Thread-safe: any thread may call shouldLog(); returns true (and the number of repeats
// suppressed since the last true) at most once per interval.
class RateLimitedLog {
 public:
  explicit RateLimitedLog(std::chrono::milliseconds interval = std::chrono::seconds(5)) noexcept;
  bool shouldLog(std::uint64_t& suppressed) noexcept;

 private:
  std::int64_t interval_ms_;
  std::atomic<std::int64_t> next_ms_{0};
  std::atomic<std::uint64_t> suppressed_{0};
};

}  // namespace loginflow
