// Unit tests of the login-event transform: SPEC "Output" and "Dead letters", rule by rule.
// A fixed clock is used throughout: kNow = 2025-11-25T10:00:00.123Z, so now + 24 h is
// 2025-11-26T10:00:00.123Z = 1764151200123 ms.

#include "loginflow/transform.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <chrono>
#include <cstdint>
#include <ctime>
#include <random>
#include <string>
#include <string_view>

#include "transform/text_out.h"

namespace loginflow {

// gtest and the messages below print reasons by name.
std::ostream& operator<<(std::ostream& os, DlqReason r) { return os << dlqReasonName(r); }

namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;

constexpr std::int64_t kNow = 1'764'064'800'123;  // 2025-11-25T10:00:00.123Z
constexpr std::string_view kNowIso = "2025-11-25T10:00:00.123Z";

// A copy of a Result (its views die at the next apply()).
struct Captured {
  Result::Kind kind = Result::Kind::kOutput;
  std::string key;
  std::string value;
  DlqReason reason = DlqReason::kInvalidJson;
  std::string detail;
  std::string dlq_value;
  bool dlq_value_null = false;
  std::size_t original_size = 0;
  bool has_device_type = false;
  std::string device_type;
  bool has_locale = false;
  std::string locale;
  std::uint32_t warnings = 0;

  bool isOutput() const { return kind == Result::Kind::kOutput; }
};

Captured capture(const Result& r) {
  Captured c;
  c.kind = r.kind;
  c.key = std::string(r.key);
  c.value = std::string(r.value);
  c.reason = r.reason;
  c.detail = std::string(r.detail);
  c.dlq_value = std::string(r.dlq_value);
  c.dlq_value_null = r.dlq_value_null;
  c.original_size = r.original_size;
  c.has_device_type = r.has_device_type;
  c.device_type = std::string(r.device_type);
  c.has_locale = r.has_locale;
  c.locale = std::string(r.locale);
  c.warnings = r.warnings;
  return c;
}

class TransformTest : public ::testing::Test {
 protected:
  Captured run(std::string_view value, std::int64_t now = kNow) {
    InputRecord in;
    in.key = "k";
    in.key_len = 1;
    in.value = value.data();
    in.value_len = value.size();
    in.source = SourceMeta{"user-login", 3, 42};
    return capture(transformer_.apply(in, now));
  }

  // An output record (fails the test otherwise), parsed.
  rapidjson::Document output(std::string_view value, std::int64_t now = kNow) {
    const Captured c = run(value, now);
    EXPECT_TRUE(c.isOutput()) << "dead letter " << c.reason << ": " << c.detail << "\n  for "
                              << value;
    rapidjson::Document d;
    d.Parse(c.value.data(), c.value.size());
    EXPECT_FALSE(d.HasParseError()) << c.value;
    return d;
  }

  // The dead-letter reason (fails the test if it is an output), checking the invariants every
  // non-too_large dead letter has.
  DlqReason dlq(std::string_view value) {
    const Captured c = run(value);
    EXPECT_FALSE(c.isOutput()) << "unexpected output " << c.value << "\n  for " << value;
    if (c.reason != DlqReason::kTooLarge) {
      EXPECT_EQ(c.dlq_value, value);
      EXPECT_FALSE(c.dlq_value_null);
    }
    EXPECT_FALSE(c.detail.empty());
    return c.reason;
  }

  Transformer transformer_;
};

// A valid event plus `extra` members (a later duplicate overrides user_id/timestamp).
std::string event(std::string_view extra = {}) {
  std::string s = R"({"user_id":"u1","timestamp":1694479551)";
  if (!extra.empty()) {
    s += ',';
    s += extra;
  }
  s += '}';
  return s;
}

std::string withTimestamp(std::string_view ts) { return event(R"("timestamp":)"s + std::string(ts)); }

std::string str(const rapidjson::Document& d, const char* name) {
  if (!d.HasMember(name) || !d[name].IsString()) return "<not a string>";
  return std::string(d[name].GetString(), d[name].GetStringLength());
}
std::vector<std::string> warnings(const rapidjson::Document& d) {
  std::vector<std::string> w;
  for (const auto& v : d["warnings"].GetArray()) w.emplace_back(v.GetString());
  return w;
}

// ==== whole outputs, byte for byte ==========================================================

TEST_F(TransformTest, SpecExampleProducesTheSpecOutputExactly) {
  const Captured c = run(
      R"({"user_id": "424cdd21-063a-43a7-b91b-7ca1a833afae", "app_version": "2.3.0", "device_type": "android",)"
      "\n"
      R"( "ip": "199.172.111.135", "locale": "RU", "device_id": "593-47-5928", "timestamp": 1694479551})");
  ASSERT_TRUE(c.isOutput()) << c.detail;
  EXPECT_EQ(c.key, "424cdd21-063a-43a7-b91b-7ca1a833afae");
  EXPECT_EQ(c.value,
            R"({"user_id":"424cdd21-063a-43a7-b91b-7ca1a833afae","device_id":"593-47-5928",)"
            R"("device_type":"android","app_version":"2.3.0","locale":"RU","ip":"199.172.111.135",)"
            R"("timestamp":1694479551,"login_time":"2023-09-12T00:45:51Z",)"
            R"("processed_at":"2025-11-25T10:00:00.123Z","warnings":[]})");
  EXPECT_EQ(c.warnings, 0U);
  EXPECT_TRUE(c.has_device_type);
  EXPECT_EQ(c.device_type, "android");
  EXPECT_TRUE(c.has_locale);
  EXPECT_EQ(c.locale, "RU");
}

TEST_F(TransformTest, OnlyRequiredFieldsGiveNullsInFieldOrder) {
  const Captured c = run(R"({"timestamp":"1694479551123","user_id":"u"})");
  ASSERT_TRUE(c.isOutput()) << c.detail;
  EXPECT_EQ(c.value,
            R"({"user_id":"u","device_id":null,"device_type":null,"app_version":null,)"
            R"("locale":null,"ip":null,"timestamp":1694479551,)"
            R"("login_time":"2023-09-12T00:45:51.123Z","processed_at":"2025-11-25T10:00:00.123Z",)"
            R"("warnings":[]})");
  EXPECT_FALSE(c.has_device_type);
  EXPECT_FALSE(c.has_locale);
}

TEST_F(TransformTest, EveryFieldInvalidGivesAllWarningsInFieldOrder) {
  const Captured c = run(
      R"({"ip":"1.2.3","locale":"R","app_version":"v1","device_type":7,"device_id":false,)"
      R"("user_id":"u","timestamp":1000000000000})");
  ASSERT_TRUE(c.isOutput()) << c.detail;
  EXPECT_EQ(c.value,
            R"({"user_id":"u","device_id":null,"device_type":null,"app_version":null,)"
            R"("locale":null,"ip":null,"timestamp":1000000000,)"
            R"("login_time":"2001-09-09T01:46:40.000Z","processed_at":"2025-11-25T10:00:00.123Z",)"
            R"("warnings":["invalid_device_id","invalid_device_type","invalid_app_version",)"
            R"("invalid_locale","invalid_ip"]})");
  EXPECT_EQ(c.warnings, warningBit(Warning::kInvalidDeviceId) |
                            warningBit(Warning::kInvalidDeviceType) |
                            warningBit(Warning::kInvalidAppVersion) |
                            warningBit(Warning::kInvalidLocale) | warningBit(Warning::kInvalidIp));
}

TEST_F(TransformTest, NormalisedValuesAndOneWarningExactly) {
  const Captured c = run(
      R"({"user_id":"u","device_type":" \tiOS\n","locale":" tx ","ip":"::ffff:192.0.2.1",)"
      R"("app_version":"10","device_id":"","timestamp":"946684800","locale":"Tx"} )");
  ASSERT_TRUE(c.isOutput()) << c.detail;
  EXPECT_EQ(c.value,
            R"({"user_id":"u","device_id":"","device_type":"ios","app_version":"10",)"
            R"("locale":"TX","ip":"::ffff:192.0.2.1","timestamp":946684800,)"
            R"("login_time":"2000-01-01T00:00:00Z","processed_at":"2025-11-25T10:00:00.123Z",)"
            R"("warnings":[]})");
}

TEST_F(TransformTest, EscapesInOutputAreJsonEscapedExactly) {
  // Quote, backslash, slash, every short escape, other controls, DEL and non-ASCII.
  const Captured c = run(
      R"({"user_id":"\u00e9\ud83d\ude00","timestamp":1694479551,)"
      R"("device_id":"a\"b\\c\/d\b\f\n\r\t\u0000\u0001\u001f\u007f é"})");
  ASSERT_TRUE(c.isOutput()) << c.detail;
  EXPECT_EQ(c.key, "\xC3\xA9\xF0\x9F\x98\x80");
  EXPECT_EQ(c.value,
            "{\"user_id\":\"\xC3\xA9\xF0\x9F\x98\x80\","
            "\"device_id\":\"a\\\"b\\\\c/d\\b\\f\\n\\r\\t\\u0000\\u0001\\u001f\x7F \xC3\xA9\","
            "\"device_type\":null,\"app_version\":null,\"locale\":null,\"ip\":null,"
            "\"timestamp\":1694479551,\"login_time\":\"2023-09-12T00:45:51Z\","
            "\"processed_at\":\"2025-11-25T10:00:00.123Z\",\"warnings\":[]}");
}

TEST_F(TransformTest, ProcessedAtHasExactlyThreeFractionDigits) {
  EXPECT_EQ(str(output(event(), 1'764'064'800'000), "processed_at"), "2025-11-25T10:00:00.000Z");
  EXPECT_EQ(str(output(event(), 1'764'064'800'007), "processed_at"), "2025-11-25T10:00:00.007Z");
  EXPECT_EQ(str(output(event(), 1'772'323'199'999), "processed_at"), "2026-02-28T23:59:59.999Z");
  EXPECT_EQ(str(output(event()), "processed_at"), kNowIso);
}

// ==== user_id ==============================================================================

TEST_F(TransformTest, UserIdIsTheKeyAsDecodedUtf8Bytes) {
  const Captured c = run(R"({"user_id":"caf\u00e9 \u4e2d","timestamp":1694479551})");
  ASSERT_TRUE(c.isOutput()) << c.detail;
  EXPECT_EQ(c.key, "caf\xC3\xA9 \xE4\xB8\xAD");
}

TEST_F(TransformTest, UserIdIsNotTrimmed) {
  const Captured c = run(R"({"user_id":" u 1\t","timestamp":1694479551})");
  ASSERT_TRUE(c.isOutput()) << c.detail;
  EXPECT_EQ(c.key, " u 1\t");
  EXPECT_NE(c.value.find(R"("user_id":" u 1\t")"), std::string::npos) << c.value;
}

TEST_F(TransformTest, UserIdMissingOrNullIsMissingUserId) {
  EXPECT_EQ(dlq(R"({"timestamp":1694479551})"), DlqReason::kMissingUserId);
  EXPECT_EQ(dlq(R"({"user_id":null,"timestamp":1694479551})"), DlqReason::kMissingUserId);
  EXPECT_EQ(dlq(R"({})"), DlqReason::kMissingUserId);
  EXPECT_EQ(run(R"({})").detail, "user_id is missing");
}

TEST_F(TransformTest, UserIdOfWrongTypeIsInvalidUserId) {
  for (const char* v : {"42", "4.2", "true", "false", "{}", "[]", R"(["u"])", R"({"id":"u"})"}) {
    EXPECT_EQ(dlq(R"({"timestamp":1694479551,"user_id":)"s + v + "}"), DlqReason::kInvalidUserId)
        << v;
  }
  EXPECT_EQ(run(R"({"user_id":42,"timestamp":1})").detail, "user_id is not a string (it is a number)");
}

TEST_F(TransformTest, UserIdEmptyIsInvalidButWhiteSpaceIsValid) {
  EXPECT_EQ(dlq(R"({"user_id":"","timestamp":1694479551})"), DlqReason::kInvalidUserId);
  EXPECT_EQ(run(R"({"user_id":"","timestamp":1694479551})").detail, "user_id is empty");
  EXPECT_TRUE(run(R"({"user_id":" ","timestamp":1694479551})").isOutput());
}

TEST_F(TransformTest, UserIdLengthLimitIs128BytesOfUtf8) {
  const std::string ok128(128, 'a');
  const std::string bad129(129, 'a');
  EXPECT_TRUE(run(R"({"user_id":")" + ok128 + R"(","timestamp":1694479551})").isOutput());
  EXPECT_EQ(dlq(R"({"user_id":")" + bad129 + R"(","timestamp":1694479551})"),
            DlqReason::kInvalidUserId);
  // Bytes, not characters: 64 × é = 128 bytes is fine, 65 × é = 130 bytes is not.
  std::string e64;
  for (int i = 0; i < 64; ++i) e64 += "\\u00e9";
  EXPECT_TRUE(run(R"({"user_id":")" + e64 + R"(","timestamp":1694479551})").isOutput());
  EXPECT_EQ(dlq(R"({"user_id":")" + e64 + R"(\u00e9","timestamp":1694479551})"),
            DlqReason::kInvalidUserId);
  EXPECT_EQ(run(R"({"user_id":")" + bad129 + R"(","timestamp":1})").detail,
            "user_id is 129 bytes, longer than 128");
}

// ==== timestamp ============================================================================

TEST_F(TransformTest, TimestampIntegerSeconds) {
  const auto d = output(withTimestamp("1694479551"));
  EXPECT_EQ(d["timestamp"].GetInt64(), 1694479551);
  EXPECT_EQ(str(d, "login_time"), "2023-09-12T00:45:51Z");
}

TEST_F(TransformTest, TimestampDigitStringSeconds) {
  const auto d = output(withTimestamp(R"("1694479551")"));
  EXPECT_EQ(d["timestamp"].GetInt64(), 1694479551);
  EXPECT_EQ(str(d, "login_time"), "2023-09-12T00:45:51Z");
}

TEST_F(TransformTest, TimestampDigitStringWithLeadingZeros) {
  EXPECT_EQ(output(withTimestamp(R"("0001694479551")"))["timestamp"].GetInt64(), 1694479551);
  // Many leading zeros do not count towards the overflow guard.
  const std::string zeros(40, '0');
  EXPECT_EQ(output(withTimestamp("\"" + zeros + "1694479551\""))["timestamp"].GetInt64(),
            1694479551);
  const auto ms = output(withTimestamp("\"" + zeros + "1694479551042\""));
  EXPECT_EQ(ms["timestamp"].GetInt64(), 1694479551);
  EXPECT_EQ(str(ms, "login_time"), "2023-09-12T00:45:51.042Z");
}

TEST_F(TransformTest, TimestampMillisecondsAreTruncatedToSecondsWithThreeFractionDigits) {
  auto d = output(withTimestamp("1694479551999"));
  EXPECT_EQ(d["timestamp"].GetInt64(), 1694479551);
  EXPECT_EQ(str(d, "login_time"), "2023-09-12T00:45:51.999Z");
  d = output(withTimestamp(R"("1694479551000")"));
  EXPECT_EQ(d["timestamp"].GetInt64(), 1694479551);
  EXPECT_EQ(str(d, "login_time"), "2023-09-12T00:45:51.000Z");
}

TEST_F(TransformTest, TimestampTenToTheTwelveIsMillisecondsAndOneLessIsSeconds) {
  const auto d = output(withTimestamp("1000000000000"));
  EXPECT_EQ(str(d, "login_time"), "2001-09-09T01:46:40.000Z");
  // 999999999999 is seconds: year 33658, far beyond now + 24 h.
  EXPECT_EQ(dlq(withTimestamp("999999999999")), DlqReason::kInvalidTimestamp);
}

TEST_F(TransformTest, TimestampLowerBoundIsInclusive) {
  EXPECT_EQ(str(output(withTimestamp("946684800")), "login_time"), "2000-01-01T00:00:00Z");
  EXPECT_EQ(str(output(withTimestamp(R"("946684800")")), "login_time"), "2000-01-01T00:00:00Z");
  EXPECT_EQ(dlq(withTimestamp("946684799")), DlqReason::kInvalidTimestamp);
  EXPECT_EQ(dlq(withTimestamp(R"("946684799")")), DlqReason::kInvalidTimestamp);
  EXPECT_EQ(run(withTimestamp("946684799")).detail,
            "timestamp 946684799 is before 2000-01-01T00:00:00Z");
}

TEST_F(TransformTest, TimestampUpperBoundIsNowPlus24hInclusiveAtTheGivenPrecision) {
  // now + 24 h = 1764151200123 ms.
  EXPECT_EQ(str(output(withTimestamp("1764151200123")), "login_time"),
            "2025-11-26T10:00:00.123Z");
  EXPECT_EQ(dlq(withTimestamp("1764151200124")), DlqReason::kInvalidTimestamp);
  // Seconds: 1764151200 s = ...200000 ms <= bound; 1764151201 s = ...201000 ms > bound.
  EXPECT_EQ(str(output(withTimestamp("1764151200")), "login_time"), "2025-11-26T10:00:00Z");
  EXPECT_EQ(dlq(withTimestamp("1764151201")), DlqReason::kInvalidTimestamp);
  EXPECT_EQ(dlq(withTimestamp(R"("1764151201")")), DlqReason::kInvalidTimestamp);
  EXPECT_EQ(run(withTimestamp("1764151201")).detail,
            "timestamp 1764151201 is more than 24 h in the future");
  // With a whole-second clock the seconds bound moves accordingly.
  EXPECT_TRUE(run(withTimestamp("1764151200"), 1'764'064'800'000).isOutput());
  EXPECT_FALSE(run(withTimestamp("1764151200001"), 1'764'064'800'000).isOutput());
}

TEST_F(TransformTest, TimestampNonIntegerFormsAreInvalid) {
  for (const char* ts :
       {"1694479551.0", "1.6e9", "1694479551e0", "1694479551E+0", "16944795510e-1", "true",
        "false", "[]", "[1694479551]", "{}", R"({"s":1694479551})", R"("1694479551.0")",
        R"("1.6e9")", R"(" 1694479551")", R"("1694479551 ")", R"("+1694479551")",
        R"("-1694479551")", R"("")", R"("0x64FFB8BF")", R"("１６９４４７９５５１")",
        R"("1694479551\n")", R"("1694479551\u0000")"}) {
    const Captured c = run(withTimestamp(ts));
    EXPECT_FALSE(c.isOutput()) << ts;
    EXPECT_EQ(c.reason, DlqReason::kInvalidTimestamp) << ts;
  }
  EXPECT_EQ(run(withTimestamp("1.6e9")).detail,
            "timestamp is not an integer or a string of digits");
}

TEST_F(TransformTest, TimestampNegativeAndZeroAreBefore2000) {
  for (const char* ts : {"-1694479551", "-1", "0", "-0", R"("0")", R"("000")"}) {
    EXPECT_EQ(dlq(withTimestamp(ts)), DlqReason::kInvalidTimestamp) << ts;
  }
}

TEST_F(TransformTest, TimestampHugeValuesDoNotOverflow) {
  for (const char* ts :
       {"9223372036854775807", "9223372036854775808", "18446744073709551615",
        "18446744073709551616", "99999999999999999999999999999999",
        R"("9223372036854775808")", R"("99999999999999999999999999999999999999")",
        "-9223372036854775809"}) {
    EXPECT_EQ(dlq(withTimestamp(ts)), DlqReason::kInvalidTimestamp) << ts;
  }
  EXPECT_EQ(run(withTimestamp(R"("123456789012345678901234567890123456789")")).detail,
            "timestamp 12345678901234567890123456789012... is more than 24 h in the future");
}

TEST_F(TransformTest, TimestampMissingOrNullIsMissingTimestamp) {
  EXPECT_EQ(dlq(R"({"user_id":"u"})"), DlqReason::kMissingTimestamp);
  EXPECT_EQ(dlq(R"({"user_id":"u","timestamp":null})"), DlqReason::kMissingTimestamp);
  EXPECT_EQ(run(R"({"user_id":"u"})").detail, "timestamp is missing");
}

// ==== device_type ==========================================================================

TEST_F(TransformTest, DeviceTypeIsTrimmedAndLowerCased) {
  for (const auto& [in, want] : std::vector<std::pair<std::string, std::string>>{
           {R"("android")", "android"},
           {R"("iOS")", "ios"},
           {R"("ANDROID")", "android"},
           {R"(" \t\n\r\f\u000bIOS \u000b")", "ios"},
           {R"("Windows Phone")", "windows phone"},
           {R"("\u00c9cran")", "\xC3\x89" "cran"}}) {  // non-ASCII is not case-mapped
    const Captured c = run(event(R"("device_type":)" + in));
    ASSERT_TRUE(c.isOutput()) << in;
    rapidjson::Document d;
    d.Parse(c.value.c_str());
    EXPECT_EQ(str(d, "device_type"), want) << in;
    EXPECT_TRUE(c.has_device_type);
    EXPECT_EQ(c.device_type, want);
    EXPECT_EQ(c.warnings, 0U) << in;
  }
}

TEST_F(TransformTest, DeviceTypeEmptyAfterTrimIsNullWithoutWarning) {
  for (const char* v : {R"("")", R"("   ")", R"(" \t\n ")"}) {
    const Captured c = run(event(R"("device_type":)"s + v));
    ASSERT_TRUE(c.isOutput()) << v;
    EXPECT_NE(c.value.find(R"("device_type":null)"), std::string::npos) << c.value;
    EXPECT_FALSE(c.has_device_type);
    EXPECT_EQ(c.warnings, 0U) << v;
  }
}

TEST_F(TransformTest, DeviceTypeMissingOrNullIsNullWithoutWarning) {
  for (const std::string& e : {event(), event(R"("device_type":null)")}) {
    const Captured c = run(e);
    ASSERT_TRUE(c.isOutput());
    EXPECT_NE(c.value.find(R"("device_type":null)"), std::string::npos);
    EXPECT_FALSE(c.has_device_type);
    EXPECT_EQ(c.warnings, 0U);
  }
}

TEST_F(TransformTest, DeviceTypeOfWrongTypeIsNullWithWarning) {
  for (const char* v : {"1", "1.5", "true", "[]", R"(["ios"])", R"({"t":"ios"})"}) {
    const Captured c = run(event(R"("device_type":)"s + v));
    ASSERT_TRUE(c.isOutput()) << v;
    EXPECT_NE(c.value.find(R"("device_type":null)"), std::string::npos);
    EXPECT_FALSE(c.has_device_type);
    EXPECT_EQ(c.warnings, warningBit(Warning::kInvalidDeviceType)) << v;
  }
}

// ==== locale ===============================================================================

TEST_F(TransformTest, LocaleIsTrimmedUpperCasedTwoOrThreeLetters) {
  for (const auto& [in, want] : std::vector<std::pair<std::string, std::string>>{
           {"RU", "RU"}, {"ru", "RU"}, {"TX", "TX"}, {"tx", "TX"}, {" Ca\\t", "CA"},
           {"deu", "DEU"}, {"\\n ny \\r", "NY"}}) {
    const Captured c = run(event(R"("locale":")" + in + "\""));
    ASSERT_TRUE(c.isOutput()) << in;
    rapidjson::Document d;
    d.Parse(c.value.c_str());
    EXPECT_EQ(str(d, "locale"), want) << in;
    EXPECT_TRUE(c.has_locale);
    EXPECT_EQ(c.locale, want);
    EXPECT_EQ(c.warnings, 0U);
  }
}

TEST_F(TransformTest, LocaleNotTwoOrThreeLettersIsNullWithWarning) {
  for (const char* v : {R"("")", R"("  ")", R"("R")", R"("ENGL")", R"("R1")", R"("en-US")",
                        R"("en_US")", R"("E S")", R"("\u00c9S")", R"("RU\u0000")", "5",
                        "true", R"(["RU"])", R"({"l":"RU"})"}) {
    const Captured c = run(event(R"("locale":)"s + v));
    ASSERT_TRUE(c.isOutput()) << v;
    EXPECT_NE(c.value.find(R"("locale":null)"), std::string::npos) << v;
    EXPECT_FALSE(c.has_locale) << v;
    EXPECT_EQ(c.warnings, warningBit(Warning::kInvalidLocale)) << v;
  }
}

TEST_F(TransformTest, LocaleMissingOrNullIsNullWithoutWarning) {
  for (const std::string& e : {event(), event(R"("locale":null)")}) {
    const Captured c = run(e);
    ASSERT_TRUE(c.isOutput());
    EXPECT_NE(c.value.find(R"("locale":null)"), std::string::npos);
    EXPECT_FALSE(c.has_locale);
    EXPECT_EQ(c.warnings, 0U);
  }
}

// ==== ip ===================================================================================

TEST_F(TransformTest, IpValidIsKeptExactlyAsGiven) {
  for (const char* ip : {"199.172.111.135", "0.0.0.0", "255.255.255.255", "::", "::1",
                         "2001:db8::1", "2001:DB8:0:0:0:0:0:1", "2001:0db8:0000::0001",
                         "::ffff:192.0.2.1", "::FFFF:10.0.0.1", "fe80::1",
                         "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"}) {
    const auto d = output(event(R"("ip":")"s + ip + "\""));
    EXPECT_EQ(str(d, "ip"), ip);
    EXPECT_TRUE(warnings(d).empty()) << ip;
  }
}

TEST_F(TransformTest, IpInvalidIsNullWithWarning) {
  for (const char* ip :
       {R"("01.2.3.4")", R"("1.2.3.04")", R"("010.0.0.1")", R"("fe80::1%eth0")",
        R"("fe80::1%1")", R"(" 1.2.3.4")", R"("1.2.3.4 ")", R"("1.2.3.4\n")", R"("1.2.3")",
        R"("1.2.3.4.5")", R"("256.1.1.1")", R"("1.2.3.-1")", R"("")", R"("localhost")",
        R"("2001:db8:::1")", R"("2001:db8::1::2")", R"("::ffff:01.2.3.4")",
        R"("1.2.3.4/24")", R"("[::1]")", R"("1.2.3.4\u0000")", R"("::1\u0000junk")",
        R"("0000000000000000000000000000000000000000000000000000000000000000000000::1")",
        "1234", "true", R"(["1.2.3.4"])", R"({"v4":"1.2.3.4"})"}) {
    const Captured c = run(event(R"("ip":)"s + ip));
    ASSERT_TRUE(c.isOutput()) << ip;
    EXPECT_NE(c.value.find(R"("ip":null)"), std::string::npos) << ip << " → " << c.value;
    EXPECT_EQ(c.warnings, warningBit(Warning::kInvalidIp)) << ip;
  }
}

TEST_F(TransformTest, IpMissingOrNullIsNullWithoutWarning) {
  for (const std::string& e : {event(), event(R"("ip":null)")}) {
    const Captured c = run(e);
    ASSERT_TRUE(c.isOutput());
    EXPECT_NE(c.value.find(R"("ip":null)"), std::string::npos);
    EXPECT_EQ(c.warnings, 0U);
  }
}

// ==== app_version ==========================================================================

TEST_F(TransformTest, AppVersionMatchingPatternIsKept) {
  for (const char* v : {"2", "2.3.0", "0", "10.20.30.40", "007.1", "1.2.3.4.5.6.7.8"}) {
    const auto d = output(event(R"("app_version":")"s + v + "\""));
    EXPECT_EQ(str(d, "app_version"), v);
    EXPECT_TRUE(warnings(d).empty()) << v;
  }
}

TEST_F(TransformTest, AppVersionNotMatchingIsNullWithWarning) {
  for (const char* v : {R"("")", R"("2.")", R"(".2")", R"("2..3")", R"("v2.3")",
                        R"("2.3.0-beta")", R"("2.3.0\n")", R"(" 2.3")", R"("2,3")",
                        R"("\u0662")", "2", "2.3", "true", R"(["2.3"])"}) {
    const Captured c = run(event(R"("app_version":)"s + v));
    ASSERT_TRUE(c.isOutput()) << v;
    EXPECT_NE(c.value.find(R"("app_version":null)"), std::string::npos) << v;
    EXPECT_EQ(c.warnings, warningBit(Warning::kInvalidAppVersion)) << v;
  }
}

TEST_F(TransformTest, AppVersionMissingOrNullIsNullWithoutWarning) {
  for (const std::string& e : {event(), event(R"("app_version":null)")}) {
    const Captured c = run(e);
    ASSERT_TRUE(c.isOutput());
    EXPECT_NE(c.value.find(R"("app_version":null)"), std::string::npos);
    EXPECT_EQ(c.warnings, 0U);
  }
}

// ==== device_id ============================================================================

TEST_F(TransformTest, DeviceIdAnyStringIsKeptAsGiven) {
  for (const char* v : {"593-47-5928", "", " spaced ", "UPPER", "x\\ty"}) {
    const auto d = output(event(R"("device_id":")"s + v + "\""));
    std::string want = v;
    if (want == "x\\ty") want = "x\ty";
    EXPECT_EQ(str(d, "device_id"), want);
    EXPECT_TRUE(warnings(d).empty());
  }
}

TEST_F(TransformTest, DeviceIdNotAStringIsNullWithWarning) {
  for (const char* v : {"593475928", "1.5", "false", "[]", "{}"}) {
    const Captured c = run(event(R"("device_id":)"s + v));
    ASSERT_TRUE(c.isOutput()) << v;
    EXPECT_NE(c.value.find(R"("device_id":null)"), std::string::npos);
    EXPECT_EQ(c.warnings, warningBit(Warning::kInvalidDeviceId)) << v;
  }
}

TEST_F(TransformTest, DeviceIdMissingOrNullIsNullWithoutWarning) {
  for (const std::string& e : {event(), event(R"("device_id":null)")}) {
    const Captured c = run(e);
    ASSERT_TRUE(c.isOutput());
    EXPECT_NE(c.value.find(R"("device_id":null)"), std::string::npos);
    EXPECT_EQ(c.warnings, 0U);
  }
}

// ==== general rules ========================================================================

TEST_F(TransformTest, DuplicateMembersLastOneWins) {
  EXPECT_EQ(run(R"({"user_id":"a","user_id":"b","timestamp":1694479551})").key, "b");
  EXPECT_EQ(dlq(R"({"user_id":"a","timestamp":1694479551,"user_id":null})"),
            DlqReason::kMissingUserId);
  EXPECT_EQ(dlq(R"({"user_id":"a","timestamp":1694479551,"timestamp":"x"})"),
            DlqReason::kInvalidTimestamp);
  EXPECT_TRUE(run(R"({"user_id":"a","timestamp":"x","timestamp":1694479551})").isOutput());
  const Captured c = run(event(R"("locale":"RU","locale":5)"));
  EXPECT_EQ(c.warnings, warningBit(Warning::kInvalidLocale));
  const Captured c2 = run(event(R"("locale":5,"locale":"ru")"));
  EXPECT_EQ(c2.warnings, 0U);
  EXPECT_EQ(c2.locale, "RU");
  // A later container value also replaces an earlier string.
  EXPECT_EQ(run(event(R"("ip":"1.2.3.4","ip":{"a":"1.2.3.4"})")).warnings,
            warningBit(Warning::kInvalidIp));
}

TEST_F(TransformTest, UnknownAndNestedMembersAreDropped) {
  const Captured c = run(
      R"({"user_id":"u","extra":1,"nested":{"user_id":"x","timestamp":"bad","locale":5},)"
      R"("list":[{"ip":"bad"}],"timestamp":1694479551,"Locale":"zz","USER_ID":7})");
  ASSERT_TRUE(c.isOutput()) << c.detail;
  EXPECT_EQ(c.key, "u");
  EXPECT_EQ(c.warnings, 0U);
  EXPECT_EQ(c.value.find("extra"), std::string::npos);
  EXPECT_EQ(c.value.find("nested"), std::string::npos);
  EXPECT_EQ(c.value.find("zz"), std::string::npos);
}

TEST_F(TransformTest, EscapedMemberNamesAreMatchedDecoded) {
  const Captured c = run(R"({"user\u005fid":"u","\u0074imestamp":1694479551})");
  ASSERT_TRUE(c.isOutput()) << c.detail;
  EXPECT_EQ(c.key, "u");
  // A name with an embedded NUL is a different name.
  EXPECT_EQ(dlq(R"({"user_id\u0000":"u","timestamp":1694479551})"), DlqReason::kMissingUserId);
}

TEST_F(TransformTest, InsignificantWhiteSpaceAnywhereIsAccepted) {
  EXPECT_TRUE(run(" \t\r\n{ \"user_id\" :\n\"u\" , \"timestamp\" : 1694479551 }\n\r\t ")
                  .isOutput());
}

// ==== dead letters: invalid_json ===========================================================

TEST_F(TransformTest, NullKafkaValueIsInvalidJsonWithNullDeadLetter) {
  InputRecord in;
  in.value = nullptr;
  const Captured c = capture(transformer_.apply(in, kNow));
  EXPECT_EQ(c.kind, Result::Kind::kDeadLetter);
  EXPECT_EQ(c.reason, DlqReason::kInvalidJson);
  EXPECT_TRUE(c.dlq_value_null);
  EXPECT_TRUE(c.dlq_value.empty());
  EXPECT_FALSE(c.detail.empty());
}

TEST_F(TransformTest, EmptyOrWhiteSpaceValueIsInvalidJson) {
  EXPECT_EQ(dlq(""), DlqReason::kInvalidJson);
  EXPECT_FALSE(run("").dlq_value_null);
  EXPECT_EQ(dlq("   "), DlqReason::kInvalidJson);
  EXPECT_EQ(dlq("\n"), DlqReason::kInvalidJson);
}

TEST_F(TransformTest, MalformedJsonIsInvalidJson) {
  for (const char* v :
       {"{", "}", R"({"user_id":"u","timestamp":1694479551)", R"({"user_id":"u",})",
        R"({"user_id":"u" "timestamp":1})", R"({'user_id':'u'})", R"({user_id:"u"})",
        R"({"user_id":"u","timestamp":01694479551})", R"({"a":tru})", R"({"a":"\x"})",
        R"({"a":"\u12"})", "{\"a\":\"tab\there\"}", "{\"a\":\"new\nline\"}", R"({"a":1.})",
        R"({"a":.5})", R"({"a":+1})", R"({"a":1e})", R"({"a":-})", R"([1,])", "{}/*c*/",
        "//c\n{}", R"({"a":undefined})"}) {
    EXPECT_EQ(dlq(v), DlqReason::kInvalidJson) << v;
  }
  EXPECT_EQ(run("{").detail,
            "not valid JSON: Missing a name for object member. at offset 1");
  EXPECT_EQ(run("x").detail, "not valid JSON: Invalid value. at offset 0");
}

TEST_F(TransformTest, TrailingGarbageIsInvalidJson) {
  EXPECT_EQ(dlq(event() + " x"), DlqReason::kInvalidJson);
  EXPECT_EQ(dlq(event() + event()), DlqReason::kInvalidJson);
  EXPECT_EQ(dlq(event() + ","), DlqReason::kInvalidJson);
  EXPECT_EQ(dlq("{} {}"), DlqReason::kInvalidJson);
  EXPECT_TRUE(run(event() + " \n\t\r").isOutput());
}

TEST_F(TransformTest, AnyRawNulByteIsInvalidJson) {
  EXPECT_EQ(dlq("{}\0junk"sv), DlqReason::kInvalidJson);
  EXPECT_EQ(dlq(event() + '\0'), DlqReason::kInvalidJson);
  EXPECT_EQ(dlq("\0"sv), DlqReason::kInvalidJson);
  EXPECT_EQ(dlq("{\"user_id\":\"a\0b\",\"timestamp\":1694479551}"sv), DlqReason::kInvalidJson);
  EXPECT_EQ(run("{}\0junk"sv).detail, "not valid JSON: NUL byte at offset 2");
}

TEST_F(TransformTest, InvalidUtf8IsInvalidJson) {
  for (const std::string_view bad :
       {"\xFF"sv, "\xC0\xAF"sv, "\xE0\x80\xAF"sv, "\xED\xA0\x80"sv /* raw surrogate */,
        "\xF4\x90\x80\x80"sv /* > U+10FFFF */, "\xC3"sv, "\xE2\x82"sv, "\xF0\x9F\x98"sv,
        "\x80"sv, "a\xC3("sv, "\xF8\x88\x80\x80\x80"sv}) {
    EXPECT_EQ(dlq(R"({"user_id":"u","timestamp":1694479551,"device_id":")" + std::string(bad) +
                  "\"}"),
              DlqReason::kInvalidJson)
        << testing::PrintToString(bad);
    // Truncated at the very end of the value, inside a string (reads must stay in bounds).
    EXPECT_EQ(dlq(R"({"user_id":")" + std::string(bad)), DlqReason::kInvalidJson);
    // In a member name, and in nested ignored content.
    EXPECT_EQ(dlq(event("\"" + std::string(bad) + "\":1")), DlqReason::kInvalidJson);
    EXPECT_EQ(dlq(event(R"("x":[{"y":")" + std::string(bad) + "\"}]")), DlqReason::kInvalidJson);
  }
  // Raw UTF-8 outside a string is a syntax error anyway.
  EXPECT_EQ(dlq("{\"user_id\":\"u\",\xC3\xA9:1}"), DlqReason::kInvalidJson);
  // Valid multi-byte UTF-8 is fine.
  EXPECT_TRUE(run(event("\"device_id\":\"\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80\xF4\x8F\xBF\xBF\""))
                  .isOutput());
}

TEST_F(TransformTest, LoneSurrogateEscapesAreInvalidJson) {
  for (const char* s : {R"(\ud800)", R"(\udbff)", R"(\udc00)", R"(\udfff)", R"(\ud800x)",
                        R"(\ud800\u0041)", R"(\ud800\ud800)", R"(\udc00\ud800)",
                        R"(a\uDE00b)", R"(\ud83d)", R"(\ude00\ud83d)"}) {
    EXPECT_EQ(dlq(R"({"user_id":")"s + s + R"(","timestamp":1694479551})"),
              DlqReason::kInvalidJson)
        << s;
    EXPECT_EQ(dlq(event(R"("ignored":[[")"s + s + R"("]])")), DlqReason::kInvalidJson) << s;
    EXPECT_EQ(dlq(event(R"(")"s + s + R"(":1)")), DlqReason::kInvalidJson) << s;
  }
  EXPECT_EQ(run(R"({"a":"\udc00"})").detail,
            "not valid JSON: lone UTF-16 surrogate escape in the string at offset 5");
  // A proper pair decodes to one 4-byte character.
  EXPECT_EQ(run(R"({"user_id":"\ud83d\ude00","timestamp":1694479551})").key,
            "\xF0\x9F\x98\x80");
  EXPECT_EQ(run(R"({"user_id":"\uDBFF\uDFFF","timestamp":1694479551})").key,
            "\xF4\x8F\xBF\xBF");
}

TEST_F(TransformTest, ByteOrderMarkIsInvalidJson) {
  EXPECT_EQ(dlq("\xEF\xBB\xBF" + event()), DlqReason::kInvalidJson);
  EXPECT_EQ(dlq(" \xEF\xBB\xBF" + event()), DlqReason::kInvalidJson);
  EXPECT_EQ(run("\xEF\xBB\xBF" + event()).detail,
            "not valid JSON: starts with a UTF-8 byte-order mark");
  // U+FEFF inside a string is just a character.
  EXPECT_TRUE(run(event("\"device_id\":\"\xEF\xBB\xBF\"")).isOutput());
}

TEST_F(TransformTest, NanAndInfinityLiteralsAreInvalidJson) {
  for (const char* v : {"NaN", "-NaN", "Infinity", "-Infinity", "+Infinity", "inf", "nan"}) {
    EXPECT_EQ(dlq(event("\"x\":"s + v)), DlqReason::kInvalidJson) << v;
    EXPECT_EQ(dlq(withTimestamp(v)), DlqReason::kInvalidJson) << v;
  }
}

TEST_F(TransformTest, NumbersOutsideDoubleRangeAreInvalidJson) {
  for (const char* v : {"1e400", "-1e400", "1e309", "1.8e308", "-1.8e308", "99e307",
                        "1.7976931348623159e308", "0.1e310", "123456789e301",
                        "1e99999999999999999999"}) {
    EXPECT_EQ(dlq(event("\"x\":"s + v)), DlqReason::kInvalidJson) << v;
    EXPECT_EQ(dlq(withTimestamp(v)), DlqReason::kInvalidJson) << v;
    EXPECT_EQ(dlq(event("\"x\":[{\"y\":"s + v + "}]")), DlqReason::kInvalidJson) << v;
  }
  // A 310-digit integer is 10^309-ish: out of range too.
  EXPECT_EQ(dlq(event("\"x\":1" + std::string(309, '0'))), DlqReason::kInvalidJson);
  EXPECT_NE(run(event("\"x\":1e400")).detail.find("at offset 43"), std::string::npos)
      << run(event("\"x\":1e400")).detail;
}

TEST_F(TransformTest, NumbersInsideDoubleRangeAreAccepted) {
  for (const char* v :
       {"1.7976931348623157e308", "-1.7976931348623157e308", "1.7976931348623158e308",
        "1e308", "0e400", "-0e999999", "0.000e310", "1e-400", "-1e-99999", "4.9e-324",
        "0.0000000001e318", "123.456", "-0.0"}) {
    EXPECT_TRUE(run(event("\"x\":"s + v)).isOutput()) << v;
  }
  // DBL_MAX written out as an integer (309 digits) is in range; RapidJSON 1.1.0 alone would
  // reject it, as it does "0e400".
  const std::string dbl_max =
      "179769313486231570814527423731704356798070567525844996598917476803157260780028538760589"
      "558632766878171540458953514382464234321326889464182768467546703537516986049910576551282"
      "076245490090389328944075868508455133942304583236903222948165808559332123348274797826204"
      "144723168738177180919299881250404026184124858368";
  ASSERT_EQ(dbl_max.size(), 309U);
  EXPECT_TRUE(run(event("\"x\":" + dbl_max)).isOutput());
  EXPECT_TRUE(run(event("\"x\":[" + dbl_max + ",0e400,1e-400]")).isOutput());
  // ... and as a timestamp it is simply an invalid (far future) timestamp.
  EXPECT_EQ(dlq(withTimestamp(dbl_max)), DlqReason::kInvalidTimestamp);
  EXPECT_EQ(dlq(withTimestamp("0e400")), DlqReason::kInvalidTimestamp);
}

TEST_F(TransformTest, DeepNestingAsTheWholeValue) {
  const std::string open(10'000, '[');
  const std::string close(10'000, ']');
  EXPECT_EQ(dlq(open + close), DlqReason::kNotAnObject);
  EXPECT_EQ(dlq(open + close.substr(1)), DlqReason::kInvalidJson);  // one left unclosed
  EXPECT_EQ(dlq(open), DlqReason::kInvalidJson);
  std::string objects;
  for (int i = 0; i < 10'000; ++i) objects += "{\"a\":";
  EXPECT_EQ(dlq(objects + "1" + std::string(10'000, '}')), DlqReason::kMissingUserId);
  EXPECT_EQ(dlq(objects + "1" + std::string(9'999, '}')), DlqReason::kInvalidJson);
}

TEST_F(TransformTest, DeepNestingInsideAMember) {
  const std::string open(10'000, '[');
  const std::string close(10'000, ']');
  Captured c = run(event("\"deep\":" + open + "\"x\"" + close));
  ASSERT_TRUE(c.isOutput()) << c.detail;
  EXPECT_EQ(c.value.find("deep"), std::string::npos);
  // 100,000 levels (still under the size limit) parse iteratively too.
  c = run(event("\"deep\":" + std::string(100'000, '[') + std::string(100'000, ']')));
  EXPECT_TRUE(c.isOutput()) << c.detail;
  // Deep nesting in the value of a known member is its wrong type.
  c = run(event("\"device_id\":" + open + close));
  ASSERT_TRUE(c.isOutput());
  EXPECT_EQ(c.warnings, warningBit(Warning::kInvalidDeviceId));
  EXPECT_EQ(dlq(R"({"user_id":)" + open + close + R"(,"timestamp":1694479551})"),
            DlqReason::kInvalidUserId);
  EXPECT_EQ(dlq(event("\"deep\":" + open + close.substr(1))), DlqReason::kInvalidJson);
}

// ==== dead letters: size ===================================================================

TEST_F(TransformTest, OverOneMillionBytesIsTooLargeWithFirst1024Bytes) {
  std::string big = event("\"pad\":\"" + std::string(1'048'576, 'x') + "\"");
  big.resize(1'048'576);  // exactly 1 MiB (and no longer valid JSON: size wins)
  const Captured c = run(big);
  ASSERT_EQ(c.kind, Result::Kind::kDeadLetter);
  EXPECT_EQ(c.reason, DlqReason::kTooLarge);
  EXPECT_EQ(c.dlq_value, big.substr(0, 1024));
  EXPECT_EQ(c.original_size, 1'048'576U);
  EXPECT_FALSE(c.dlq_value_null);
  EXPECT_EQ(c.detail, "value is 1048576 bytes, over the 1000000-byte limit");
}

TEST_F(TransformTest, ExactlyOneMillionBytesIsNotTooLarge) {
  const std::string head = event("\"pad\":\"");
  std::string v = head.substr(0, head.size() - 1);  // drop the closing brace
  v += std::string(1'000'000 - v.size() - 2, 'x') + "\"}";
  ASSERT_EQ(v.size(), 1'000'000U);
  EXPECT_TRUE(run(v).isOutput()) << run(v).detail;
  EXPECT_EQ(dlq(v + " "), DlqReason::kTooLarge);  // 1,000,001 bytes
}

TEST_F(TransformTest, HugeStringFieldsAreHandled) {
  const std::string big(900'000, 'q');
  const Captured c = run(event("\"device_id\":\"" + big + "\",\"device_type\":\" " +
                               std::string(50'000, 'Z') + " \""));
  ASSERT_TRUE(c.isOutput());
  EXPECT_EQ(c.device_type, std::string(50'000, 'z'));
  rapidjson::Document d;
  d.Parse(c.value.c_str());
  EXPECT_EQ(str(d, "device_id"), big);
  // Output escaping can grow a string six-fold.
  const std::string controls(150'000, '\x01');
  std::string escaped;
  for (int i = 0; i < 150'000; ++i) escaped += "\\u0001";
  const Captured e = run(event("\"device_id\":\"" + escaped + "\""));
  ASSERT_TRUE(e.isOutput());
  d.Parse(e.value.c_str());
  EXPECT_EQ(str(d, "device_id"), controls);
}

// ==== dead letters: structure and precedence ==============================================

TEST_F(TransformTest, NonObjectValuesAreNotAnObject) {
  for (const auto& [v, phrase] : std::vector<std::pair<std::string, std::string>>{
           {"[]", "an array"}, {"[{\"user_id\":\"u\",\"timestamp\":1694479551}]", "an array"},
           {"\"{}\"", "a string"}, {"42", "a number"}, {"-1.5e3", "a number"},
           {"true", "a boolean"}, {"false", "a boolean"}, {"null", "null"}}) {
    const Captured c = run(v);
    EXPECT_EQ(c.reason, DlqReason::kNotAnObject) << v;
    EXPECT_EQ(c.dlq_value, v);
    EXPECT_EQ(c.detail, "the JSON value is " + phrase + ", not an object");
  }
}

TEST_F(TransformTest, PrecedenceOfDeadLetterReasons) {
  // too_large beats invalid JSON.
  EXPECT_EQ(dlq(std::string(1'000'001, '[')), DlqReason::kTooLarge);
  // invalid_json beats everything structural.
  EXPECT_EQ(dlq(R"([1,)"), DlqReason::kInvalidJson);
  EXPECT_EQ(dlq(R"({"timestamp":"x"} x)"), DlqReason::kInvalidJson);
  // not_an_object beats missing fields.
  EXPECT_EQ(dlq("[]"), DlqReason::kNotAnObject);
  // missing_user_id beats timestamp problems.
  EXPECT_EQ(dlq(R"({"timestamp":"x"})"), DlqReason::kMissingUserId);
  EXPECT_EQ(dlq(R"({"device_type":"ios"})"), DlqReason::kMissingUserId);
  // invalid_user_id beats missing_timestamp and invalid_timestamp.
  EXPECT_EQ(dlq(R"({"user_id":""})"), DlqReason::kInvalidUserId);
  EXPECT_EQ(dlq(R"({"user_id":1,"timestamp":"x"})"), DlqReason::kInvalidUserId);
  // missing_timestamp beats field warnings; invalid_timestamp too.
  EXPECT_EQ(dlq(R"({"user_id":"u","locale":5})"), DlqReason::kMissingTimestamp);
  EXPECT_EQ(dlq(R"({"user_id":"u","timestamp":1,"ip":"x"})"), DlqReason::kInvalidTimestamp);
}

TEST_F(TransformTest, DeadLetterCarriesTheInputByteForByte) {
  const std::string v = " {\"user_id\" : \"\\u0075\", \"timestamp\": \"12x\"}\n";
  const Captured c = run(v);
  EXPECT_EQ(c.reason, DlqReason::kInvalidTimestamp);
  EXPECT_EQ(c.dlq_value, v);
  EXPECT_EQ(c.original_size, v.size());
  EXPECT_TRUE(c.key.empty());
  EXPECT_TRUE(c.value.empty());
}

// ==== the Transformer object ===============================================================

TEST_F(TransformTest, ResultsDoNotLeakStateBetweenRecords) {
  // A record with every field, then one with none: nothing of the first may survive.
  const Captured full = run(
      R"({"user_id":"aaaaaaaa","device_id":"d","device_type":"ios","app_version":"1",)"
      R"("locale":"ru","ip":"1.2.3.4","timestamp":1694479551})");
  ASSERT_TRUE(full.isOutput());
  const Captured bare = run(R"({"user_id":"b","timestamp":1694479551})");
  ASSERT_TRUE(bare.isOutput());
  EXPECT_EQ(bare.value,
            R"({"user_id":"b","device_id":null,"device_type":null,"app_version":null,)"
            R"("locale":null,"ip":null,"timestamp":1694479551,)"
            R"("login_time":"2023-09-12T00:45:51Z","processed_at":"2025-11-25T10:00:00.123Z",)"
            R"("warnings":[]})");
  EXPECT_FALSE(bare.has_locale);
  EXPECT_FALSE(bare.has_device_type);
  const Captured dead = run("[]");
  EXPECT_EQ(dead.warnings, 0U);
  EXPECT_TRUE(run(event()).isOutput());
}

TEST_F(TransformTest, TheInputIsNotModified) {
  const std::string v = event(R"("device_type":" IOS ","locale":"ru","x":"a\nb")");
  const std::string copy = v;
  ASSERT_TRUE(run(v).isOutput());
  EXPECT_EQ(v, copy);
}

TEST(TransformerObject, MovedTransformerKeepsWorking) {
  Transformer a;
  Transformer b(std::move(a));
  const std::string v = event();
  InputRecord in;
  in.value = v.data();
  in.value_len = v.size();
  EXPECT_EQ(b.apply(in, kNow).kind, Result::Kind::kOutput);
  Transformer c;
  c = std::move(b);
  EXPECT_EQ(c.apply(in, kNow).key, "u1");
}

TEST(TransformNames, DlqReasonNames) {
  EXPECT_EQ(dlqReasonName(DlqReason::kTooLarge), "too_large");
  EXPECT_EQ(dlqReasonName(DlqReason::kInvalidJson), "invalid_json");
  EXPECT_EQ(dlqReasonName(DlqReason::kNotAnObject), "not_an_object");
  EXPECT_EQ(dlqReasonName(DlqReason::kMissingUserId), "missing_user_id");
  EXPECT_EQ(dlqReasonName(DlqReason::kInvalidUserId), "invalid_user_id");
  EXPECT_EQ(dlqReasonName(DlqReason::kMissingTimestamp), "missing_timestamp");
  EXPECT_EQ(dlqReasonName(DlqReason::kInvalidTimestamp), "invalid_timestamp");
}

TEST(TransformNames, WarningNames) {
  EXPECT_EQ(warningName(Warning::kInvalidDeviceId), "invalid_device_id");
  EXPECT_EQ(warningName(Warning::kInvalidDeviceType), "invalid_device_type");
  EXPECT_EQ(warningName(Warning::kInvalidAppVersion), "invalid_app_version");
  EXPECT_EQ(warningName(Warning::kInvalidLocale), "invalid_locale");
  EXPECT_EQ(warningName(Warning::kInvalidIp), "invalid_ip");
}

TEST(TransformClock, WallClockMsIsTheSystemClock) {
  const auto before = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const std::int64_t now = wallClockMs();
  const auto after = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  EXPECT_GE(now, before);
  EXPECT_LE(now, after);
}

// ==== the hand-written civil date conversion against the C library ========================

std::string gmtimeIso(std::int64_t ms, bool millis) {
  const std::time_t secs = static_cast<std::time_t>(ms / 1000 - (ms % 1000 < 0 ? 1 : 0));
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string s = buf;
  if (millis) {
    char frac[8];
    std::snprintf(frac, sizeof frac, ".%03d", static_cast<int>(((ms % 1000) + 1000) % 1000));
    s += frac;
  }
  return s + "Z";
}

std::string ours(std::int64_t ms, bool millis) {
  char buf[transform_detail::kIsoUtcMaxBytes];
  char* end = transform_detail::writeIsoUtc(buf, ms, millis);
  return std::string(buf, end);
}

TEST(TransformCivilTime, MatchesGmtimeOnEdgesAndRandomInstants) {
  const std::int64_t edges[] = {
      0,           -1,          946'684'800'000,   951'782'399'999, 951'782'400'000,
      951'868'799'999,  951'868'800'000, 4'107'542'399'000, 4'107'542'400'000,
      4'102'444'799'999, 253'402'300'799'999, kNow};
  for (const std::int64_t ms : edges) {
    EXPECT_EQ(ours(ms, true), gmtimeIso(ms, true)) << ms;
    EXPECT_EQ(ours(ms, false), gmtimeIso(ms, false)) << ms;
  }
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<std::int64_t> any(0, 253'402'300'799'999);  // to 9999-12-31
  for (int i = 0; i < 200'000; ++i) {
    const std::int64_t ms = any(rng);
    ASSERT_EQ(ours(ms, true), gmtimeIso(ms, true)) << ms;
  }
}

}  // namespace
}  // namespace loginflow
