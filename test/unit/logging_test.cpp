#include "loginflow/logging.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace loginflow {
namespace {

// Runs `body` with stderr (fd 2) redirected to a file; returns what was written.
template <typename F>
std::string captureStderr(F&& body) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("loginflow_logging_test_" + std::to_string(getpid()) + ".log");
  std::fflush(stderr);
  const int saved = dup(2);
  const int fd = open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0600);
  EXPECT_GE(fd, 0);
  dup2(fd, 2);
  close(fd);
  body();
  spdlog::default_logger()->flush();
  std::fflush(stderr);
  dup2(saved, 2);
  close(saved);
  std::ifstream in(path);
  std::stringstream out;
  out << in.rdbuf();
  std::filesystem::remove(path);
  return out.str();
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

int level(const char* name) {
  int l = -1;
  EXPECT_TRUE(parseLogLevel(name, l)) << name;
  return l;
}

TEST(Logging, ParsesLevelsAndFormats) {
  EXPECT_EQ(level("trace"), spdlog::level::trace);
  EXPECT_EQ(level("debug"), spdlog::level::debug);
  EXPECT_EQ(level("info"), spdlog::level::info);
  EXPECT_EQ(level("warn"), spdlog::level::warn);
  EXPECT_EQ(level("error"), spdlog::level::err);
  EXPECT_EQ(level("critical"), spdlog::level::critical);
  EXPECT_EQ(level("off"), spdlog::level::off);
  int l = 0;
  EXPECT_FALSE(parseLogLevel("verbose", l));
  EXPECT_FALSE(parseLogLevel("INFO", l));
  LogFormat f = LogFormat::kText;
  EXPECT_TRUE(parseLogFormat("json", f));
  EXPECT_EQ(f, LogFormat::kJson);
  EXPECT_TRUE(parseLogFormat("text", f));
  EXPECT_EQ(f, LogFormat::kText);
  EXPECT_FALSE(parseLogFormat("xml", f));
}

TEST(Logging, JsonLinesParseWithTheirFields) {
  const std::string out = captureStderr([] {
    setupLogging(level("info"), LogFormat::kJson);
    spdlog::info("consumer assigned partitions=4 topic=user-login lag=0.5");
    spdlog::warn("odd \"device\" \\ \t\x01 caf\xC3\xA9 bad\xFF byte");
    spdlog::debug("filtered out at info");
    spdlog::error("no fields here: a=b c");
  });
  const auto got = lines(out);
  ASSERT_EQ(got.size(), 3U) << out;
  const std::regex ts_format(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
  std::vector<rapidjson::Document> docs;
  for (const auto& line : got) {
    docs.emplace_back();
    docs.back().Parse(line.c_str(), line.size());
    ASSERT_FALSE(docs.back().HasParseError()) << line;
    ASSERT_TRUE(docs.back().IsObject()) << line;
    const auto& d = docs.back();
    ASSERT_TRUE(d.HasMember("ts") && d["ts"].IsString()) << line;
    EXPECT_TRUE(std::regex_match(d["ts"].GetString(), ts_format)) << line;
    EXPECT_STREQ(d["logger"].GetString(), "loginflow") << line;
    ASSERT_TRUE(d["msg"].IsString()) << line;
  }
  EXPECT_STREQ(docs[0]["level"].GetString(), "info");
  EXPECT_STREQ(docs[0]["msg"].GetString(), "consumer assigned partitions=4 topic=user-login lag=0.5");
  EXPECT_EQ(docs[0]["partitions"].GetInt(), 4);
  EXPECT_STREQ(docs[0]["topic"].GetString(), "user-login");
  EXPECT_DOUBLE_EQ(docs[0]["lag"].GetDouble(), 0.5);

  EXPECT_STREQ(docs[1]["level"].GetString(), "warn");
  EXPECT_EQ(std::string(docs[1]["msg"].GetString()),
            "odd \"device\" \\ \t\x01 caf\xC3\xA9 bad\xEF\xBF\xBD byte");

  EXPECT_STREQ(docs[2]["level"].GetString(), "error");
  EXPECT_FALSE(docs[2].HasMember("a")) << "key=value pairs are lifted only at the end";
}

TEST(Logging, TextIsTheDefaultFormat) {
  const std::string out = captureStderr([] {
    setupLogging(level("info"), LogFormat::kText);
    spdlog::info("plain message");
  });
  EXPECT_NE(out.find("plain message"), std::string::npos) << out;
  EXPECT_NE(out.find("info"), std::string::npos) << out;
  EXPECT_NE(out.front(), '{') << out;
}

TEST(RateLimitedLog, LogsOncePerIntervalAndCountsTheRest) {
  RateLimitedLog log(std::chrono::hours(1));
  std::uint64_t suppressed = 99;
  EXPECT_TRUE(log.shouldLog(suppressed));
  EXPECT_EQ(suppressed, 0U);
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(log.shouldLog(suppressed));
}

// Many threads at once: every call either logs or is counted, and the counts add up.
TEST(RateLimitedLog, IsExactUnderConcurrency) {
  RateLimitedLog log(std::chrono::milliseconds(5));
  std::atomic<std::uint64_t> logged{0};
  std::atomic<std::uint64_t> reported{0};
  constexpr int kThreads = 4;
  constexpr int kCalls = 20'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kCalls; ++i) {
        std::uint64_t suppressed = 0;
        if (log.shouldLog(suppressed)) {
          logged.fetch_add(1);
          reported.fetch_add(suppressed);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  // The repeats since the last report come with the next one (wait for it, with a deadline).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::uint64_t suppressed = 0;
  std::uint64_t pending_calls = 0;
  while (!log.shouldLog(suppressed)) {
    ++pending_calls;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline);
    std::this_thread::yield();
  }
  EXPECT_GE(logged.load(), 1U);
  EXPECT_EQ(logged.load() + reported.load() + suppressed, kThreads * kCalls + pending_calls);
}

}  // namespace
}  // namespace loginflow
