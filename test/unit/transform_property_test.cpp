// Property test of the transform: ~200,000 generated near-valid login events.
//
// A structure-aware generator builds each event from members whose meaning it knows (decoded
// string bytes, number text, type), encodes them as JSON with random escaping, white space,
// member order, duplicates, nulls, unknown and nested members, huge strings and Unicode, and
// sometimes corrupts the result (truncation, trailing garbage, NUL, BOM, invalid UTF-8, lone
// surrogates, out-of-range numbers, non-object roots, oversize). For every case it checks
//   1. SPEC invariants on whatever came out: an output whose value is compact JSON with exactly
//      the ten fields in order, each obeying its rule, warnings consistent with nulls and with
//      the Result's counter facts; or a dead letter with a known reason whose value is the
//      input (first 1,024 bytes for too_large);
//   2. agreement with an independent, deliberately simple oracle (std::regex, string
//      arithmetic on digits, gmtime) computed from what the generator meant, not from the
//      bytes: the reason, and every output field.
// The seed is fixed (override with LOGINFLOW_PROPERTY_SEED, case count with
// LOGINFLOW_PROPERTY_CASES) and printed with every failure so it can be replayed.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "loginflow/transform.h"

namespace loginflow {
namespace {

constexpr std::int64_t kNow = 1'764'064'800'123;  // 2025-11-25T10:00:00.123Z
constexpr std::int64_t kBoundMs = kNow + 86'400'000;

// ---- what the generator means ------------------------------------------------------------

struct Value {
  enum class Kind { kNull, kString, kInteger, kNonInteger, kBool, kObject, kArray };
  Kind kind = Kind::kNull;
  std::string meaning;  // kString: decoded bytes; numbers: their text
  std::string json;     // the JSON text
};

struct Member {
  std::string name;  // decoded
  std::string name_json;
  Value value;
};

struct Case {
  std::vector<Member> members;
  std::string input;
  enum class Corruption {
    kNone,
    kInvalidJson,  // any corruption that must make the value invalid_json
    kNotAnObject,
    kTooLarge,
  } corruption = Corruption::kNone;
};

class Gen {
 public:
  explicit Gen(std::uint64_t seed) : rng_(seed) {}

  std::uint64_t below(std::uint64_t n) { return rng_() % n; }
  bool chance(unsigned percent) { return below(1000) < percent * 10; }
  bool permille(unsigned p) { return below(1000) < p; }
  template <typename T>
  const T& pick(const std::vector<T>& v) { return v[below(v.size())]; }

  std::string ws() {
    if (!chance(20)) return "";
    static const std::vector<std::string> kWs = {" ", "  ", "\n", "\t", "\r\n", " \t "};
    return pick(kWs);
  }

  // ---- strings: decoded bytes → JSON text with random escaping ----
  // One character of a random string, as UTF-8.
  std::string randomChar() {
    static const std::vector<std::string> kChars = {
        "a", "Z", "0", "9", " ", "-", ".", ":", "/", "\"", "\\", "\x01", "\n", "\t", "\r",
        "\x1f", "\x7f", "\xC3\xA9", "\xE4\xB8\xAD", "\xF0\x9F\x98\x80", "\xE2\x80\xA8",
        "\xEF\xBB\xBF", "\f", "\b", "\v", std::string(1, '\0')};
    if (chance(60)) return std::string(1, static_cast<char>('a' + below(26)));
    return pick(kChars);
  }

  std::string randomText(std::size_t max_len) {
    std::string s;
    const std::size_t n = below(max_len + 1);
    for (std::size_t i = 0; i < n; ++i) s += randomChar();
    return s;
  }

  static std::string hex4(unsigned v) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string s = "\\u";
    for (int shift = 12; shift >= 0; shift -= 4) s += kHex[(v >> shift) & 0xF];
    return s;
  }

  // Encodes decoded UTF-8 bytes (assumed valid) as a JSON string literal.
  std::string encode(const std::string& s) {
    std::string out = "\"";
    std::size_t i = 0;
    while (i < s.size()) {
      const auto c = static_cast<unsigned char>(s[i]);
      std::size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
      const std::string ch = s.substr(i, len);
      i += len;
      unsigned cp = c;
      if (len == 2) cp = ((c & 0x1Fu) << 6) | (static_cast<unsigned char>(ch[1]) & 0x3Fu);
      if (len == 3)
        cp = ((c & 0x0Fu) << 12) | ((static_cast<unsigned char>(ch[1]) & 0x3Fu) << 6) |
             (static_cast<unsigned char>(ch[2]) & 0x3Fu);
      if (len == 4)
        cp = ((c & 0x07u) << 18) | ((static_cast<unsigned char>(ch[1]) & 0x3Fu) << 12) |
             ((static_cast<unsigned char>(ch[2]) & 0x3Fu) << 6) |
             (static_cast<unsigned char>(ch[3]) & 0x3Fu);
      const bool must_escape = cp < 0x20 || cp == '"' || cp == '\\';
      const bool escape = must_escape || chance(10);
      if (!escape) {
        out += ch;
      } else if (cp == '"') {
        out += "\\\"";
      } else if (cp == '\\') {
        out += chance(50) ? "\\\\" : "\\u005c";
      } else if (cp == '\n' && chance(70)) {
        out += "\\n";
      } else if (cp == '\t' && chance(70)) {
        out += "\\t";
      } else if (cp == '/' && chance(50)) {
        out += "\\/";
      } else if (cp >= 0x10000) {
        const unsigned v = cp - 0x10000;
        out += hex4(0xD800 + (v >> 10)) + hex4(0xDC00 + (v & 0x3FF));
      } else {
        std::string h = hex4(cp);
        if (chance(30)) std::transform(h.begin() + 2, h.end(), h.begin() + 2, ::toupper);
        out += h;
      }
    }
    return out + "\"";
  }

  Value string(const std::string& decoded) {
    return Value{Value::Kind::kString, decoded, encode(decoded)};
  }
  static Value integer(const std::string& text) {
    return Value{Value::Kind::kInteger, text, text};
  }
  static Value nonInteger(const std::string& text) {
    return Value{Value::Kind::kNonInteger, text, text};
  }

  // A random value of any type, nested up to `depth`.
  Value any(int depth) {
    switch (below(depth > 0 ? 8 : 6)) {
      case 0: return Value{Value::Kind::kNull, "", "null"};
      case 1: return chance(50) ? Value{Value::Kind::kBool, "", "true"}
                                : Value{Value::Kind::kBool, "", "false"};
      case 2: return integer(std::to_string(static_cast<std::int64_t>(rng_() >> below(64))) );
      case 3: {
        static const std::vector<std::string> kDoubles = {"1.5",   "-0.0",   "1e10", "2E-3",
                                                          "1e308", "0e999",  "1e-400",
                                                          "-12.5e+2", "4.9e-324"};
        return nonInteger(pick(kDoubles));
      }
      case 4:
      case 5: return string(randomText(12));
      case 6: {
        std::string j = "[" + ws();
        const std::size_t n = below(4);
        for (std::size_t i = 0; i < n; ++i) {
          if (i != 0) j += "," + ws();
          j += any(depth - 1).json + ws();
        }
        return Value{Value::Kind::kArray, "", j + "]"};
      }
      default: {
        std::string j = "{" + ws();
        const std::size_t n = below(4);
        for (std::size_t i = 0; i < n; ++i) {
          if (i != 0) j += "," + ws();
          // Nested members may reuse the known names: they must be ignored.
          static const std::vector<std::string> kNames = {"user_id", "timestamp", "locale",
                                                          "a", "ip"};
          j += encode(pick(kNames)) + ws() + ":" + ws() + any(depth - 1).json;
        }
        return Value{Value::Kind::kObject, "", j + ws() + "}"};
      }
    }
  }

  // ---- per-field generators: mostly realistic, often wrong ----
  std::string uuid() {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string s;
    for (int i = 0; i < 36; ++i) s += (i == 8 || i == 13 || i == 18 || i == 23) ? '-' : kHex[below(16)];
    return s;
  }

  Value userId() {
    if (chance(85)) return string(uuid());
    switch (below(9)) {
      case 0: return string("");
      case 1: return string(std::string(128, 'u'));
      case 2: return string(std::string(129, 'u'));
      case 3: return string(std::string(42, ' ') + "x");
      case 4: {
        std::string s;
        const std::size_t n = 60 + below(8);  // 2-byte chars: around the 128-byte limit
        for (std::size_t i = 0; i < n; ++i) s += "\xC3\xA9";
        return string(s);
      }
      case 5: return string(randomText(20) + "x");
      default: return any(2);
    }
  }

  Value timestamp() {
    const std::int64_t secs = 946'684'800 + static_cast<std::int64_t>(below(818'000'000));
    switch (below(48)) {
      case 0: return integer("946684800");
      case 1: return integer("946684799");
      case 2: return integer(std::to_string(kBoundMs / 1000));
      case 3: return integer(std::to_string(kBoundMs / 1000 + 1));
      case 4: return integer(std::to_string(kBoundMs));
      case 5: return integer(std::to_string(kBoundMs + 1));
      case 6: return integer("999999999999");
      case 7: return integer("1000000000000");
      case 8: return string(std::string(below(30), '0') + std::to_string(secs));
      case 9: return string(std::to_string(secs * 1000 + static_cast<std::int64_t>(below(1000))));
      case 10: return nonInteger(std::to_string(secs) + ".0");
      case 11: return nonInteger("1.6e9");
      case 12: return integer("-" + std::to_string(secs));
      case 13: return integer(std::string(1 + below(9), '9') + std::to_string(rng_()));
      case 14: return string(std::string(1 + below(9), '9') + std::to_string(rng_()));
      case 15: return string(" " + std::to_string(secs));
      case 16: return string(std::to_string(secs) + "x");
      case 17: return string("");
      case 18: return any(1);
      case 19: return integer(std::to_string(secs * 1000 + static_cast<std::int64_t>(below(1000))));
      default: return chance(70) ? integer(std::to_string(secs)) : string(std::to_string(secs));
    }
  }

  Value deviceType() {
    static const std::vector<std::string> kTypes = {
        "android", "iOS", "ios", "ANDROID", " ios ", "\tAndroid\n", "", "   ", "Web", "\xC3\x89X"};
    if (chance(80)) return string(pick(kTypes));
    if (chance(50)) return string(randomText(10));
    return any(1);
  }

  Value locale() {
    static const std::vector<std::string> kGood = {"RU", "US", "TX", "ca", " ny ", "deu"};
    if (chance(60)) return string(pick(kGood));
    static const std::vector<std::string> kLocales = {
        "RU", "US", "TX", "ca", " ny ", "deu", "E", "ENGL", "R1", "", "en-US", "\xC3\x89S",
        "\vFR\f", "r u"};
    if (chance(80)) return string(pick(kLocales));
    if (chance(50)) return string(randomText(4));
    return any(1);
  }

  Value ip() {
    const auto octet = [&] { return std::to_string(below(256)); };
    switch (below(28)) {
      case 0: return string("0" + std::to_string(1 + below(9)) + ".1.2.3");
      case 1: return string("fe80::1%eth0");
      case 2: return string(" 10.0.0.1");
      case 3: return string("::ffff:" + octet() + "." + octet() + "." + octet() + "." + octet());
      case 4: return string("2001:db8::" + std::to_string(below(10000)));
      case 5: return string("2001:0DB8:0000:0000:0000:0000:0000:" + std::to_string(below(10000)));
      case 6: return string(randomText(16));
      case 7: return string(octet() + "." + octet() + "." + octet());
      case 8: return any(1);
      case 9: return string(std::string(70, '0') + "::1");
      default: return string(octet() + "." + octet() + "." + octet() + "." + octet());
    }
  }

  Value appVersion() {
    if (chance(60)) return string(std::to_string(below(5)) + "." + std::to_string(below(20)));
    static const std::vector<std::string> kVersions = {
        "2", "2.3.0", "10.20.30", "007", "2.", ".2", "2..3", "v2", "2.3-beta", "2.3\n", ""};
    if (chance(85)) return string(pick(kVersions));
    if (chance(50)) return string(randomText(6));
    return any(1);
  }

  Value deviceId() {
    if (chance(70)) {
      return string(std::to_string(100 + below(900)) + "-" + std::to_string(10 + below(90)) +
                    "-" + std::to_string(1000 + below(9000)));
    }
    if (permille(5)) return string(std::string(50'000 + below(100'000), 'd') + randomText(5));
    if (chance(60)) return string(randomText(30));
    return any(2);
  }

  // The name as JSON text: usually plain, sometimes with an escaped character.
  std::string name(const std::string& n) {
    if (chance(3)) {
      std::string j = "\"";
      for (const char c : n) j += chance(30) ? hex4(static_cast<unsigned char>(c)) : std::string(1, c);
      return j + "\"";
    }
    return "\"" + n + "\"";
  }

  Member member(const std::string& n, Value v) { return Member{n, name(n), std::move(v)}; }

  Case event() {
    Case c;
    using Maker = Value (Gen::*)();
    const std::vector<std::pair<std::string, Maker>> fields = {
        {"user_id", &Gen::userId},         {"timestamp", &Gen::timestamp},
        {"device_type", &Gen::deviceType}, {"locale", &Gen::locale},
        {"ip", &Gen::ip},                  {"app_version", &Gen::appVersion},
        {"device_id", &Gen::deviceId}};
    for (const auto& [n, make] : fields) {
      const bool required = n == "user_id" || n == "timestamp";
      if (chance(required ? 2 : 8)) continue;  // missing
      if (chance(3)) c.members.push_back(member(n, Value{Value::Kind::kNull, "", "null"}));
      else c.members.push_back(member(n, (this->*make)()));
      if (chance(4)) {  // a duplicate: the later one wins
        c.members.push_back(chance(30) ? member(n, Value{Value::Kind::kNull, "", "null"})
                                       : member(n, (this->*make)()));
      }
    }
    // Unknown members, some with names that differ from known ones only in case.
    static const std::vector<std::string> kUnknown = {"extra", "User_id", "TIMESTAMP", "meta",
                                                      "user_id ", "", "ts"};
    const std::size_t unknown = below(4);
    for (std::size_t i = 0; i < unknown; ++i) {
      Value v = any(3);
      if (permille(3)) {  // deep nesting in an ignored member
        const std::size_t depth = 1000 + below(5000);
        v = Value{Value::Kind::kArray, "", std::string(depth, '[') + std::string(depth, ']')};
      }
      c.members.push_back(member(pick(kUnknown), v));
    }
    std::shuffle(c.members.begin(), c.members.end(), rng_);

    std::string j = ws() + "{" + ws();
    for (std::size_t i = 0; i < c.members.size(); ++i) {
      if (i != 0) j += "," + ws();
      j += c.members[i].name_json + ws() + ":" + ws() + c.members[i].value.json + ws();
    }
    j += "}";
    const std::size_t core_end = j.size();
    j += ws();
    c.input = j;
    corrupt(c, core_end);
    return c;
  }

  void corrupt(Case& c, std::size_t core_end) {
    if (!chance(8)) return;
    std::string& s = c.input;
    using C = Case::Corruption;
    switch (below(12)) {
      case 0: s.resize(below(core_end)); c.corruption = C::kInvalidJson; break;
      case 1: s += chance(50) ? "x" : "{}"; c.corruption = C::kInvalidJson; break;
      case 2: s.insert(below(s.size() + 1), 1, '\0'); c.corruption = C::kInvalidJson; break;
      case 3: s = "\xEF\xBB\xBF" + s; c.corruption = C::kInvalidJson; break;
      case 4: s.insert(s.rfind('}'), R"(,"bad":")" + std::string(pick(std::vector<std::string>{
                                       "\xFF", "\xC0\xAF", "\xED\xA0\x80", "\xE2\x82"})) + "\"");
              c.corruption = C::kInvalidJson; break;
      case 5: s.insert(s.rfind('}'), R"(,"bad":")" + pick(std::vector<std::string>{
                                       "\\ud800", "\\udc00", "\\ud83dx", "\\ude00\\ud83d"}) + "\"");
              c.corruption = C::kInvalidJson; break;
      case 6: s.insert(s.rfind('}'), R"(,"bad":[)" + pick(std::vector<std::string>{
                                       "1e400", "-1e309", "99e307", "2" + std::string(309, '0')}) + "]");
              c.corruption = C::kInvalidJson; break;
      case 7: s = "[" + s + "]"; c.corruption = C::kNotAnObject; break;
      case 8: s = pick(std::vector<std::string>{"null", "42", "\"{}\"", "true", "[]"});
              c.corruption = C::kNotAnObject; break;
      case 9:
        if (permille(30)) {
          s.insert(s.rfind('}'), R"(,"pad":")" + std::string(1'000'001, 'p') + "\"");
          c.corruption = C::kTooLarge;
        }
        break;
      case 10: s.insert(s.rfind('}'), ",}"); c.corruption = C::kInvalidJson; break;
      default: s.insert(s.rfind('}'), R"(,"nan":NaN)"); c.corruption = C::kInvalidJson; break;
    }
    if (c.input.size() > kMaxValueBytes) c.corruption = C::kTooLarge;
  }

 private:
  std::mt19937_64 rng_;
};

// ---- the oracle: SPEC rules, written as plainly as possible --------------------------------

struct Expected {
  std::optional<DlqReason> reason;  // empty for an output
  std::string user_id;
  std::optional<std::string> device_id, device_type, app_version, locale, ip;
  std::int64_t timestamp = 0;
  std::string login_time;
  std::vector<std::string> warnings;
};

std::string trimmed(const std::string& s) {
  const char* kWs = " \t\n\r\f\v";
  const auto b = s.find_first_not_of(kWs);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(kWs) - b + 1);
}

// Compares non-negative decimal digit strings without leading zeros.
int compareDigits(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  return a.compare(b) < 0 ? -1 : a.compare(b) > 0 ? 1 : 0;
}

std::string utc(std::int64_t secs, std::optional<int> millis) {
  const auto t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string s = buf;
  if (millis) {
    char frac[8];
    std::snprintf(frac, sizeof frac, ".%03d", *millis);
    s += frac;
  }
  return s + "Z";
}

Expected oracle(const Case& c) {
  Expected e;
  using C = Case::Corruption;
  if (c.corruption == C::kTooLarge) { e.reason = DlqReason::kTooLarge; return e; }
  if (c.corruption == C::kInvalidJson) { e.reason = DlqReason::kInvalidJson; return e; }
  if (c.corruption == C::kNotAnObject) { e.reason = DlqReason::kNotAnObject; return e; }

  const auto last = [&](const std::string& n) -> std::optional<Value> {
    std::optional<Value> v;
    for (const Member& m : c.members) {
      if (m.name == n) v = m.value;
    }
    if (v && v->kind == Value::Kind::kNull) v.reset();  // null counts as missing
    return v;
  };
  using K = Value::Kind;

  const auto uid = last("user_id");
  if (!uid) { e.reason = DlqReason::kMissingUserId; return e; }
  if (uid->kind != K::kString || uid->meaning.empty() || uid->meaning.size() > 128) {
    e.reason = DlqReason::kInvalidUserId;
    return e;
  }
  e.user_id = uid->meaning;

  const auto ts = last("timestamp");
  if (!ts) { e.reason = DlqReason::kMissingTimestamp; return e; }
  std::string digits;
  bool ok = false;
  if (ts->kind == K::kInteger && ts->meaning[0] != '-') {
    digits = ts->meaning;
    ok = true;
  } else if (ts->kind == K::kString && !ts->meaning.empty() &&
             ts->meaning.find_first_not_of("0123456789") == std::string::npos) {
    digits = ts->meaning;
    ok = true;
  }
  if (ok) {
    digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size()));
    if (digits.empty()) digits = "0";
    const bool millis = digits.size() >= 13;
    if (millis) {
      ok = compareDigits(digits, std::to_string(kBoundMs)) <= 0;
    } else {
      ok = compareDigits(digits, "946684800") >= 0 &&
           compareDigits(digits, std::to_string(kBoundMs / 1000)) <= 0;
    }
    if (ok) {
      const std::int64_t v = std::stoll(digits);
      e.timestamp = millis ? v / 1000 : v;
      e.login_time = utc(e.timestamp, millis ? std::optional<int>(static_cast<int>(v % 1000))
                                             : std::nullopt);
    }
  }
  if (!ok) { e.reason = DlqReason::kInvalidTimestamp; return e; }

  if (const auto v = last("device_id")) {
    if (v->kind == K::kString) e.device_id = v->meaning;
    else e.warnings.push_back("invalid_device_id");
  }
  if (const auto v = last("device_type")) {
    if (v->kind == K::kString) {
      std::string t = trimmed(v->meaning);
      for (char& ch : t) {
        if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch + 32);
      }
      if (!t.empty()) e.device_type = t;
    } else {
      e.warnings.push_back("invalid_device_type");
    }
  }
  if (const auto v = last("app_version")) {
    static const std::regex kVersion(R"(^[0-9]+(\.[0-9]+)*$)");
    if (v->kind == K::kString && v->meaning.size() < 1000 && std::regex_match(v->meaning, kVersion)) {
      e.app_version = v->meaning;
    } else {
      e.warnings.push_back("invalid_app_version");
    }
  }
  if (const auto v = last("locale")) {
    static const std::regex kLocale("^[A-Za-z]{2,3}$");
    const std::string t = v->kind == K::kString ? trimmed(v->meaning) : "";
    if (v->kind == K::kString && std::regex_match(t, kLocale)) {
      std::string u = t;
      for (char& ch : u) {
        if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 32);
      }
      e.locale = u;
    } else {
      e.warnings.push_back("invalid_locale");
    }
  }
  if (const auto v = last("ip")) {
    unsigned char buf[16];
    const bool valid = v->kind == K::kString && v->meaning.find('\0') == std::string::npos &&
                       (inet_pton(AF_INET, v->meaning.c_str(), buf) == 1 ||
                        inet_pton(AF_INET6, v->meaning.c_str(), buf) == 1);
    if (valid) e.ip = v->meaning;
    else e.warnings.push_back("invalid_ip");
  }
  return e;
}

// ---- invariants on the transform's result ------------------------------------------------

std::string printable(const std::string& s) {
  std::string out;
  for (const char ch : s.substr(0, 600)) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7F) {
      out += ch;
    } else {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02X", c);
      out += b;
    }
  }
  if (s.size() > 600) out += "...(" + std::to_string(s.size()) + " bytes)";
  return out;
}

// True when `json` has no white space outside strings.
bool compact(const std::string& json) {
  bool in_string = false;
  for (std::size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      return false;
    }
  }
  return true;
}

std::optional<std::string> optString(const rapidjson::Value& v) {
  if (v.IsNull()) return std::nullopt;
  return std::string(v.GetString(), v.GetStringLength());
}

// Returns an empty string when every check passes, else what failed.
std::string check(const Case& c, const Result& r) {
  static const char* const kOrder[] = {"user_id", "device_id", "device_type", "app_version",
                                       "locale", "ip", "timestamp", "login_time",
                                       "processed_at", "warnings"};
  const Expected want = oracle(c);

  if (r.kind == Result::Kind::kDeadLetter) {
    if (static_cast<std::size_t>(r.reason) >= kDlqReasonCount) return "unknown reason";
    if (r.detail.empty()) return "empty detail";
    if (r.reason == DlqReason::kTooLarge) {
      if (c.input.size() <= kMaxValueBytes) return "too_large for a small value";
      if (r.dlq_value != std::string_view(c.input).substr(0, kTooLargeKeepBytes))
        return "too_large dlq_value is not the first 1024 bytes";
      if (r.original_size != c.input.size()) return "original_size";
    } else if (r.dlq_value != c.input) {
      return "dlq_value differs from the input";
    }
    if (!want.reason) {
      return "dead letter " + std::string(dlqReasonName(r.reason)) + " (" +
             std::string(r.detail) + ") but the oracle expects an output";
    }
    if (*want.reason != r.reason) {
      return "reason " + std::string(dlqReasonName(r.reason)) + " (" + std::string(r.detail) +
             "), oracle says " + std::string(dlqReasonName(*want.reason));
    }
    return "";
  }

  // ---- an output ----
  const std::string value(r.value);
  if (want.reason) {
    return "output " + value + " but the oracle expects " +
           std::string(dlqReasonName(*want.reason));
  }
  rapidjson::Document d;
  d.Parse<rapidjson::kParseValidateEncodingFlag>(value.data(), value.size());
  if (d.HasParseError()) return std::string("output is not JSON: ") + rapidjson::GetParseError_En(d.GetParseError());
  if (!compact(value)) return "output is not compact";
  if (!d.IsObject() || d.MemberCount() != 10) return "output does not have 10 members";
  std::size_t i = 0;
  for (auto it = d.MemberBegin(); it != d.MemberEnd(); ++it, ++i) {
    if (std::string(it->name.GetString()) != kOrder[i]) return "member order";
  }
  // Types and per-field SPEC rules.
  for (const char* f : {"device_id", "device_type", "app_version", "locale", "ip"}) {
    if (!d[f].IsNull() && !d[f].IsString()) return std::string(f) + " is neither null nor a string";
  }
  if (!d["user_id"].IsString() || !d["timestamp"].IsInt64() || !d["login_time"].IsString() ||
      !d["processed_at"].IsString() || !d["warnings"].IsArray()) {
    return "field types";
  }
  const std::string uid(d["user_id"].GetString(), d["user_id"].GetStringLength());
  if (uid.empty() || uid.size() > 128 || uid != r.key) return "user_id / key";
  if (const auto dt = optString(d["device_type"])) {
    if (dt->empty() || trimmed(*dt) != *dt) return "device_type not trimmed";
    if (std::any_of(dt->begin(), dt->end(), [](char ch) { return ch >= 'A' && ch <= 'Z'; }))
      return "device_type not lower-case";
    if (!r.has_device_type || r.device_type != *dt) return "has_device_type/device_type";
  } else if (r.has_device_type) {
    return "has_device_type for a null device_type";
  }
  if (const auto loc = optString(d["locale"])) {
    if (loc->size() < 2 || loc->size() > 3 ||
        !std::all_of(loc->begin(), loc->end(), [](char ch) { return ch >= 'A' && ch <= 'Z'; }))
      return "locale not 2-3 letters A-Z";
    if (!r.has_locale || r.locale != *loc) return "has_locale/locale";
  } else if (r.has_locale) {
    return "has_locale for a null locale";
  }
  const std::int64_t ts = d["timestamp"].GetInt64();
  if (ts < 946'684'800 || ts * 1000 > kBoundMs) return "timestamp out of range";
  const std::string lt = d["login_time"].GetString();
  static const std::regex kIso(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$)");
  if (!std::regex_match(lt, kIso) || lt.substr(0, 19) != utc(ts, std::nullopt).substr(0, 19))
    return "login_time " + lt + " does not match timestamp";
  if (std::string(d["processed_at"].GetString()) != "2025-11-25T10:00:00.123Z") return "processed_at";
  // Warnings: known names, in field order, matching the bit set; a warned field is null.
  static const char* const kWarn[] = {"invalid_device_id", "invalid_device_type",
                                      "invalid_app_version", "invalid_locale", "invalid_ip"};
  static const char* const kWarnField[] = {"device_id", "device_type", "app_version", "locale",
                                           "ip"};
  std::uint32_t bits = 0;
  int prev = -1;
  std::vector<std::string> got_warnings;
  for (const auto& w : d["warnings"].GetArray()) {
    const std::string name = w.IsString() ? w.GetString() : "";
    const auto pos = std::find_if(std::begin(kWarn), std::end(kWarn),
                                  [&](const char* k) { return name == k; });
    if (pos == std::end(kWarn)) return "unknown warning " + name;
    const int idx = static_cast<int>(pos - std::begin(kWarn));
    if (idx <= prev) return "warnings out of order or repeated";
    prev = idx;
    bits |= 1U << idx;
    if (!d[kWarnField[idx]].IsNull()) return std::string("warned field not null: ") + kWarnField[idx];
    got_warnings.push_back(name);
  }
  if (bits != r.warnings) return "warnings bit set differs from the array";

  // Agreement with the oracle, field by field.
  if (uid != want.user_id) return "user_id differs from oracle";
  if (optString(d["device_id"]) != want.device_id) return "device_id differs from oracle";
  if (optString(d["device_type"]) != want.device_type) return "device_type differs from oracle";
  if (optString(d["app_version"]) != want.app_version) return "app_version differs from oracle";
  if (optString(d["locale"]) != want.locale) return "locale differs from oracle";
  if (optString(d["ip"]) != want.ip) return "ip differs from oracle";
  if (ts != want.timestamp) return "timestamp differs from oracle";
  if (lt != want.login_time) return "login_time " + lt + " differs from oracle " + want.login_time;
  if (got_warnings != want.warnings) return "warnings differ from oracle";
  return "";
}

std::uint64_t envOr(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v == nullptr ? fallback : std::strtoull(v, nullptr, 10);
}

TEST(TransformProperty, GeneratedEventsObeyTheSpecAndTheOracle) {
  const std::uint64_t seed = envOr("LOGINFLOW_PROPERTY_SEED", 0x10C1F10);
  const std::uint64_t cases = envOr("LOGINFLOW_PROPERTY_CASES", 200'000);
  Gen gen(seed);
  Transformer transformer;
  std::size_t failures = 0;
  std::size_t outputs = 0;
  std::size_t reasons[kDlqReasonCount] = {};
  std::size_t warned = 0;
  for (std::uint64_t n = 0; n < cases && failures < 10; ++n) {
    const Case c = gen.event();
    InputRecord in;
    in.value = c.input.data();
    in.value_len = c.input.size();
    const Result& r = transformer.apply(in, kNow);
    if (r.kind == Result::Kind::kOutput) {
      ++outputs;
      if (r.warnings != 0) ++warned;
    } else {
      ++reasons[static_cast<std::size_t>(r.reason) % kDlqReasonCount];
    }
    const std::string problem = check(c, r);
    if (!problem.empty()) {
      ++failures;
      ADD_FAILURE() << "case " << n << " (seed " << seed << "): " << problem
                    << "\n  input: " << printable(c.input);
    }
  }
  // The generator must reach every outcome, or the test proves little.
  EXPECT_GT(outputs, cases / 3);
  EXPECT_GT(warned, cases / 20);
  for (std::size_t i = 0; i < kDlqReasonCount; ++i) {
    EXPECT_GT(reasons[i], 0U) << dlqReasonName(static_cast<DlqReason>(i)) << " never produced";
  }
  std::printf("%llu cases: %zu outputs (%zu with warnings)", static_cast<unsigned long long>(cases),
              outputs, warned);
  for (std::size_t i = 0; i < kDlqReasonCount; ++i) {
    const std::string_view name = dlqReasonName(static_cast<DlqReason>(i));
    std::printf(", %zu %.*s", reasons[i], static_cast<int>(name.size()), name.data());
  }
  std::printf("\n");
}

}  // namespace
}  // namespace loginflow
