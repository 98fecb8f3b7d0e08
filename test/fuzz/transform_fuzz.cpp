// libFuzzer target for the login-event transform (SPEC "Output" and "Dead letters").
//
// Each input is one Kafka record. By default the whole input is the value, the key is null
// and the clock is fixed (kDefaultNow). An input that starts with the byte 0xFF — which can
// never start valid JSON, so no JSON case is lost — carries a 4-byte control header instead:
//
//   0xFF, mode, clock, key_len, key bytes (key_len % 17, 16 = null key), value bytes...
//
//   mode % 4: 0 the value as given; 1 a null value (tombstone); 2 the value padded with
//             spaces to 1,000,001 bytes (too_large); 3 padded with spaces to exactly
//             1,000,000 bytes (the largest value that is parsed, not too_large)
//   clock % 16: which wall clock to pass as now_ms (kClocks), including absurd ones
//
// For every record it checks SPEC's invariants and aborts with a message when one fails:
//   - the result is an output or a dead letter with a known reason;
//   - an output's value is compact, valid UTF-8 JSON: an object with exactly the ten SPEC
//     fields in SPEC order, each of its type and rule (user_id a non-empty string of at most
//     128 bytes, timestamp an integer in [2000-01-01, now + 24 h], login_time agreeing with it,
//     processed_at the clock, warnings known names in field order, each one for a null field),
//     consistent with the Result's counter facts; the output key is the user_id;
//   - when an independent SAX reading of the input succeeds, an output agrees field by field
//     with SPEC's rules applied to it (a small oracle written from SPEC, not from the
//     transform), and a dead letter's reason is the one SPEC's precedence gives;
//   - a dead letter has a non-empty detail; its value is the input byte for byte (the first
//     1,024 bytes for too_large, which applies exactly above 1,000,000 bytes);
//   - determinism and no state leaking between records: applying the same record again, after
//     a different record went through the same Transformer, gives an identical Result.

#include <arpa/inet.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loginflow/transform.h"

namespace {

using loginflow::DlqReason;
using loginflow::InputRecord;
using loginflow::Result;
using loginflow::Transformer;

constexpr std::int64_t kDefaultNow = 1'764'064'800'123;    // 2025-11-25T10:00:00.123Z
constexpr std::int64_t kMinTimestampMs = 946'684'800'000;  // 2000-01-01T00:00:00Z
constexpr std::int64_t kDayMs = 86'400'000;
constexpr std::int64_t kI64Max = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kI64Min = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t kYear9999EndMs = 253'402'300'799'999;  // 9999-12-31T23:59:59.999Z

constexpr std::array<std::int64_t, 16> kClocks = {
    kDefaultNow,
    kDefaultNow - 123,             // a whole second
    kDefaultNow + 876,             // .999
    kMinTimestampMs,               // 2000-01-01 exactly
    kMinTimestampMs - kDayMs,      // now + 24 h = the lower bound exactly
    kMinTimestampMs - kDayMs - 1,  // nothing is valid
    999'999'999'999 - kDayMs,      // now + 24 h = 10^12 - 1 ms
    1'000'000'000'000,             // 2001-09-09T01:46:40Z
    2'147'483'647'999,             // 2038-01-19T03:14:07.999Z
    4'102'444'800'000,             // 2100-01-01
    kYear9999EndMs,                // the last instant with a 4-digit year
    kYear9999EndMs + 1,            // year 10000 (robustness only)
    0,                             // robustness only from here on
    -1,
    kI64Max,
    kI64Min,
};

constexpr std::size_t kMaxValueBytes = loginflow::kMaxValueBytes;
constexpr std::size_t kKeepBytes = loginflow::kTooLargeKeepBytes;

constexpr std::array<std::string_view, 10> kOutputFields = {
    "user_id", "device_id", "device_type", "app_version",  "locale",
    "ip",      "timestamp", "login_time",  "processed_at", "warnings"};

constexpr std::array<std::string_view, 5> kWarningNames = {
    "invalid_device_id", "invalid_device_type", "invalid_app_version", "invalid_locale",
    "invalid_ip"};
// The output field each warning is about, as an index into kOutputFields.
constexpr std::array<std::size_t, 5> kWarningField = {1, 2, 3, 4, 5};

constexpr std::array<std::string_view, 7> kReasonNames = {
    "too_large",       "invalid_json",      "not_an_object",    "missing_user_id",
    "invalid_user_id", "missing_timestamp", "invalid_timestamp"};

// ---- failure reporting ---------------------------------------------------------------------

std::string printable(std::string_view s, std::size_t max = 300) {
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < max; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size() > max) out += "...(" + std::to_string(s.size()) + " bytes)";
  return out;
}

struct Context {
  std::string_view value;
  bool value_null = false;
  std::int64_t now = 0;
  const Result* result = nullptr;
};
Context g_ctx;

[[noreturn]] void fail(std::string_view what, std::string_view detail = {}) {
  std::fprintf(stderr, "\n==transform_fuzz== INVARIANT VIOLATED: %.*s\n",
               static_cast<int>(what.size()), what.data());
  if (!detail.empty()) {
    std::fprintf(stderr, "  detail: %s\n", printable(detail).c_str());
  }
  std::fprintf(stderr, "  now_ms: %lld\n", static_cast<long long>(g_ctx.now));
  std::fprintf(stderr, "  input value: %s\n",
               g_ctx.value_null ? "(null)" : printable(g_ctx.value).c_str());
  if (const Result* r = g_ctx.result; r != nullptr) {
    if (r->kind == Result::Kind::kOutput) {
      std::fprintf(stderr, "  output key: %s\n  output value: %s\n", printable(r->key).c_str(),
                   printable(r->value).c_str());
    } else {
      std::fprintf(stderr, "  dead letter: reason %u, detail: %s\n",
                   static_cast<unsigned>(r->reason), printable(r->detail).c_str());
    }
  }
  std::fflush(stderr);
  std::abort();
}

#define FUZZ_CHECK(cond, ...)                                         \
  do {                                                                \
    if (!(cond)) fail("CHECK(" #cond ")" __VA_OPT__(, ) __VA_ARGS__); \
  } while (false)

// ---- small independent helpers (from SPEC, not from the transform) ---------------------------

bool isStrictUtf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
      cp = c & 0x1FU;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      cp = c & 0x0FU;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      cp = c & 0x07U;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;  // truncated sequence
    for (std::size_t k = 1; k <= n; ++k) {
      const auto t = static_cast<unsigned char>(s[i + k]);
      if ((t & 0xC0U) != 0x80U) return false;
      cp = (cp << 6) | (t & 0x3FU);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

constexpr bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string trim(std::string_view s) {
  std::size_t b = 0;
  std::size_t e = s.size();
  while (b < e && isSpace(s[b])) ++b;
  while (e > b && isSpace(s[e - 1])) --e;
  return std::string(s.substr(b, e - b));
}

bool isDigits(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bool isAppVersion(std::string_view s) {
  // ^[0-9]+(\.[0-9]+)*$ : digit groups separated by single dots.
  std::size_t i = 0;
  while (true) {
    const std::size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == start) return false;
    if (i == s.size()) return true;
    if (s[i] != '.') return false;
    ++i;
  }
}

bool isIp(std::string_view s) {
  if (s.empty() || s.find('\0') != std::string_view::npos || s.size() > 200) return false;
  const std::string z(s);
  unsigned char buf[16];
  return inet_pton(AF_INET, z.c_str(), buf) == 1 || inet_pton(AF_INET6, z.c_str(), buf) == 1;
}

// ISO-8601 UTC via gmtime_r; only for instants in years 1970..9999.
std::string isoUtc(std::int64_t ms, bool with_millis) {
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  if (with_millis) {
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms % 1000));
  } else {
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  }
  return buf;
}

// "YYYY-MM-DDTHH:MM:SSZ" or "YYYY-MM-DDTHH:MM:SS.mmmZ" → seconds since the epoch (timegm);
// nullopt when the shape is wrong. *millis tells whether the fraction was there.
std::optional<std::int64_t> parseIso(std::string_view s, bool* millis) {
  const bool frac = s.size() == 24;
  if (s.size() != 20 && !frac) return std::nullopt;
  const std::string_view shape = frac ? std::string_view("dddd-dd-ddTdd:dd:dd.dddZ")
                                      : std::string_view("dddd-dd-ddTdd:dd:ddZ");
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i]) return std::nullopt;
  }
  const auto num = [&](std::size_t at, std::size_t n) {
    int v = 0;
    for (std::size_t i = at; i < at + n; ++i) v = v * 10 + (s[i] - '0');
    return v;
  };
  std::tm tm{};
  tm.tm_year = num(0, 4) - 1900;
  tm.tm_mon = num(5, 2) - 1;
  tm.tm_mday = num(8, 2);
  tm.tm_hour = num(11, 2);
  tm.tm_min = num(14, 2);
  tm.tm_sec = num(17, 2);
  if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
      tm.tm_sec > 59) {
    return std::nullopt;
  }
  std::tm check = tm;
  const std::time_t t = timegm(&check);
  // timegm normalises 2023-02-30 to March: reject dates that do not exist.
  if (check.tm_mday != tm.tm_mday || check.tm_mon != tm.tm_mon) return std::nullopt;
  *millis = frac;
  return static_cast<std::int64_t>(t);
}

// No white space outside strings (SPEC: compact, no insignificant whitespace).
bool isCompact(std::string_view json) {
  bool in_string = false;
  for (std::size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      return false;
    }
  }
  return true;
}

// ---- the oracle: SPEC's rules on an independent SAX reading of the input -----------------------

struct Member {
  enum class Kind { kAbsent, kNull, kBool, kNumber, kString, kObject, kArray };
  Kind kind = Kind::kAbsent;
  std::string text;  // strings: decoded bytes; numbers: their text
};

// Keeps the last occurrence of each top-level member the output needs.
class OracleHandler : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, OracleHandler> {
 public:
  Member::Kind root = Member::Kind::kAbsent;
  std::array<Member, 7> fields;  // user_id, device_id, device_type, app_version, locale, ip, ts

  static int fieldIndex(std::string_view k) {
    static constexpr std::array<std::string_view, 7> kNames = {
        "user_id", "device_id", "device_type", "app_version", "locale", "ip", "timestamp"};
    for (std::size_t i = 0; i < kNames.size(); ++i) {
      if (k == kNames[i]) return static_cast<int>(i);
    }
    return -1;
  }

  bool Null() { return value(Member::Kind::kNull, {}); }
  bool Bool(bool) { return value(Member::Kind::kBool, {}); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
    return value(Member::Kind::kNumber, std::string_view(s, n));
  }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    return value(Member::Kind::kString, std::string_view(s, n));
  }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    if (depth_ == 1) pending_ = fieldIndex(std::string_view(s, n));
    return true;
  }
  bool StartObject() {
    value(Member::Kind::kObject, {});
    ++depth_;
    return true;
  }
  bool EndObject(rapidjson::SizeType) {
    --depth_;
    return true;
  }
  bool StartArray() {
    value(Member::Kind::kArray, {});
    ++depth_;
    return true;
  }
  bool EndArray(rapidjson::SizeType) {
    --depth_;
    return true;
  }
  // Never called with kParseNumbersAsStringsFlag.
  bool Int(int) { return false; }
  bool Uint(unsigned) { return false; }
  bool Int64(std::int64_t) { return false; }
  bool Uint64(std::uint64_t) { return false; }
  bool Double(double) { return false; }

 private:
  bool value(Member::Kind kind, std::string_view text) {
    if (depth_ == 0) {
      root = kind;
    } else if (depth_ == 1 && pending_ >= 0) {
      fields[static_cast<std::size_t>(pending_)] = Member{kind, std::string(text)};
      pending_ = -1;
    }
    return true;
  }
  int depth_ = 0;
  int pending_ = -1;
};

struct Expected {
  // Either a dead letter...
  std::optional<DlqReason> reason;
  // ... or these output values (nullopt = JSON null).
  std::string user_id;
  std::optional<std::string> device_id, device_type, app_version, locale, ip;
  std::int64_t timestamp = 0;
  std::string login_time;
  std::vector<std::string> warnings;
};

bool present(const Member& m) {
  return m.kind != Member::Kind::kAbsent && m.kind != Member::Kind::kNull;
}

// The instant of a valid timestamp (ms) and whether it was given in ms; nullopt if invalid.
std::optional<std::pair<std::int64_t, bool>> timestampOf(const Member& m, std::int64_t now) {
  std::string_view digits;
  if (m.kind == Member::Kind::kString) {
    digits = m.text;
  } else if (m.kind == Member::Kind::kNumber) {
    digits = m.text;  // a JSON number: only digits when it is a non-negative integer
  } else {
    return std::nullopt;
  }
  if (!isDigits(digits)) return std::nullopt;
  while (digits.size() > 1 && digits.front() == '0') digits.remove_prefix(1);
  if (digits.size() > 19) return std::nullopt;  // ≥ 10^19 > INT64_MAX ≥ now + 24 h
  std::uint64_t v = 0;                          // < 10^19 < 2^64
  for (const char c : digits) v = v * 10 + static_cast<std::uint64_t>(c - '0');
  if (v > static_cast<std::uint64_t>(kI64Max)) return std::nullopt;
  const bool millis = v >= 1'000'000'000'000;
  const auto ms = static_cast<std::int64_t>(millis ? v : v * 1000);
  const std::int64_t upper = now > kI64Max - kDayMs ? kI64Max : now + kDayMs;
  if (ms < kMinTimestampMs || ms > upper) return std::nullopt;
  return std::pair{ms, millis};
}

Expected oracle(const OracleHandler& h, std::int64_t now) {
  Expected e;
  if (h.root != Member::Kind::kObject) {
    e.reason = DlqReason::kNotAnObject;
    return e;
  }
  const Member& uid = h.fields[0];
  if (!present(uid)) {
    e.reason = DlqReason::kMissingUserId;
    return e;
  }
  if (uid.kind != Member::Kind::kString || uid.text.empty() || uid.text.size() > 128) {
    e.reason = DlqReason::kInvalidUserId;
    return e;
  }
  const Member& ts = h.fields[6];
  if (!present(ts)) {
    e.reason = DlqReason::kMissingTimestamp;
    return e;
  }
  const auto instant = timestampOf(ts, now);
  if (!instant) {
    e.reason = DlqReason::kInvalidTimestamp;
    return e;
  }
  e.user_id = uid.text;
  e.timestamp = instant->first / 1000;
  e.login_time = isoUtc(instant->first, instant->second);

  if (const Member& m = h.fields[1]; m.kind == Member::Kind::kString) {
    e.device_id = m.text;
  } else if (present(m)) {
    e.warnings.emplace_back("invalid_device_id");
  }
  if (const Member& m = h.fields[2]; m.kind == Member::Kind::kString) {
    std::string t = trim(m.text);
    for (char& c : t) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    if (!t.empty()) e.device_type = t;
  } else if (present(m)) {
    e.warnings.emplace_back("invalid_device_type");
  }
  if (const Member& m = h.fields[3]; m.kind == Member::Kind::kString && isAppVersion(m.text)) {
    e.app_version = m.text;
  } else if (present(m)) {
    e.warnings.emplace_back("invalid_app_version");
  }
  if (const Member& m = h.fields[4]; present(m)) {
    bool ok = m.kind == Member::Kind::kString;
    std::string t = ok ? trim(m.text) : std::string();
    for (char& c : t) {
      if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
      if (c < 'A' || c > 'Z') ok = false;
    }
    if (ok && t.size() >= 2 && t.size() <= 3) {
      e.locale = t;
    } else {
      e.warnings.emplace_back("invalid_locale");
    }
  }
  if (const Member& m = h.fields[5]; m.kind == Member::Kind::kString && isIp(m.text)) {
    e.ip = m.text;
  } else if (present(m)) {
    e.warnings.emplace_back("invalid_ip");
  }
  return e;
}

// nullopt when RapidJSON's own reading of the input fails (then SPEC's rules cannot be applied
// independently: the transform's extra JSON strictness and leniency is checked by unit tests).
std::optional<OracleHandler> readInput(std::string_view value) {
  OracleHandler h;
  rapidjson::MemoryStream ms(value.data(), value.size());
  rapidjson::Reader reader;
  constexpr unsigned kFlags = rapidjson::kParseIterativeFlag |
                              rapidjson::kParseValidateEncodingFlag |
                              rapidjson::kParseNumbersAsStringsFlag;
  if (reader.Parse<kFlags>(ms, h).IsError()) return std::nullopt;
  return h;
}

// ---- checks ----------------------------------------------------------------------------------

std::optional<std::string> nullableString(const rapidjson::Value& v, std::string_view field) {
  if (v.IsNull()) return std::nullopt;
  FUZZ_CHECK(v.IsString(), field);
  const std::string s(v.GetString(), v.GetStringLength());
  FUZZ_CHECK(isStrictUtf8(s), field);
  return s;
}

void checkOutput(const Result& r, std::string_view input, std::int64_t now) {
  FUZZ_CHECK(input.size() <= kMaxValueBytes && !input.empty());
  const std::string_view out = r.value;
  FUZZ_CHECK(isStrictUtf8(out), "output value is not UTF-8");
  FUZZ_CHECK(isCompact(out), "output value has white space outside strings");

  rapidjson::Document d;
  d.Parse<rapidjson::kParseValidateEncodingFlag>(out.data(), out.size());
  FUZZ_CHECK(!d.HasParseError(), rapidjson::GetParseError_En(d.GetParseError()));
  FUZZ_CHECK(d.IsObject());
  FUZZ_CHECK(d.MemberCount() == kOutputFields.size());
  // (Indexing, not iterator comparison: RapidJSON's iterators trip C++20's reversed operators.)
  for (std::size_t i = 0; i < kOutputFields.size(); ++i) {
    const rapidjson::Value& key = (d.MemberBegin() + static_cast<rapidjson::SizeType>(i))->name;
    const std::string_view name(key.GetString(), key.GetStringLength());
    FUZZ_CHECK(name == kOutputFields[i], name);
  }
  const auto field = [&](std::size_t idx) -> const rapidjson::Value& {
    return (d.MemberBegin() + static_cast<rapidjson::SizeType>(idx))->value;
  };

  // user_id and the key
  const rapidjson::Value& uid = field(0);
  FUZZ_CHECK(uid.IsString());
  const std::string user_id(uid.GetString(), uid.GetStringLength());
  FUZZ_CHECK(!user_id.empty() && user_id.size() <= 128, user_id);
  FUZZ_CHECK(isStrictUtf8(user_id), user_id);
  FUZZ_CHECK(r.key == user_id, "output key != user_id");

  const auto device_id = nullableString(field(1), "device_id");
  const auto device_type = nullableString(field(2), "device_type");
  const auto app_version = nullableString(field(3), "app_version");
  const auto locale = nullableString(field(4), "locale");
  const auto ip = nullableString(field(5), "ip");

  if (device_type) {
    FUZZ_CHECK(!device_type->empty());
    FUZZ_CHECK(trim(*device_type) == *device_type, *device_type);
    for (const char c : *device_type) FUZZ_CHECK(!(c >= 'A' && c <= 'Z'), *device_type);
  }
  FUZZ_CHECK(r.has_device_type == device_type.has_value());
  if (device_type) FUZZ_CHECK(r.device_type == *device_type);
  if (app_version) FUZZ_CHECK(isAppVersion(*app_version), *app_version);
  if (locale) {
    FUZZ_CHECK(locale->size() == 2 || locale->size() == 3, *locale);
    for (const char c : *locale) FUZZ_CHECK(c >= 'A' && c <= 'Z', *locale);
  }
  FUZZ_CHECK(r.has_locale == locale.has_value());
  if (locale) FUZZ_CHECK(r.locale == *locale);
  if (ip) FUZZ_CHECK(isIp(*ip), *ip);

  // timestamp, login_time
  const rapidjson::Value& ts = field(6);
  FUZZ_CHECK(ts.IsInt64(), "timestamp is not an integer");
  const std::int64_t t = ts.GetInt64();
  FUZZ_CHECK(t >= kMinTimestampMs / 1000, "timestamp before 2000");
  const std::int64_t upper_ms = now > kI64Max - kDayMs ? kI64Max : now + kDayMs;
  FUZZ_CHECK(t <= upper_ms / 1000, "timestamp after now + 24 h");
  const rapidjson::Value& lt = field(7);
  FUZZ_CHECK(lt.IsString());
  const std::string_view login_time(lt.GetString(), lt.GetStringLength());
  if (t * 1000 <= kYear9999EndMs) {
    bool millis = false;
    const auto parsed = parseIso(login_time, &millis);
    FUZZ_CHECK(parsed.has_value(), login_time);
    FUZZ_CHECK(*parsed == t, "login_time does not match timestamp");
  }

  // processed_at
  const rapidjson::Value& pa = field(8);
  FUZZ_CHECK(pa.IsString());
  if (now >= 0 && now <= kYear9999EndMs) {
    const std::string_view processed_at(pa.GetString(), pa.GetStringLength());
    FUZZ_CHECK(processed_at == isoUtc(now, true), processed_at);
  }

  // warnings: known names, field order, each for a null field, matching Result::warnings
  const rapidjson::Value& w = field(9);
  FUZZ_CHECK(w.IsArray());
  std::uint32_t bits = 0;
  int last = -1;
  std::vector<std::string> warnings;
  for (const rapidjson::Value& name : w.GetArray()) {
    FUZZ_CHECK(name.IsString());
    const std::string_view n(name.GetString(), name.GetStringLength());
    int idx = -1;
    for (std::size_t k = 0; k < kWarningNames.size(); ++k) {
      if (n == kWarningNames[k]) idx = static_cast<int>(k);
    }
    FUZZ_CHECK(idx >= 0, n);
    FUZZ_CHECK(idx > last, "warnings out of order or repeated");
    last = idx;
    bits |= 1U << static_cast<unsigned>(idx);
    FUZZ_CHECK(field(kWarningField[static_cast<std::size_t>(idx)]).IsNull(),
               "a warning for a field that is not null");
    warnings.emplace_back(n);
  }
  FUZZ_CHECK(r.warnings == bits, "Result::warnings disagrees with the output");

  // The oracle, when RapidJSON can read the input on its own.
  if (const auto h = readInput(input)) {
    const Expected e = oracle(*h, now);
    if (e.reason) {
      fail("output for an input SPEC makes a dead letter",
           kReasonNames[static_cast<std::size_t>(*e.reason)]);
    }
    FUZZ_CHECK(user_id == e.user_id, "oracle: user_id");
    FUZZ_CHECK(device_id == e.device_id, "oracle: device_id");
    FUZZ_CHECK(device_type == e.device_type, "oracle: device_type");
    FUZZ_CHECK(app_version == e.app_version, "oracle: app_version");
    FUZZ_CHECK(locale == e.locale, "oracle: locale");
    FUZZ_CHECK(ip == e.ip, "oracle: ip");
    FUZZ_CHECK(t == e.timestamp, "oracle: timestamp");
    if (t * 1000 <= kYear9999EndMs) FUZZ_CHECK(login_time == e.login_time, e.login_time);
    FUZZ_CHECK(warnings == e.warnings, "oracle: warnings");
  }
}

void checkDeadLetter(const Result& r, std::string_view input, bool input_null, std::int64_t now) {
  const auto reason = static_cast<std::size_t>(r.reason);
  FUZZ_CHECK(reason < kReasonNames.size(), "unknown reason");
  FUZZ_CHECK(loginflow::dlqReasonName(r.reason) == kReasonNames[reason]);
  FUZZ_CHECK(!r.detail.empty(), "empty detail");
  FUZZ_CHECK(isStrictUtf8(r.detail), "detail is not UTF-8 (it becomes a header value)");
  if (input_null) {
    FUZZ_CHECK(r.reason == DlqReason::kInvalidJson, "a null value must be invalid_json");
    FUZZ_CHECK(r.dlq_value_null);
    FUZZ_CHECK(r.dlq_value.empty());
    return;
  }
  FUZZ_CHECK(!r.dlq_value_null);
  FUZZ_CHECK(r.original_size == input.size());
  const bool too_large = input.size() > kMaxValueBytes;
  FUZZ_CHECK(too_large == (r.reason == DlqReason::kTooLarge), "too_large iff > 1,000,000 bytes");
  if (too_large) {
    FUZZ_CHECK(r.dlq_value == input.substr(0, kKeepBytes), "too_large keeps the first 1,024 bytes");
    return;
  }
  FUZZ_CHECK(r.dlq_value == input, "dead-letter value != input");
  if (input.empty()) FUZZ_CHECK(r.reason == DlqReason::kInvalidJson);

  // The oracle: when RapidJSON reads the input, SPEC's precedence names the reason. (When the
  // transform calls it invalid_json but RapidJSON reads it, the transform is the stricter one
  // — BOM, NUL, lone low surrogate, number range — which the unit tests pin down.)
  if (r.reason == DlqReason::kInvalidJson) return;
  if (const auto h = readInput(input)) {
    const Expected e = oracle(*h, now);
    if (!e.reason) fail("dead letter for an input SPEC makes an output", kReasonNames[reason]);
    FUZZ_CHECK(*e.reason == r.reason, kReasonNames[static_cast<std::size_t>(*e.reason)]);
  }
}

// ---- the copy of a Result used to compare two runs ---------------------------------------------

struct Snapshot {
  Result::Kind kind{};
  std::string key, value, detail, dlq_value, device_type, locale;
  DlqReason reason{};
  bool dlq_value_null = false, has_device_type = false, has_locale = false;
  std::size_t original_size = 0;
  std::uint32_t warnings = 0;

  explicit Snapshot(const Result& r)
      : kind(r.kind),
        key(r.key),
        value(r.value),
        detail(r.detail),
        dlq_value(r.dlq_value),
        device_type(r.device_type),
        locale(r.locale),
        reason(r.reason),
        dlq_value_null(r.dlq_value_null),
        has_device_type(r.has_device_type),
        has_locale(r.has_locale),
        original_size(r.original_size),
        warnings(r.warnings) {}

  bool operator==(const Snapshot&) const = default;
};

// Records run between the two applications of the fuzzed one, to shake out state carried from
// one record to the next (buffer contents, handler fields, grown buffers).
const std::array<std::string, 3>& interleaved() {
  static const std::array<std::string, 3> kRecords = {
      std::string(R"({"user_id":"u1","timestamp":"1694479551000","device_type":" IOS ",)"
                  R"("locale":"ca","ip":"::1","app_version":"1","device_id":"d"})"),
      std::string(R"({"user_id":"u2","timestamp":1.5,"device_type":"android"})"),
      R"({"user_id":")" + std::string(128, 'x') + R"(","device_id":")" + std::string(5000, 'y') +
          R"(","timestamp":1694479551,"locale":[1,2,{"a":[]}],"ip":"1.2.3.4"})",
  };
  return kRecords;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Transformer transformer;
  // Spaces: padding a value up to the size limit keeps it valid JSON.
  static std::vector<char> big(kMaxValueBytes + 1, ' ');

  const char* bytes = reinterpret_cast<const char*>(data);
  std::size_t n = size;
  unsigned mode = 0;
  std::int64_t now = kDefaultNow;
  InputRecord in;
  if (n >= 4 && data[0] == 0xFF) {
    mode = data[1] % 4U;
    now = kClocks[data[2] % kClocks.size()];
    const std::size_t key_len = data[3] % 17U;
    bytes += 4;
    n -= 4;
    if (key_len < 16) {
      const std::size_t k = key_len < n ? key_len : n;
      in.key = bytes;
      in.key_len = k;
      bytes += k;
      n -= k;
    }
  }

  std::size_t padded_to = 0;
  in.value = bytes;
  in.value_len = n;
  if (mode == 1) {
    in.value = nullptr;
    in.value_len = 0;
  } else if (mode >= 2) {
    const std::size_t target = mode == 2 ? kMaxValueBytes + 1 : kMaxValueBytes;
    if (n < target) {
      std::memcpy(big.data(), bytes, n);
      padded_to = n;
      in.value = big.data();
      in.value_len = target;
    }
  }
  const bool value_null = in.value == nullptr;
  const std::string_view value =
      value_null ? std::string_view() : std::string_view(in.value, in.value_len);

  g_ctx = Context{value, value_null, now, nullptr};
  const Result& r = transformer.apply(in, now);
  g_ctx.result = &r;
  FUZZ_CHECK(r.kind == Result::Kind::kOutput || r.kind == Result::Kind::kDeadLetter);
  if (r.kind == Result::Kind::kOutput) {
    FUZZ_CHECK(!value_null);
    checkOutput(r, value, now);
  } else {
    checkDeadLetter(r, value, value_null, now);
  }
  const Snapshot first(r);
  g_ctx.result = nullptr;

  // Another record in between, then the same one again: the same Result, byte for byte.
  const auto& others = interleaved();
  const std::string& other = others[(size + (size > 0 ? data[size - 1] : 0U)) % others.size()];
  InputRecord between;
  between.value = other.data();
  between.value_len = other.size();
  (void)transformer.apply(between, now);
  const Result& again = transformer.apply(in, now);
  g_ctx.result = &again;
  if (!(Snapshot(again) == first)) {
    fail("not deterministic: the same record gave a different result the second time",
         first.kind == Result::Kind::kOutput ? first.value : first.detail);
  }
  g_ctx.result = nullptr;

  if (padded_to != 0) std::memset(big.data(), ' ', padded_to);
  return 0;
}
