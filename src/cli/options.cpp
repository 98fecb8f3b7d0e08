// Option tables and the small parser behind every command's flags.
//
// Each command declares a table of options (name, value name, help, default, setter). The
// parser accepts `--name value` and `--name=value`; `run` also reads LOGINFLOW_<NAME> from the
// environment first (flags win) and collects `-X key=value` librdkafka properties. Every error
// is one line naming the option: "loginflow run: --workers: 'x' is not a whole number ≥ 1".
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <system_error>

#include "loginflow/config.h"
#include "loginflow/kafka.h"

namespace loginflow {
namespace {

using Setter = std::function<std::string(std::string_view)>;  // returns "" or the problem

struct Option {
  std::string name;        // without dashes
  std::string value_name;  // shown in --help
  std::string help;
  std::string default_text;
  Setter set;
};

std::string envName(std::string_view flag) {
  std::string out = "LOGINFLOW_";
  for (char c : flag) out += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string quoted(std::string_view v) { return "'" + std::string(v) + "'"; }

template <typename T>
bool parseUnsigned(std::string_view s, T& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

bool parseDouble(std::string_view s, double& out) {
  if (s.empty()) return false;
  std::string tmp(s);
  char* end = nullptr;
  errno = 0;
  out = std::strtod(tmp.c_str(), &end);
  return errno == 0 && end == tmp.c_str() + tmp.size() && std::isfinite(out);
}

Setter stringSetter(std::string& target, bool* explicit_flag = nullptr) {
  return [&target, explicit_flag](std::string_view v) -> std::string {
    if (v.empty()) return "must not be empty";
    target = std::string(v);
    if (explicit_flag) *explicit_flag = true;
    return "";
  };
}

template <typename T>
Setter countSetter(T& target, T min, T max) {
  return [&target, min, max](std::string_view v) -> std::string {
    T n{};
    if (!parseUnsigned(v, n) || n < min || n > max)
      return quoted(v) + " is not a whole number from " + std::to_string(min) + " to " +
             std::to_string(max);
    target = n;
    return "";
  };
}

Setter durationSetter(std::chrono::milliseconds& target, bool allow_zero) {
  return [&target, allow_zero](std::string_view v) -> std::string {
    auto d = parseDuration(v);
    if (!d || (!allow_zero && d->count() == 0))
      return quoted(v) + " is not a duration" + (allow_zero ? "" : " above zero") +
             " (like 30s, 500ms, 2m)";
    target = *d;
    return "";
  };
}

Setter rateSetter(double& target, bool allow_zero) {
  return [&target, allow_zero](std::string_view v) -> std::string {
    double d = 0;
    if (!parseDouble(v, d) || d < 0 || (!allow_zero && d == 0) || d > 1e9)
      return quoted(v) + " is not a rate in events per second" + (allow_zero ? " (0 = unlimited)" : " above zero");
    target = d;
    return "";
  };
}

Setter fractionSetter(double& target) {
  return [&target](std::string_view v) -> std::string {
    double d = 0;
    if (!parseDouble(v, d) || d < 0 || d > 1) return quoted(v) + " is not a fraction from 0 to 1";
    target = d;
    return "";
  };
}

// An IPv4 or IPv6 address literal (what the HTTP endpoint binds to; a host name is refused
// here rather than failing to bind after start-up).
Setter addressSetter(std::string& target) {
  return [&target](std::string_view v) -> std::string {
    const std::string s(v);
    in_addr a4{};
    in6_addr a6{};
    if (inet_pton(AF_INET, s.c_str(), &a4) != 1 && inet_pton(AF_INET6, s.c_str(), &a6) != 1)
      return quoted(v) + " is not an IP address (e.g. 0.0.0.0, 127.0.0.1, ::, ::1); host names are not resolved";
    target = s;
    return "";
  };
}

Setter portSetter(std::uint16_t& target) {
  return [&target](std::string_view v) -> std::string {
    unsigned n = 0;
    if (!parseUnsigned(v, n) || n > 65535) return quoted(v) + " is not a port from 0 to 65535";
    target = static_cast<std::uint16_t>(n);
    return "";
  };
}

std::string helpText(std::string_view usage, std::string_view about, const std::vector<Option>& opts,
                     bool with_env, std::string_view extra) {
  std::ostringstream o;
  o << "Usage: " << usage << "\n\n" << about << "\n\nOptions:\n";
  for (const auto& opt : opts) {
    std::string left = "  --" + opt.name + (opt.value_name.empty() ? "" : " " + opt.value_name);
    o << left;
    if (left.size() < 30) o << std::string(30 - left.size(), ' ');
    else o << "\n" << std::string(30, ' ');
    o << opt.help;
    if (!opt.default_text.empty()) o << " [default: " << opt.default_text << "]";
    if (with_env) o << " (env " << envName(opt.name) << ")";
    o << "\n";
  }
  o << extra;
  o << "  -h, --help                  this help\n";
  return o.str();
}

struct ParseSpec {
  std::string command;  // "run"
  std::string usage;
  std::string about;
  std::string extra_help;
  bool env = false;
  std::vector<KafkaProperty>* x_props = nullptr;  // -X allowed when set
};

[[noreturn]] void fail(const ParseSpec& spec, const std::string& what) {
  throw UsageError("loginflow " + spec.command + ": " + what);
}

void addXProperty(const ParseSpec& spec, std::string_view kv, std::string origin) {
  auto eq = kv.find('=');
  if (eq == std::string_view::npos || eq == 0)
    fail(spec, (origin == "-X" ? std::string("-X: ") : origin + ": ") + quoted(kv) +
                   " is not key=value (a librdkafka property)");
  KafkaProperty p;
  std::string key(kv.substr(0, eq));
  if (key.rfind("consumer.", 0) == 0) {
    p.scope = KafkaProperty::Scope::kConsumer;
    key = key.substr(9);
  } else if (key.rfind("producer.", 0) == 0) {
    p.scope = KafkaProperty::Scope::kProducer;
    key = key.substr(9);
  }
  if (key.empty()) fail(spec, "-X: " + quoted(kv) + " names no property");
  p.key = key;
  p.value = std::string(kv.substr(eq + 1));
  p.origin = std::move(origin);
  spec.x_props->push_back(std::move(p));
}

void applyOne(const ParseSpec& spec, const Option& opt, std::string_view value, const std::string& source) {
  std::string problem = opt.set(value);
  if (!problem.empty()) fail(spec, source + ": " + problem);
}

void parseArgs(const ParseSpec& spec, const std::vector<Option>& opts, const std::vector<std::string>& args,
               const EnvLookup* env) {
  auto find = [&](std::string_view name) -> const Option* {
    for (const auto& o : opts)
      if (o.name == name) return &o;
    return nullptr;
  };
  if (spec.env && env) {
    // Flags win: an environment variable is not even read when its flag is given.
    auto given = [&](const std::string& name) {
      for (const auto& a : args)
        if (a == "--" + name || a.rfind("--" + name + "=", 0) == 0) return true;
      return false;
    };
    for (const auto& o : opts) {
      if (given(o.name)) continue;
      if (auto v = (*env)(envName(o.name))) applyOne(spec, o, *v, envName(o.name));
    }
    if (spec.x_props) {
      if (auto v = (*env)("LOGINFLOW_X")) {
        std::string item;
        std::string all = *v;
        for (char& c : all)
          if (c == '\n') c = ';';
        std::stringstream ss(all);
        while (std::getline(ss, item, ';')) {
          auto b = item.find_first_not_of(" \t\r");
          if (b == std::string::npos) continue;
          auto e = item.find_last_not_of(" \t\r");
          addXProperty(spec, std::string_view(item).substr(b, e - b + 1), "LOGINFLOW_X");
        }
      }
    }
  }
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") throw HelpRequested{};
    if (spec.x_props && a.rfind("-X", 0) == 0) {
      std::string kv = a.substr(2);
      if (kv.empty()) {
        if (i + 1 >= args.size()) fail(spec, "-X: needs key=value");
        kv = args[++i];
      }
      addXProperty(spec, kv, "-X");
      continue;
    }
    if (a.rfind("--", 0) != 0 || a.size() == 2) {
      fail(spec, "unexpected argument " + quoted(a) + " (see loginflow " + spec.command + " --help)");
    }
    std::string name = a.substr(2);
    std::optional<std::string> value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    const Option* opt = find(name);
    if (!opt) fail(spec, "unknown option " + quoted("--" + name) + " (see loginflow " + spec.command + " --help)");
    if (!value) {
      if (i + 1 >= args.size()) fail(spec, "--" + name + ": needs a value (" + opt->value_name + ")");
      value = args[++i];
    }
    applyOne(spec, *opt, *value, "--" + name);
  }
}

template <typename F>
auto withHelp(const ParseSpec& spec, const std::vector<Option>& opts, F&& body) {
  try {
    return body();
  } catch (HelpRequested&) {
    throw HelpRequested{helpText(spec.usage, spec.about, opts, spec.env, spec.extra_help)};
  }
}

std::string hostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "loginflow";
  return buf;
}

std::size_t cpuCount() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

}  // namespace

std::string_view orderingName(Ordering o) noexcept {
  switch (o) {
    case Ordering::kKey: return "key";
    case Ordering::kPartition: return "partition";
    case Ordering::kUnordered: return "unordered";
  }
  return "key";
}

EnvLookup processEnvironment() {
  return [](const std::string& name) -> std::optional<std::string> {
    // Read once, at start-up, before any thread exists; nothing in loginflow calls setenv.
    const char* v = std::getenv(name.c_str());  // NOLINT(concurrency-mt-unsafe)
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

std::optional<std::chrono::milliseconds> parseDuration(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  std::string_view num = s.substr(0, i), unit = s.substr(i);
  double v = 0;
  if (!parseDouble(num, v) || v < 0) return std::nullopt;
  double ms = 0;
  if (unit.empty() || unit == "s") ms = v * 1000;
  else if (unit == "ms") ms = v;
  else if (unit == "m") ms = v * 60'000;
  else if (unit == "h") ms = v * 3'600'000;
  else return std::nullopt;
  if (ms > 1e12) return std::nullopt;
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(ms)));
}

std::vector<KafkaProperty> readPropertiesFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw UsageError("loginflow run: --kafka-config: cannot read " + quoted(path) + ": " +
                     std::generic_category().message(errno));
  }
  std::vector<KafkaProperty> out;
  std::string line, logical;
  int lineno = 0, start_line = 0;
  auto unescape = [](std::string_view s) {
    std::string r;
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s[i] != '\\' || i + 1 >= s.size()) {
        r += s[i];
        continue;
      }
      char c = s[++i];
      switch (c) {
        case 't': r += '\t'; break;
        case 'n': r += '\n'; break;
        case 'r': r += '\r'; break;
        case 'f': r += '\f'; break;
        case 'u': {
          unsigned cp = 0;
          if (i + 4 < s.size()) {
            std::from_chars(s.data() + i + 1, s.data() + i + 5, cp, 16);
            i += 4;
          }
          if (cp < 0x80) r += static_cast<char>(cp);
          else if (cp < 0x800) {
            r += static_cast<char>(0xC0 | (cp >> 6));
            r += static_cast<char>(0x80 | (cp & 0x3F));
          } else {
            r += static_cast<char>(0xE0 | (cp >> 12));
            r += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            r += static_cast<char>(0x80 | (cp & 0x3F));
          }
          break;
        }
        default: r += c;
      }
    }
    return r;
  };
  auto flush = [&](const std::string& l) {
    std::size_t b = l.find_first_not_of(" \t\f");
    if (b == std::string::npos || l[b] == '#' || l[b] == '!') return;
    // key ends at the first unescaped '=', ':' or white space
    std::size_t k = b;
    while (k < l.size() && l[k] != '=' && l[k] != ':' && l[k] != ' ' && l[k] != '\t' && l[k] != '\f') {
      if (l[k] == '\\') ++k;
      ++k;
    }
    std::string key = unescape(std::string_view(l).substr(b, std::min(k, l.size()) - b));
    std::size_t v = k;
    while (v < l.size() && (l[v] == ' ' || l[v] == '\t' || l[v] == '\f')) ++v;
    if (v < l.size() && (l[v] == '=' || l[v] == ':')) ++v;
    while (v < l.size() && (l[v] == ' ' || l[v] == '\t' || l[v] == '\f')) ++v;
    std::string value = v < l.size() ? unescape(std::string_view(l).substr(v)) : std::string();
    if (key.empty())
      throw UsageError("loginflow run: --kafka-config: " + path + ":" + std::to_string(start_line) +
                       ": a line with no property name");
    KafkaProperty p;
    p.key = key;
    p.value = value;
    p.origin = path + ":" + std::to_string(start_line);
    if (p.key.rfind("consumer.", 0) == 0) {
      p.scope = KafkaProperty::Scope::kConsumer;
      p.key = p.key.substr(9);
    } else if (p.key.rfind("producer.", 0) == 0) {
      p.scope = KafkaProperty::Scope::kProducer;
      p.key = p.key.substr(9);
    }
    out.push_back(std::move(p));
  };
  bool continued = false;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!continued) {
      logical.clear();
      start_line = lineno;
      std::size_t b = line.find_first_not_of(" \t\f");
      if (b == std::string::npos || line[b] == '#' || line[b] == '!') continue;
    } else {
      std::size_t b = line.find_first_not_of(" \t\f");
      line = b == std::string::npos ? "" : line.substr(b);
    }
    // an odd number of trailing backslashes continues the line
    std::size_t bs = 0;
    while (bs < line.size() && line[line.size() - 1 - bs] == '\\') ++bs;
    if (bs % 2 == 1) {
      logical += line.substr(0, line.size() - 1);
      continued = true;
      continue;
    }
    logical += line;
    continued = false;
    flush(logical);
  }
  if (continued) flush(logical);
  if (in.bad()) throw UsageError("loginflow run: --kafka-config: error reading " + quoted(path));
  return out;
}

RunConfig parseRunArgs(const std::vector<std::string>& args, const EnvLookup& env) {
  RunConfig c;
  c.workers = cpuCount();
  std::string ordering = "key", log_level = "info", log_format = "text";
  std::vector<KafkaProperty> x;
  std::vector<Option> opts = {
      {"brokers", "LIST", "bootstrap servers, host:port[,host:port…]", c.brokers, stringSetter(c.brokers, &c.brokers_explicit)},
      {"group-id", "ID", "consumer group", c.group_id, stringSetter(c.group_id, &c.group_id_explicit)},
      {"input-topic", "TOPIC", "topic of user-login events", c.input_topic, stringSetter(c.input_topic)},
      {"output-topic", "TOPIC", "topic for processed events", c.output_topic, stringSetter(c.output_topic)},
      {"dlq-topic", "TOPIC", "dead-letter topic", c.dlq_topic, stringSetter(c.dlq_topic)},
      {"insights-topic", "TOPIC", "topic for insight snapshots", c.insights_topic, stringSetter(c.insights_topic)},
      {"workers", "N", "worker threads", "number of CPUs (" + std::to_string(c.workers) + ")",
       countSetter<std::size_t>(c.workers, 1, 1024)},
      {"queue-capacity", "N", "records in flight inside the process, all queues together", "8192",
       countSetter<std::size_t>(c.queue_capacity, 1, 10'000'000)},
      {"ordering", "MODE", "key | partition | unordered", "key",
       [&ordering](std::string_view v) -> std::string {
         if (v != "key" && v != "partition" && v != "unordered")
           return quoted(v) + " is not one of key, partition, unordered";
         ordering = std::string(v);
         return "";
       }},
      {"shutdown-timeout", "DURATION", "bound on a graceful stop", "30s", durationSetter(c.shutdown_timeout, false)},
      {"connect-timeout", "DURATION", "how long to wait for the brokers at start-up before exiting 1", "30s",
       durationSetter(c.connect_timeout, false)},
      {"kafka-config", "FILE", "Java-style properties file of librdkafka properties", "",
       stringSetter(c.kafka_config_file)},
      {"http-address", "ADDR", "address of the HTTP endpoint (an IP address)", c.http_address, addressSetter(c.http_address)},
      {"http-port", "PORT", "port of /metrics /healthz /readyz /insights (0 = any free port)", "8080",
       portSetter(c.http_port)},
      {"insights-interval", "DURATION", "how often insights are merged, logged and published", "5s",
       durationSetter(c.insights_interval, false)},
      {"log-level", "LEVEL", "trace | debug | info | warn | error | critical | off", "info",
       [&c](std::string_view v) -> std::string {
         if (!parseLogLevel(v, c.log_level)) return quoted(v) + " is not one of trace, debug, info, warn, error, critical, off";
         return "";
       }},
      {"log-format", "FORMAT", "text | json (one JSON object per line)", "text",
       [&c](std::string_view v) -> std::string {
         if (!parseLogFormat(v, c.log_format)) return quoted(v) + " is not one of text, json";
         return "";
       }},
  };
  ParseSpec spec{"run", "loginflow run [options] [-X key=value …]",
                 "Consume user-login events in a consumer group, transform them on a pool of workers,\n"
                 "produce outputs and dead letters, serve metrics; until SIGTERM/SIGINT.\n"
                 "Every option can also be set by the environment variable shown; flags win.",
                 "  -X KEY=VALUE                any librdkafka property, repeatable; applied to the consumer and\n"
                 "                              the producer, or to one only with the prefix consumer. / producer.\n"
                 "                              (env LOGINFLOW_X: KEY=VALUE items separated by ';' or newlines)\n",
                 true, &x};
  withHelp(spec, opts, [&] {
    parseArgs(spec, opts, args, &env);
    return 0;
  });
  c.ordering = ordering == "key" ? Ordering::kKey : ordering == "partition" ? Ordering::kPartition : Ordering::kUnordered;

  if (!c.kafka_config_file.empty()) c.kafka_properties = readPropertiesFile(c.kafka_config_file);
  for (auto& p : x) c.kafka_properties.push_back(std::move(p));

  // Contradictions and settings that would break the guarantees: refuse before connecting.
  if (c.queue_capacity < c.workers)
    fail(spec, "--queue-capacity: " + std::to_string(c.queue_capacity) + " is below --workers (" +
                   std::to_string(c.workers) + "): every worker needs room for at least one record");
  if (c.input_topic == c.output_topic)
    fail(spec, "--output-topic: the same topic as --input-topic (" + c.input_topic + ") would feed the output back in");
  if (c.input_topic == c.dlq_topic)
    fail(spec, "--dlq-topic: the same topic as --input-topic (" + c.input_topic + ") would feed dead letters back in");
  if (c.input_topic == c.insights_topic)
    fail(spec, "--insights-topic: the same topic as --input-topic (" + c.input_topic + ")");
  if (c.output_topic == c.dlq_topic)
    fail(spec, "--dlq-topic: the same topic as --output-topic (" + c.output_topic + ") would mix dead letters into the output");
  for (const auto& p : c.kafka_properties) {
    auto refuse = [&](const std::string& why) { fail(spec, p.origin + ": " + p.key + "=" + p.value + ": " + why); };
    if (auto why = kafka::unsafeSetting(p)) refuse(*why);
    if (p.key == "bootstrap.servers" || p.key == "metadata.broker.list") {
      if (c.brokers_explicit && p.value != c.brokers)
        refuse("contradicts --brokers " + c.brokers + "; set the brokers in one place");
      c.brokers = p.value;
    }
    if (p.key == "group.id") {
      if (c.group_id_explicit && p.value != c.group_id)
        refuse("contradicts --group-id " + c.group_id + "; set the group in one place");
      c.group_id = p.value;
    }
  }
  c.instance_id = hostName();
  return c;
}

DemoConfig parseDemoArgs(const std::vector<std::string>& args) {
  DemoConfig c;
  c.workers = cpuCount();
  std::vector<Option> opts = {
      {"rate", "R", "events per second offered by the generator", "5000", rateSetter(c.rate, false)},
      {"duration", "DURATION", "how long to generate (0 = until SIGTERM/SIGINT)", "30s", durationSetter(c.duration, true)},
      {"partitions", "P", "partitions of the embedded broker's topics", "4", countSetter<int>(c.partitions, 1, 256)},
      {"workers", "N", "worker threads", "number of CPUs", countSetter<std::size_t>(c.workers, 1, 1024)},
      {"bad-fraction", "F", "fraction of malformed events", "0.03", fractionSetter(c.bad_fraction)},
      {"insights-interval", "DURATION", "how often insights are merged and printed", "5s",
       durationSetter(c.insights_interval, false)},
      {"http-address", "ADDR", "address of the HTTP endpoint (an IP address)", c.http_address, addressSetter(c.http_address)},
      {"http-port", "PORT", "port of /metrics /healthz /readyz /insights (0 = any free port)", "8080",
       portSetter(c.http_port)},
  };
  ParseSpec spec{"demo", "loginflow demo [options]",
                 "Everything on one machine: an embedded Kafka-protocol broker, a generator of realistic\n"
                 "user-login traffic, the pipeline and the HTTP endpoint. Prints live progress, insights and\n"
                 "a summary at the end.",
                 "", false, nullptr};
  withHelp(spec, opts, [&] {
    parseArgs(spec, opts, args, nullptr);
    return 0;
  });
  return c;
}

BrokerConfig parseBrokerArgs(const std::vector<std::string>& args) {
  BrokerConfig c;
  std::vector<Option> opts = {
      {"partitions", "P", "partitions of each topic it creates", "4", countSetter<int>(c.partitions, 1, 256)},
  };
  ParseSpec spec{"broker", "loginflow broker [--partitions P]",
                 "The embedded Kafka-protocol broker (librdkafka's mock cluster) alone, on loopback.\n"
                 "Prints bootstrap=HOST:PORT as its first line of stdout and runs until SIGTERM/SIGINT.\n"
                 "Creates user-login, processed-user-login, user-login-dlq and login-insights.",
                 "", false, nullptr};
  withHelp(spec, opts, [&] {
    parseArgs(spec, opts, args, nullptr);
    return 0;
  });
  return c;
}

GenConfig parseGenArgs(const std::vector<std::string>& args) {
  GenConfig c;
  std::vector<Option> opts = {
      {"brokers", "LIST", "bootstrap servers (required)", "", stringSetter(c.brokers)},
      {"topic", "TOPIC", "topic to produce to", c.topic, stringSetter(c.topic)},
      {"count", "N", "events to produce (0 = until SIGTERM/SIGINT)", "10000",
       countSetter<std::uint64_t>(c.count, 0, 1'000'000'000'000ULL)},
      {"rate", "R", "events per second (0 = as fast as possible)", "0", rateSetter(c.rate, true)},
      {"seed", "S", "random seed (same seed, same events)", "random",
       [&c](std::string_view v) -> std::string {
         if (!parseUnsigned(v, c.seed)) return quoted(v) + " is not a whole number";
         c.seed_explicit = true;
         return "";
       }},
      {"bad-fraction", "F", "fraction of malformed events, of every dead-letter kind", "0", fractionSetter(c.bad_fraction)},
  };
  ParseSpec spec{"gen", "loginflow gen --brokers B [options] [-X key=value …]",
                 "Load generator: realistic user-login events, keyed by user_id, with a chosen fraction of\n"
                 "malformed ones.",
                 "  -X KEY=VALUE                any librdkafka producer property, repeatable\n", false,
                 &c.kafka_properties};
  withHelp(spec, opts, [&] {
    parseArgs(spec, opts, args, nullptr);
    return 0;
  });
  if (c.brokers.empty()) fail(spec, "--brokers: required (the bootstrap servers to produce to)");
  return c;
}

std::string topLevelHelp() {
  return "Usage: loginflow COMMAND [options]\n"
         "\n"
         "A stream processor for user-login events on Apache Kafka.\n"
         "\n"
         "Commands:\n"
         "  run      the service: consume, transform, produce, until SIGTERM/SIGINT\n"
         "  demo     everything on one machine: embedded broker, traffic generator, pipeline, HTTP\n"
         "  broker   the embedded Kafka-protocol broker alone (prints bootstrap=HOST:PORT)\n"
         "  gen      load generator of realistic user-login events\n"
         "\n"
         "  loginflow COMMAND --help   options of one command\n"
         "  loginflow --version        the version\n"
         "\n"
         "Exit status: 0 clean stop, 1 runtime fault, 2 bad options or configuration.\n";
}

}  // namespace loginflow
