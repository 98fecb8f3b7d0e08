#include "loginflow/generator.h"

#include <array>
#include <cstdio>
#include <string_view>

namespace loginflow {
namespace {

constexpr std::array<std::string_view, 52> kLocales = {
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY", "LA",
    "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH", "OK",
    "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY", "RU", "DE"};
constexpr std::array<std::string_view, 6> kVersions = {"2.3.0", "2.3.1", "2.4.0", "2.2.1", "3.0", "2"};

std::string uuid(std::mt19937_64& rng) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(36, '-');
  std::uint64_t a = rng(), b = rng();
  for (int i = 0, bit = 0; i < 36; ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) continue;
    std::uint64_t& src = bit < 16 ? a : b;
    s[static_cast<std::size_t>(i)] = kHex[(src >> ((bit % 16) * 4)) & 0xF];
    ++bit;
  }
  s[14] = '4';
  return s;
}

}  // namespace

EventGenerator::EventGenerator(std::uint64_t seed, double bad_fraction, std::int64_t base_time_s,
                               std::size_t users, bool include_too_large)
    : rng_(seed), bad_fraction_(bad_fraction), base_time_s_(base_time_s), include_too_large_(include_too_large) {
  users_.reserve(users);
  for (std::size_t i = 0; i < users; ++i) users_.push_back(uuid(rng_));
}

void EventGenerator::next(GeneratedEvent& out) {
  out.key_null = false;
  out.value_null = false;
  out.bad = false;
  std::uniform_real_distribution<double> u(0.0, 1.0);
  if (bad_fraction_ > 0 && u(rng_) < bad_fraction_) {
    bad(out);
  } else {
    good(out);
  }
}

void EventGenerator::good(GeneratedEvent& out) {
  auto pick = [this](std::size_t n) { return static_cast<std::size_t>(rng_() % n); };
  const std::string& user = users_[pick(users_.size())];
  out.key = user;
  if (pick(100) == 0) {
    out.key_null = true;
    out.key.clear();
  }
  char ip[64];
  std::size_t r = pick(100);
  if (r < 90) {
    std::snprintf(ip, sizeof ip, "%u.%u.%u.%u", static_cast<unsigned>(1 + pick(223)), static_cast<unsigned>(pick(256)),
                  static_cast<unsigned>(pick(256)), static_cast<unsigned>(1 + pick(254)));
  } else if (r < 98) {
    std::snprintf(ip, sizeof ip, "2001:db8:%x:%x::%x", static_cast<unsigned>(pick(65536)),
                  static_cast<unsigned>(pick(65536)), static_cast<unsigned>(1 + pick(65535)));
  } else {
    std::snprintf(ip, sizeof ip, "%u.%u.%u.%u", static_cast<unsigned>(256 + pick(100)), static_cast<unsigned>(pick(256)),
                  static_cast<unsigned>(pick(256)), static_cast<unsigned>(pick(256)));
  }
  char device_id[16];
  std::snprintf(device_id, sizeof device_id, "%03u-%02u-%04u", static_cast<unsigned>(pick(1000)),
                static_cast<unsigned>(pick(100)), static_cast<unsigned>(pick(10000)));
  std::int64_t ts = base_time_s_ - static_cast<std::int64_t>(pick(3600));
  std::string ts_text;
  std::size_t tk = pick(100);
  if (tk < 85) ts_text = std::to_string(ts);
  else if (tk < 95) ts_text = "\"" + std::to_string(ts) + "\"";
  else ts_text = std::to_string(ts * 1000 + static_cast<std::int64_t>(pick(1000)));
  std::string_view version = pick(100) == 0 ? std::string_view("v2.3") : kVersions[pick(kVersions.size())];
  std::string_view locale = kLocales[pick(kLocales.size())];
  std::size_t dk = pick(100);
  std::string_view device = dk < 5 ? std::string_view() : dk < 50 ? "android" : dk < 97 ? "iOS" : dk < 99 ? " Android " : "IOS";

  std::string& v = out.value;
  v.clear();
  v += "{\"user_id\": \"";
  v += user;
  v += "\", \"app_version\": \"";
  v += version;
  v += "\"";
  if (!device.empty()) {
    v += ", \"device_type\": \"";
    v += device;
    v += "\"";
  }
  v += ", \"ip\": \"";
  v += ip;
  v += "\", \"locale\": \"";
  v += locale;
  v += "\", \"device_id\": \"";
  v += device_id;
  v += "\", \"timestamp\": ";
  v += ts_text;
  v += "}";
}

void EventGenerator::bad(GeneratedEvent& out) {
  out.bad = true;
  good(out);  // start from a realistic event, then break it
  std::string& v = out.value;
  const std::uint64_t n = bad_count_++;
  // Cycle through the kinds so that every dead-letter reason shows up in any sizeable run.
  // Values over the size limit are costly to move, so they are rare: 1 bad event in 200.
  const std::uint64_t kind = include_too_large_ && n % 200 == 199 ? 12 : n % 12;
  switch (kind) {
    case 0:  // truncated JSON
      v.resize(v.size() / 2);
      out.expected_reason = DlqReason::kInvalidJson;
      break;
    case 1:  // a null Kafka value (tombstone)
      v.clear();
      out.value_null = true;
      out.expected_reason = DlqReason::kInvalidJson;
      break;
    case 2:  // invalid UTF-8
      v.insert(14, "\xC3\x28");
      out.expected_reason = DlqReason::kInvalidJson;
      break;
    case 3:  // an array
      v = "[" + v + "]";
      out.expected_reason = DlqReason::kNotAnObject;
      break;
    case 4:  // a bare string
      v = "\"user-login\"";
      out.expected_reason = DlqReason::kNotAnObject;
      break;
    case 5: {  // no user_id
      auto p = v.find("\"user_id\": \"");
      v.replace(p, 10, "\"uid\":");
      out.expected_reason = DlqReason::kMissingUserId;
      break;
    }
    case 6: {  // user_id a number
      auto p = v.find("\"user_id\": \"");
      auto e = v.find('"', p + 12);
      v.replace(p, e - p + 1, "\"user_id\": 12345");
      out.expected_reason = DlqReason::kInvalidUserId;
      break;
    }
    case 7: {  // user_id empty
      auto p = v.find("\"user_id\": \"");
      auto e = v.find('"', p + 12);
      v.replace(p, e - p + 1, "\"user_id\": \"\"");
      out.expected_reason = DlqReason::kInvalidUserId;
      break;
    }
    case 8: {  // no timestamp
      auto p = v.find(", \"timestamp\": ");
      v.replace(p, v.size() - 1 - p, "");
      out.expected_reason = DlqReason::kMissingTimestamp;
      break;
    }
    case 9: {  // timestamp text
      auto p = v.find("\"timestamp\": ");
      v.replace(p, v.size() - 1 - p, "\"timestamp\": \"yesterday\"");
      out.expected_reason = DlqReason::kInvalidTimestamp;
      break;
    }
    case 10: {  // timestamp before 2000
      auto p = v.find("\"timestamp\": ");
      v.replace(p, v.size() - 1 - p, "\"timestamp\": 915148800");
      out.expected_reason = DlqReason::kInvalidTimestamp;
      break;
    }
    case 11: {  // timestamp a fraction
      auto p = v.find("\"timestamp\": ");
      v.replace(p, v.size() - 1 - p, "\"timestamp\": 1694479551.5");
      out.expected_reason = DlqReason::kInvalidTimestamp;
      break;
    }
    case 12: {  // over the size limit: a huge device_id
      std::string pad(kMaxValueBytes, 'x');
      v.insert(v.size() - 1, ", \"device_id\": \"" + pad + "\"");
      out.expected_reason = DlqReason::kTooLarge;
      break;
    }
    default: break;
  }
}

}  // namespace loginflow
