// Bad options and configuration exit 2 with one line naming the option, before connecting;
// an unreachable broker exits 1 without hanging.
#include <gtest/gtest.h>

#include <tuple>

#include <fstream>

#include "support/kafka_test_util.h"

namespace loginflow {
namespace {

using namespace std::chrono_literals;

struct Outcome {
  int status;
  std::string output;
};

Outcome runBinary(std::vector<std::string> args, std::chrono::milliseconds timeout = 20s,
                  std::vector<std::string> env = {}) {
  args.insert(args.begin(), LOGINFLOW_BINARY);
  testing::Child child(args, testing::tempPath("cli.log"), env);
  auto st = child.wait(timeout);
  return {st.value_or(-1), child.log()};
}

int lines(const std::string& s) {
  return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
}

TEST(Cli, UnknownOptionExits2NamingIt) {
  auto o = runBinary({"run", "--bogus", "1"});
  EXPECT_EQ(o.status, 2);
  EXPECT_NE(o.output.find("--bogus"), std::string::npos) << o.output;
  EXPECT_EQ(lines(o.output), 1) << o.output;
}

TEST(Cli, BadValuesExit2NamingTheOption) {
  for (auto args : std::vector<std::vector<std::string>>{{"run", "--workers", "zero"},
                                                        {"run", "--workers", "0"},
                                                        {"run", "--ordering", "random"},
                                                        {"run", "--shutdown-timeout", "soon"},
                                                        {"run", "--http-port", "70000"},
                                                        {"run", "--http-address", "localhost"},
                                                        {"run", "--http-address", "300.1.1.1"},
                                                        {"demo", "--http-address", "localhost"},
                                                        {"run", "--log-format", "xml"},
                                                        {"demo", "--rate", "-5"},
                                                        {"gen", "--count", "10"}}) {
    auto o = runBinary(args);
    EXPECT_EQ(o.status, 2) << args[1] << ": " << o.output;
    EXPECT_EQ(lines(o.output), 1) << o.output;
    EXPECT_NE(o.output.find(args[1] == "--count" ? "--brokers" : args[1]), std::string::npos) << o.output;
  }
}

TEST(Cli, EnvironmentIsReadAndFlagsWin) {
  auto o = runBinary({"run"}, 20s, {"LOGINFLOW_WORKERS=abc"});
  EXPECT_EQ(o.status, 2);
  EXPECT_NE(o.output.find("LOGINFLOW_WORKERS"), std::string::npos) << o.output;
  // the flag wins: the environment's value is not used
  auto o2 = runBinary({"run", "--queue-capacity", "2", "--workers", "4"}, 20s, {"LOGINFLOW_WORKERS=abc"});
  EXPECT_EQ(o2.status, 2);
  EXPECT_NE(o2.output.find("--queue-capacity"), std::string::npos) << o2.output;
}

TEST(Cli, ContradictoryOrUnsafeSettingsExit2BeforeConnecting) {
  const std::string unreachable = "127.0.0.1:1";
  std::string props = testing::tempPath("props");
  for (auto args : std::vector<std::vector<std::string>>{
           {"run", "--brokers", unreachable, "--workers", "8", "--queue-capacity", "4"},
           {"run", "--brokers", unreachable, "--input-topic", "a", "--output-topic", "a"},
           {"run", "--brokers", unreachable, "-X", "no.such.property=1"},
           {"run", "--brokers", unreachable, "-X", "producer.acks=1"},
           {"run", "--brokers", unreachable, "--kafka-config", "/nonexistent/client.properties"}}) {
    auto start = testing::Clock::now();
    auto o = runBinary(args);
    EXPECT_EQ(o.status, 2) << o.output;
    EXPECT_EQ(lines(o.output), 1) << o.output;
    EXPECT_LT(testing::Clock::now() - start, 5s) << "should fail before connecting";
  }
}

// The settings that would break at-least-once are judged as librdkafka reads them: any spelling
// of a boolean it accepts, any name that sets the same property, from -X, LOGINFLOW_X and a
// --kafka-config file alike. Each is refused with exit 2, one line naming it, before connecting.
TEST(Cli, UnsafeSettingsAreRefusedHoweverTheyAreSpelled) {
  const std::string unreachable = "127.0.0.1:1";
  const std::vector<std::string> unsafe = {
      "enable.auto.offset.store=true", "enable.auto.offset.store=1",          "enable.auto.offset.store=t",
      "enable.auto.offset.store=TRUE", "consumer.enable.auto.offset.store=T", "enable.idempotence=false",
      "enable.idempotence=0",          "producer.enable.idempotence=f",       "enable.idempotence=FALSE",
      "acks=1",                        "acks=0",                              "request.required.acks=1",
      "topic.acks=1",                  "producer.topic.request.required.acks=0",
  };
  const std::string file = testing::tempPath("unsafe.properties");
  for (const auto& kv : unsafe) {
    // As the message names it: without the consumer./producer. scope.
    const bool scoped = kv.rfind("consumer.", 0) == 0 || kv.rfind("producer.", 0) == 0;
    const std::string named = scoped ? kv.substr(kv.find('.') + 1) : kv;
    {
      std::ofstream f(file);
      f << kv << "\n";
    }
    for (const auto& [how, args, env] : std::vector<std::tuple<std::string, std::vector<std::string>, std::vector<std::string>>>{
             {"-X", {"run", "--brokers", unreachable, "-X", kv}, {}},
             {"LOGINFLOW_X", {"run", "--brokers", unreachable}, {"LOGINFLOW_X=" + kv}},
             {"--kafka-config", {"run", "--brokers", unreachable, "--kafka-config", file}, {}}}) {
      auto start = testing::Clock::now();
      auto o = runBinary(args, 20s, env);
      EXPECT_EQ(o.status, 2) << how << " " << kv << ": " << o.output;
      EXPECT_EQ(lines(o.output), 1) << o.output;
      EXPECT_NE(o.output.find(named), std::string::npos) << "the line names the setting: " << o.output;
      EXPECT_LT(testing::Clock::now() - start, 5s) << "should fail before connecting";
    }
  }
  // What is safe is not refused (these then fail to connect: exit 1): loginflow's own commit
  // modes, the guarded values spelled otherwise, and a guarded consumer setting given to the
  // producer only (it has no effect there).
  for (const std::string kv : {"enable.auto.commit=true", "enable.auto.commit=false", "enable.auto.offset.store=0",
                               "enable.idempotence=1", "acks=all", "acks=-1", "producer.enable.auto.offset.store=true"}) {
    auto o = runBinary({"run", "--brokers", unreachable, "--connect-timeout", "1s", "-X", kv});
    EXPECT_EQ(o.status, 1) << kv << ": " << o.output;
  }
}

TEST(Cli, PropertiesFileIsRead) {
  std::string path = testing::tempPath("client.properties");
  {
    std::ofstream f(path);
    f << "# secrets stay off the command line\nsasl.password = s3cret\nno.such.property: 1\n";
  }
  auto o = runBinary({"run", "--brokers", "127.0.0.1:1", "--kafka-config", path});
  EXPECT_EQ(o.status, 2);
  EXPECT_NE(o.output.find("no.such.property"), std::string::npos) << o.output;
  EXPECT_EQ(o.output.find("s3cret"), std::string::npos) << "a secret leaked into the output";
  std::remove(path.c_str());
}

TEST(Cli, UnreachableBrokerExits1WithoutHanging) {
  auto o = runBinary({"run", "--brokers", "127.0.0.1:1", "--connect-timeout", "2s", "--http-port", "0"}, 20s);
  EXPECT_EQ(o.status, 1) << o.output;
  EXPECT_NE(o.output.find("cannot reach the Kafka brokers at 127.0.0.1:1"), std::string::npos) << o.output;
}

TEST(Cli, HelpDocumentsEveryRunOption) {
  auto o = runBinary({"run", "--help"});
  EXPECT_EQ(o.status, 0);
  for (const char* flag : {"--brokers", "--group-id", "--input-topic", "--output-topic", "--dlq-topic",
                           "--insights-topic", "--workers", "--queue-capacity", "--ordering", "--shutdown-timeout",
                           "--kafka-config", "--http-address", "--http-port", "--insights-interval", "--log-level",
                           "--log-format", "-X"})
    EXPECT_NE(o.output.find(flag), std::string::npos) << flag;
  EXPECT_EQ(runBinary({"--help"}).status, 0);
  EXPECT_EQ(runBinary({"nope"}).status, 2);
}

}  // namespace
}  // namespace loginflow
