#include "loginflow/insights.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <array>
#include <cstdio>
#include <utility>

#include "loginflow/utf8.h"

namespace loginflow {

namespace {

using Counts = std::map<std::string, std::uint64_t>;
using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// `now - before` per name, without the names whose difference is zero; names are made valid
// UTF-8 (merging any that become equal).
Counts difference(const Counts& now, const Counts* before) {
  Counts out;
  for (const auto& [name, count] : now) {
    std::uint64_t prior = 0;
    if (before != nullptr) {
      const auto it = before->find(name);
      if (it != before->end()) prior = it->second;
    }
    if (count <= prior) continue;
    if (validUtf8(name)) {
      out[name] += count - prior;
    } else {
      out[sanitizeUtf8(name)] += count - prior;
    }
  }
  return out;
}

std::uint64_t minus(std::uint64_t a, std::uint64_t b) noexcept { return a > b ? a - b : 0; }

// The transform only lets valid UTF-8 through, but the insights must be valid JSON whatever a
// shard holds: ill-formed bytes become U+FFFD.
void writeString(JsonWriter& w, std::string_view s) {
  if (!validUtf8(s)) {
    const std::string valid = sanitizeUtf8(s);
    w.String(valid.data(), static_cast<rapidjson::SizeType>(valid.size()));
    return;
  }
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void writeCounts(JsonWriter& w, const Counts& counts) {
  w.StartObject();
  for (const auto& [name, count] : counts) {
    writeString(w, name);
    w.Uint64(count);
  }
  w.EndObject();
}

// The largest count; ties go to the smaller name in byte order (std::string's ordering, which
// compares as unsigned char). {"name":null,"count":0} when there is nothing.
void writeTop(JsonWriter& w, const Counts& counts) {
  const std::pair<const std::string, std::uint64_t>* top = nullptr;
  for (const auto& entry : counts) {
    if (entry.second != 0 && (top == nullptr || entry.second > top->second)) top = &entry;
  }
  w.StartObject();
  w.Key("name");
  if (top == nullptr) {
    w.Null();
  } else {
    writeString(w, top->first);
  }
  w.Key("count");
  w.Uint64(top == nullptr ? 0 : top->second);
  w.EndObject();
}

struct Window {
  std::int64_t start_ms = 0;
  std::int64_t end_ms = 0;
  std::uint64_t records = 0;
  std::uint64_t dead_letters = 0;
  Counts by_device_type;
  Counts by_locale;
};

// Writes the members of one snapshot object (the caller opens and closes it).
void writeWindow(JsonWriter& w, const std::string& instance, const Window& win) {
  w.Key("instance");
  writeString(w, instance);
  w.Key("window_start");
  writeString(w, formatIsoMillis(win.start_ms));
  w.Key("window_end");
  writeString(w, formatIsoMillis(win.end_ms));
  w.Key("records");
  w.Uint64(win.records);
  w.Key("dead_letters");
  w.Uint64(win.dead_letters);
  w.Key("by_device_type");
  writeCounts(w, win.by_device_type);
  w.Key("by_locale");
  writeCounts(w, win.by_locale);
  w.Key("top_device_type");
  writeTop(w, win.by_device_type);
  w.Key("top_locale");
  writeTop(w, win.by_locale);
}

// Days since 1970-01-01 → civil date (proleptic Gregorian), after Howard Hinnant's
// days_from_civil / civil_from_days.
void civilFromDays(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) noexcept {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2) ++y;
}

}  // namespace

std::string formatIsoMillis(std::int64_t epoch_ms) {
  constexpr std::int64_t kMsPerDay = 86'400'000;
  std::int64_t days = epoch_ms / kMsPerDay;
  std::int64_t ms_of_day = epoch_ms % kMsPerDay;
  if (ms_of_day < 0) {
    ms_of_day += kMsPerDay;
    --days;
  }
  std::int64_t year = 0;
  unsigned month = 0;
  unsigned day = 0;
  civilFromDays(days, year, month, day);
  const std::int64_t secs = ms_of_day / 1000;
  std::array<char, 48> buf{};
  const int n = std::snprintf(buf.data(), buf.size(), "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%03lldZ",
                              static_cast<long long>(year), month, day,
                              static_cast<long long>(secs / 3600),
                              static_cast<long long>(secs / 60 % 60),
                              static_cast<long long>(secs % 60),
                              static_cast<long long>(ms_of_day % 1000));
  return std::string(buf.data(), n > 0 ? static_cast<std::size_t>(n) : 0);
}

Insights::Insights(std::string instance, std::int64_t start_ms)
    : instance_(std::move(instance)), start_ms_(start_ms), window_start_ms_(start_ms) {}

std::string Insights::roll(const StatsSnapshot& cumulative, std::int64_t now_ms) {
  latest_ = render(cumulative, now_ms);
  at_window_start_ = cumulative;
  window_start_ms_ = now_ms;
  return latest_;
}

std::string Insights::latest(const StatsSnapshot& cumulative, std::int64_t now_ms) const {
  if (!latest_.empty()) return latest_;
  // Before the first roll the window is everything since start.
  return render(cumulative, now_ms);
}

std::string Insights::render(const StatsSnapshot& cumulative, std::int64_t now_ms) const {
  Window window;
  window.start_ms = window_start_ms_;
  window.end_ms = now_ms;
  window.records = minus(cumulative.outputs, at_window_start_.outputs);
  window.dead_letters = minus(cumulative.dead_letters, at_window_start_.dead_letters);
  window.by_device_type = difference(cumulative.by_device_type, &at_window_start_.by_device_type);
  window.by_locale = difference(cumulative.by_locale, &at_window_start_.by_locale);

  Window total;
  total.start_ms = start_ms_;
  total.end_ms = now_ms;
  total.records = cumulative.outputs;
  total.dead_letters = cumulative.dead_letters;
  total.by_device_type = difference(cumulative.by_device_type, nullptr);
  total.by_locale = difference(cumulative.by_locale, nullptr);

  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  writeWindow(w, instance_, window);
  w.Key("cumulative");
  w.StartObject();
  writeWindow(w, instance_, total);
  w.EndObject();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace loginflow
