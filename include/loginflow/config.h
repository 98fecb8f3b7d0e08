// Command-line and environment configuration of every loginflow command.
//
// Parsing never touches the network. Errors are UsageError: the command exits 2 and prints
// what() — one line naming the option and what is wrong — on stderr.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "loginflow/logging.h"

namespace loginflow {

// A bad option, value or combination: exit status 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// --help was asked for: the text to print on stdout, exit status 0.
struct HelpRequested {
  std::string text;
};

enum class Ordering { kKey, kPartition, kUnordered };
std::string_view orderingName(Ordering o) noexcept;

// A librdkafka property from -X, LOGINFLOW_X or --kafka-config.
struct KafkaProperty {
  enum class Scope { kBoth, kConsumer, kProducer };
  std::string key;
  std::string value;
  Scope scope = Scope::kBoth;
  std::string origin;  // "-X", "LOGINFLOW_X", or the properties file's path (for messages)
};

struct RunConfig {
  std::string brokers = "localhost:9092";
  bool brokers_explicit = false;   // given by flag or environment (not the default)
  std::string group_id = "loginflow";
  bool group_id_explicit = false;
  std::string input_topic = "user-login";
  std::string output_topic = "processed-user-login";
  std::string dlq_topic = "user-login-dlq";
  std::string insights_topic = "login-insights";
  std::size_t workers = 0;  // 0 before parsing; then ≥ 1 (default: the number of CPUs)
  std::size_t queue_capacity = 8192;
  Ordering ordering = Ordering::kKey;
  std::chrono::milliseconds shutdown_timeout{30'000};
  std::chrono::milliseconds connect_timeout{30'000};
  std::string kafka_config_file;
  std::vector<KafkaProperty> kafka_properties;  // file first, then LOGINFLOW_X, then -X
  std::string http_address = "0.0.0.0";
  std::uint16_t http_port = 8080;
  std::chrono::milliseconds insights_interval{5'000};
  int log_level = 2;  // spdlog::level::info
  LogFormat log_format = LogFormat::kText;
  std::string instance_id;  // hostname
};

struct DemoConfig {
  double rate = 5000;  // events per second offered by the generator
  std::chrono::milliseconds duration{30'000};  // 0 = until SIGTERM/SIGINT
  int partitions = 4;
  std::size_t workers = 0;
  std::string http_address = "127.0.0.1";
  std::uint16_t http_port = 8080;
  double bad_fraction = 0.03;
  std::chrono::milliseconds insights_interval{5'000};
};

struct BrokerConfig {
  int partitions = 4;
};

struct GenConfig {
  std::string brokers;
  std::string topic = "user-login";
  std::uint64_t count = 10'000;  // 0 = until SIGTERM/SIGINT
  double rate = 0;               // events per second; 0 = as fast as the broker takes them
  std::uint64_t seed = 0;
  bool seed_explicit = false;
  double bad_fraction = 0.0;
  int partitions_hint = 0;
  std::vector<KafkaProperty> kafka_properties;
};

// The environment, injectable for tests. Returns nullopt for an unset variable.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup processEnvironment();

// Each parser throws UsageError on bad input and HelpRequested on --help / -h.
RunConfig parseRunArgs(const std::vector<std::string>& args, const EnvLookup& env);
DemoConfig parseDemoArgs(const std::vector<std::string>& args);
BrokerConfig parseBrokerArgs(const std::vector<std::string>& args);
GenConfig parseGenArgs(const std::vector<std::string>& args);

// The top-level usage text (`loginflow --help`).
std::string topLevelHelp();

// "30s", "500ms", "2m", "1h", or a bare number of seconds. nullopt when malformed.
std::optional<std::chrono::milliseconds> parseDuration(std::string_view s);

// Reads a Java-style .properties file (key=value, key: value, key value; # and ! comments;
// backslash line continuation and escapes). Throws UsageError naming the file and line.
std::vector<KafkaProperty> readPropertiesFile(const std::string& path);

}  // namespace loginflow
