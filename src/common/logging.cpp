#include "loginflow/logging.h"

#include <spdlog/formatter.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <array>
#include <ctime>
#include <utility>
#include <vector>

#include "loginflow/stats.h"
#include "loginflow/utf8.h"

namespace loginflow {

namespace {

constexpr const char* kLoggerName = "loginflow";

// The level names of --log-level, also written in the JSON "level" field.
constexpr std::array<std::string_view, 7> kLevelNames = {"trace", "debug", "info",    "warn",
                                                         "error", "critical", "off"};

void append(spdlog::memory_buf_t& dest, std::string_view s) {
  dest.append(s.data(), s.data() + s.size());
}

// Appends s as a JSON string literal. Log messages may quote input data, so bytes that are
// not well-formed UTF-8 become U+FFFD rather than making the line invalid JSON.
void appendJsonString(spdlog::memory_buf_t& dest, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  dest.push_back('"');
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const std::size_t n = utf8SequenceLength(s, i);
      if (n == 0) {
        append(dest, "\\ufffd");
        ++i;
      } else {
        append(dest, s.substr(i, n));
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"':
        append(dest, "\\\"");
        break;
      case '\\':
        append(dest, "\\\\");
        break;
      case '\n':
        append(dest, "\\n");
        break;
      case '\r':
        append(dest, "\\r");
        break;
      case '\t':
        append(dest, "\\t");
        break;
      default:
        if (c < 0x20 || c == 0x7F) {
          const std::array<char, 6> esc = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
          dest.append(esc.data(), esc.data() + esc.size());
        } else {
          dest.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  dest.push_back('"');
}

bool isKeyChar(char c, bool first) noexcept {
  const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  return first ? alpha : alpha || (c >= '0' && c <= '9') || c == '.';
}

bool validKey(std::string_view key) noexcept {
  if (key.empty() || key.size() > 64) return false;
  for (std::size_t i = 0; i < key.size(); ++i) {
    if (!isKeyChar(key[i], i == 0)) return false;
  }
  return key != "ts" && key != "level" && key != "logger" && key != "msg";
}

// A plain decimal number (-?(0|[1-9][0-9]*)(\.[0-9]+)?) short enough to be exact as a double:
// written as a JSON number, everything else as a string.
bool isPlainNumber(std::string_view v) noexcept {
  if (v.empty() || v.size() > 15) return false;
  std::size_t i = 0;
  if (v[i] == '-') ++i;
  const std::size_t int_start = i;
  while (i < v.size() && v[i] >= '0' && v[i] <= '9') ++i;
  const std::size_t int_len = i - int_start;
  if (int_len == 0 || (int_len > 1 && v[int_start] == '0')) return false;
  if (i == v.size()) return true;
  if (v[i] != '.') return false;
  ++i;
  const std::size_t frac_start = i;
  while (i < v.size() && v[i] >= '0' && v[i] <= '9') ++i;
  return i == v.size() && i > frac_start;
}

// The trailing " key=value" tokens of a message (values without spaces), in message order.
std::vector<std::pair<std::string_view, std::string_view>> trailingFields(std::string_view msg) {
  constexpr std::size_t kMaxFields = 16;
  std::vector<std::pair<std::string_view, std::string_view>> fields;
  std::string_view rest = msg;
  while (fields.size() < kMaxFields) {
    const std::size_t space = rest.rfind(' ');
    if (space == std::string_view::npos) break;
    const std::string_view token = rest.substr(space + 1);
    const std::size_t eq = token.find('=');
    if (eq == std::string_view::npos) break;
    const std::string_view key = token.substr(0, eq);
    if (!validKey(key)) break;
    bool duplicate = false;
    for (const auto& f : fields) duplicate = duplicate || f.first == key;
    if (duplicate) break;
    fields.emplace_back(key, token.substr(eq + 1));
    rest = rest.substr(0, space);
  }
  return {fields.rbegin(), fields.rend()};
}

// One JSON object per line: {"ts","level","logger","msg"} and the message's trailing
// key=value pairs as extra fields (msg keeps the whole text, so nothing is lost for readers
// that ignore the extra fields).
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto since_epoch = msg.time.time_since_epoch();
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count();
    std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::int64_t millis = ms % 1000;
    if (millis < 0) {
      millis += 1000;
      --secs;
    }
    std::tm tm{};
    gmtime_r(&secs, &tm);
    std::array<char, 40> ts{};
    const std::size_t n = std::strftime(ts.data(), ts.size(), "%Y-%m-%dT%H:%M:%S", &tm);

    append(dest, "{\"ts\":\"");
    dest.append(ts.data(), ts.data() + n);
    dest.push_back('.');
    dest.push_back(static_cast<char>('0' + millis / 100));
    dest.push_back(static_cast<char>('0' + millis / 10 % 10));
    dest.push_back(static_cast<char>('0' + millis % 10));
    append(dest, "Z\",\"level\":");
    const auto level = static_cast<std::size_t>(msg.level);
    appendJsonString(dest, level < kLevelNames.size() ? kLevelNames[level] : "unknown");
    append(dest, ",\"logger\":");
    appendJsonString(dest, std::string_view(msg.logger_name.data(), msg.logger_name.size()));
    append(dest, ",\"msg\":");
    const std::string_view payload(msg.payload.data(), msg.payload.size());
    appendJsonString(dest, payload);
    for (const auto& [key, value] : trailingFields(payload)) {
      dest.push_back(',');
      appendJsonString(dest, key);
      dest.push_back(':');
      if (isPlainNumber(value)) {
        append(dest, value);
      } else {
        appendJsonString(dest, value);
      }
    }
    append(dest, "}\n");
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

}  // namespace

bool parseLogLevel(std::string_view s, int& spdlog_level) {
  for (std::size_t i = 0; i < kLevelNames.size(); ++i) {
    if (s == kLevelNames[i]) {
      spdlog_level = static_cast<int>(i);
      return true;
    }
  }
  if (s == "warning") {
    spdlog_level = static_cast<int>(spdlog::level::warn);
    return true;
  }
  return false;
}

bool parseLogFormat(std::string_view s, LogFormat& format) {
  if (s == "text") {
    format = LogFormat::kText;
    return true;
  }
  if (s == "json") {
    format = LogFormat::kJson;
    return true;
  }
  return false;
}

void setupLogging(int spdlog_level, LogFormat format) {
  std::shared_ptr<spdlog::sinks::sink> sink;
  if (format == LogFormat::kJson) {
    // No colour codes in machine-read output.
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    sink->set_formatter(std::make_unique<JsonFormatter>());
  } else {
    // Colours only when stderr is a terminal (the sink checks).
    sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    sink->set_formatter(std::make_unique<spdlog::pattern_formatter>(
        "%Y-%m-%dT%H:%M:%S.%eZ [%^%l%$] %v", spdlog::pattern_time_type::utc));
  }
  auto logger = std::make_shared<spdlog::logger>(kLoggerName, std::move(sink));
  logger->set_level(static_cast<spdlog::level::level_enum>(spdlog_level));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
}

RateLimitedLog::RateLimitedLog(std::chrono::milliseconds interval) noexcept
    : interval_ms_(interval.count()) {}

bool RateLimitedLog::shouldLog(std::uint64_t& suppressed) noexcept {
  const std::int64_t now = steadyMs();
  std::int64_t next = next_ms_.load(std::memory_order_relaxed);
  // One thread wins the slot for this interval; everyone else counts a suppressed repeat.
  if (now < next ||
      !next_ms_.compare_exchange_strong(next, now + interval_ms_, std::memory_order_acq_rel,
                                        std::memory_order_relaxed)) {
    suppressed_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  suppressed = suppressed_.exchange(0, std::memory_order_acq_rel);
  return true;
}

}  // namespace loginflow
