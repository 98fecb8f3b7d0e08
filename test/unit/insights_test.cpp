#include "loginflow/insights.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <string>
#include <vector>

namespace loginflow {
namespace {

constexpr std::int64_t kStart = 1'764'064'800'000;  // 2025-11-25T10:00:00.000Z

rapidjson::Document parseJson(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse(text.c_str(), text.size());
  EXPECT_FALSE(doc.HasParseError()) << text;
  EXPECT_TRUE(doc.IsObject()) << text;
  return doc;
}

std::vector<std::string> memberNames(const rapidjson::Value& v) {
  std::vector<std::string> names;
  for (const auto& m : v.GetObject()) names.emplace_back(m.name.GetString(), m.name.GetStringLength());
  return names;
}

std::map<std::string, std::uint64_t> counts(const rapidjson::Value& v) {
  std::map<std::string, std::uint64_t> out;
  for (const auto& m : v.GetObject()) {
    out[std::string(m.name.GetString(), m.name.GetStringLength())] = m.value.GetUint64();
  }
  return out;
}

StatsSnapshot snapshot(std::uint64_t outputs, std::uint64_t dead_letters,
                       std::map<std::string, std::uint64_t> devices,
                       std::map<std::string, std::uint64_t> locales) {
  StatsSnapshot s;
  s.outputs = outputs;
  s.dead_letters = dead_letters;
  s.by_device_type = std::move(devices);
  s.by_locale = std::move(locales);
  return s;
}

TEST(FormatIsoMillis, FormatsUtcWithThreeFractionDigits) {
  EXPECT_EQ(formatIsoMillis(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(formatIsoMillis(1'694'479'551'123), "2023-09-12T00:45:51.123Z");
  EXPECT_EQ(formatIsoMillis(951'782'400'007), "2000-02-29T00:00:00.007Z");
  EXPECT_EQ(formatIsoMillis(kStart), "2025-11-25T10:00:00.000Z");
  EXPECT_EQ(formatIsoMillis(253'402'300'799'999), "9999-12-31T23:59:59.999Z");
  EXPECT_EQ(formatIsoMillis(-1), "1969-12-31T23:59:59.999Z");
}

TEST(Insights, NothingYetGivesNullTopsAndZeroCounts) {
  const Insights insights("host-1", kStart);
  const auto doc = parseJson(insights.latest(StatsSnapshot{}, kStart + 1500));
  EXPECT_EQ(memberNames(doc),
            (std::vector<std::string>{"instance", "window_start", "window_end", "records",
                                      "dead_letters", "by_device_type", "by_locale",
                                      "top_device_type", "top_locale", "cumulative"}));
  EXPECT_STREQ(doc["instance"].GetString(), "host-1");
  EXPECT_STREQ(doc["window_start"].GetString(), "2025-11-25T10:00:00.000Z");
  EXPECT_STREQ(doc["window_end"].GetString(), "2025-11-25T10:00:01.500Z");
  EXPECT_EQ(doc["records"].GetUint64(), 0U);
  EXPECT_EQ(doc["dead_letters"].GetUint64(), 0U);
  EXPECT_TRUE(doc["by_device_type"].ObjectEmpty());
  EXPECT_TRUE(doc["by_locale"].ObjectEmpty());
  for (const char* top : {"top_device_type", "top_locale"}) {
    EXPECT_EQ(memberNames(doc[top]), (std::vector<std::string>{"name", "count"}));
    EXPECT_TRUE(doc[top]["name"].IsNull()) << top;
    EXPECT_EQ(doc[top]["count"].GetUint64(), 0U) << top;
  }
  const auto& cumulative = doc["cumulative"];
  EXPECT_EQ(memberNames(cumulative),
            (std::vector<std::string>{"instance", "window_start", "window_end", "records",
                                      "dead_letters", "by_device_type", "by_locale",
                                      "top_device_type", "top_locale"}));
  EXPECT_TRUE(cumulative["top_locale"]["name"].IsNull());
}

TEST(Insights, WindowCountsTheDifferenceAndCumulativeEverything) {
  Insights insights("host-1", kStart);
  const auto first = snapshot(4, 1, {{"android", 3}, {"ios", 1}}, {{"RU", 2}, {"unknown", 2}});
  auto doc = parseJson(insights.roll(first, kStart + 5000));
  // Before the first interval ends the window is everything since start.
  EXPECT_STREQ(doc["window_start"].GetString(), "2025-11-25T10:00:00.000Z");
  EXPECT_STREQ(doc["window_end"].GetString(), "2025-11-25T10:00:05.000Z");
  EXPECT_EQ(doc["records"].GetUint64(), 4U);
  EXPECT_EQ(doc["dead_letters"].GetUint64(), 1U);
  EXPECT_EQ(counts(doc["by_device_type"]), first.by_device_type);
  EXPECT_STREQ(doc["top_device_type"]["name"].GetString(), "android");
  EXPECT_EQ(doc["top_device_type"]["count"].GetUint64(), 3U);

  const auto second = snapshot(10, 3, {{"android", 4}, {"ios", 1}, {"web", 5}},
                               {{"RU", 2}, {"unknown", 3}, {"DE", 5}});
  const std::string rolled = insights.roll(second, kStart + 10'000);
  doc = parseJson(rolled);
  EXPECT_STREQ(doc["window_start"].GetString(), "2025-11-25T10:00:05.000Z");
  EXPECT_STREQ(doc["window_end"].GetString(), "2025-11-25T10:00:10.000Z");
  EXPECT_EQ(doc["records"].GetUint64(), 6U);
  EXPECT_EQ(doc["dead_letters"].GetUint64(), 2U);
  // Zero-count entries (ios, RU) are left out of the window.
  EXPECT_EQ(counts(doc["by_device_type"]),
            (std::map<std::string, std::uint64_t>{{"android", 1}, {"web", 5}}));
  EXPECT_EQ(counts(doc["by_locale"]),
            (std::map<std::string, std::uint64_t>{{"DE", 5}, {"unknown", 1}}));
  EXPECT_STREQ(doc["top_device_type"]["name"].GetString(), "web");
  EXPECT_EQ(doc["top_device_type"]["count"].GetUint64(), 5U);
  EXPECT_STREQ(doc["top_locale"]["name"].GetString(), "DE");

  const auto& cumulative = doc["cumulative"];
  EXPECT_STREQ(cumulative["instance"].GetString(), "host-1");
  EXPECT_STREQ(cumulative["window_start"].GetString(), "2025-11-25T10:00:00.000Z");
  EXPECT_STREQ(cumulative["window_end"].GetString(), "2025-11-25T10:00:10.000Z");
  EXPECT_EQ(cumulative["records"].GetUint64(), 10U);
  EXPECT_EQ(cumulative["dead_letters"].GetUint64(), 3U);
  EXPECT_EQ(counts(cumulative["by_device_type"]), second.by_device_type);
  EXPECT_EQ(counts(cumulative["by_locale"]), second.by_locale);
  EXPECT_STREQ(cumulative["top_device_type"]["name"].GetString(), "web");
  EXPECT_STREQ(cumulative["top_locale"]["name"].GetString(), "DE");

  // latest() is the last rolled snapshot, whatever the current counts.
  EXPECT_EQ(insights.latest(snapshot(99, 0, {}, {}), kStart + 12'000), rolled);

  // A quiet window: nothing in it, the cumulative unchanged.
  doc = parseJson(insights.roll(second, kStart + 15'000));
  EXPECT_EQ(doc["records"].GetUint64(), 0U);
  EXPECT_TRUE(doc["by_device_type"].ObjectEmpty());
  EXPECT_TRUE(doc["top_device_type"]["name"].IsNull());
  EXPECT_EQ(doc["cumulative"]["top_device_type"]["count"].GetUint64(), 5U);
}

TEST(Insights, TiesGoToTheSmallerNameInByteOrder) {
  Insights insights("h", kStart);
  // "Z" (0x5A) < "a" (0x61) < "é" (0xC3 0xA9): byte order, not locale order.
  auto doc = parseJson(insights.roll(
      snapshot(6, 0, {{"\xC3\xA9t\xC3\xA9", 2}, {"b", 2}, {"a", 2}}, {{"ZZ", 3}, {"AA", 3}}),
      kStart + 1));
  EXPECT_STREQ(doc["top_device_type"]["name"].GetString(), "a");
  EXPECT_STREQ(doc["top_locale"]["name"].GetString(), "AA");
  doc = parseJson(insights.roll(snapshot(4, 0, {{"\xC3\xA9t\xC3\xA9", 5}, {"b", 2}, {"a", 2}, {"Z", 3}}, {}),
                                kStart + 2));
  // Window: été 3, Z 3 → "Z" wins the tie; cumulative: été 5 is the largest.
  EXPECT_STREQ(doc["top_device_type"]["name"].GetString(), "Z");
  EXPECT_EQ(doc["top_device_type"]["count"].GetUint64(), 3U);
  EXPECT_STREQ(doc["cumulative"]["top_device_type"]["name"].GetString(), "\xC3\xA9t\xC3\xA9");
}

TEST(Insights, NamesAreEscapedAndKeysSorted) {
  const std::string nasty = "say \"hi\"\\ \n\t\x01 \xE2\x82\xAC";  // quotes, controls, €
  Insights insights("host \"quoted\"", kStart);
  const std::string json =
      insights.roll(snapshot(3, 0, {{nasty, 1}, {"zeta", 1}, {"alpha", 1}}, {}), kStart + 1);
  EXPECT_EQ(json.find('\n'), std::string::npos) << "one line";
  EXPECT_NE(json.find("\\u0001"), std::string::npos) << json;
  const auto doc = parseJson(json);
  EXPECT_STREQ(doc["instance"].GetString(), "host \"quoted\"");
  EXPECT_EQ(memberNames(doc["by_device_type"]), (std::vector<std::string>{"alpha", nasty, "zeta"}));
  EXPECT_EQ(counts(doc["by_device_type"]).at(nasty), 1U);
}

TEST(Insights, IllFormedUtf8BecomesReplacementCharacters) {
  Insights insights("h", kStart);
  const std::string json = insights.roll(snapshot(1, 0, {{"bad\xFF", 1}}, {}), kStart + 1);
  const auto doc = parseJson(json);
  EXPECT_EQ(counts(doc["by_device_type"]).count("bad\xEF\xBF\xBD"), 1U) << json;
}

}  // namespace
}  // namespace loginflow
