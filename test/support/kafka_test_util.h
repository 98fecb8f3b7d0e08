// Helpers for the integration tests: the loginflow binary as a child process, producing
// generated events, reading topics back, committed offsets. Header-only, test code.
#pragma once

// librdkafka's RD_KAFKA_V_* macros expand to C-style casts.
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <arpa/inet.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstdint>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "loginflow/generator.h"
#include "loginflow/kafka.h"

namespace loginflow::testing {

using Clock = std::chrono::steady_clock;

// Waits for `cond` with a deadline; never a fixed sleep.
template <typename F>
bool waitFor(F&& cond, std::chrono::milliseconds timeout, std::chrono::milliseconds step = std::chrono::milliseconds(20)) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(step);
  }
  return cond();
}

// A child process (the real loginflow binary). Killed with SIGKILL on destruction if still
// running, or when the test process dies, so no test leaves a process behind.
class Child {
 public:
  Child(const std::vector<std::string>& args, const std::string& log_path,
        const std::vector<std::string>& env = {}) : log_path_(log_path) {
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      // Also gone when the test process dies without running destructors (a ctest timeout, a
      // crash): the kernel sends SIGKILL when the forking thread exits. Children are started
      // from the test's main thread.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
      }
      for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
      std::vector<char*> argv;
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  ~Child() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      int st = 0;
      waitpid(pid_, &st, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  void signal(int sig) const { kill(pid_, sig); }

  // The exit status (or 128+signal), or nullopt when still running after the timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout) {
    if (exited_) return status_;
    const auto deadline = Clock::now() + timeout;
    while (true) {
      int st = 0;
      pid_t r = waitpid(pid_, &st, WNOHANG);
      if (r == pid_) {
        exited_ = true;
        status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        return status_;
      }
      if (Clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  bool running() {
    if (exited_) return false;
    return !wait(std::chrono::milliseconds(0)).has_value();
  }
  std::string log() const {
    std::ifstream in(log_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  // Peak resident memory (VmHWM) in KiB; 0 when unknown.
  long peakRssKiB() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("VmHWM:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
    return 0;
  }

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  int status_ = -1;
  std::string log_path_;
};

inline std::string tempPath(const std::string& name) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/loginflow-test-" + std::to_string(getpid()) + "-" + name;
}

struct Record {
  std::int32_t partition = -1;
  std::int64_t offset = -1;
  bool key_null = true;
  std::string key;
  bool value_null = true;
  std::string value;
  std::map<std::string, std::string> headers;
};

inline kafka::HandlePtr makeProducer(const std::string& bootstrap) {
  auto base = kafka::producerDefaults();
  base.emplace_back("bootstrap.servers", bootstrap);
  base.emplace_back("message.max.bytes", "4194304");
  base.emplace_back("log_level", "3");
  return kafka::createClient(RD_KAFKA_PRODUCER, kafka::buildConf(base, {}, kafka::Role::kProducer));
}

// Produces `events` to `topic` and waits until every one is acknowledged.
inline void produceAll(const std::string& bootstrap, const std::string& topic, const std::vector<GeneratedEvent>& events) {
  auto p = makeProducer(bootstrap);
  for (const auto& e : events) {
    while (true) {
      rd_kafka_resp_err_t err = rd_kafka_producev(
          p.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_KEY(e.key_null ? nullptr : e.key.data(), e.key.size()),
          RD_KAFKA_V_VALUE(e.value_null ? nullptr : const_cast<char*>(e.value.data()), e.value.size()), RD_KAFKA_V_END);
      if (!err) break;
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) throw std::runtime_error(rd_kafka_err2str(err));
      rd_kafka_poll(p.get(), 10);
    }
  }
  if (rd_kafka_flush(p.get(), 60'000) != RD_KAFKA_RESP_ERR_NO_ERROR) throw std::runtime_error("flush timed out");
}

inline kafka::HandlePtr makeConsumer(const std::string& bootstrap, const std::string& group) {
  std::vector<std::pair<std::string, std::string>> base = {
      {"bootstrap.servers", bootstrap}, {"group.id", group}, {"enable.auto.commit", "false"},
      {"enable.partition.eof", "true"}, {"auto.offset.reset", "earliest"}, {"log_level", "3"}};
  return kafka::createClient(RD_KAFKA_CONSUMER, kafka::buildConf(base, {}, kafka::Role::kConsumer));
}

// Low watermarks (first offsets still stored) of every partition of a topic. Above 0 when
// the embedded broker trimmed a partition (it keeps only about 5 MiB per partition).
inline std::map<std::int32_t, std::int64_t> beginOffsets(rd_kafka_t* rk, const std::string& topic, int partitions) {
  std::map<std::int32_t, std::int64_t> out;
  for (int p = 0; p < partitions; ++p) {
    int64_t lo = 0, hi = 0;
    if (rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &lo, &hi, 10'000) == RD_KAFKA_RESP_ERR_NO_ERROR)
      out[p] = lo;
  }
  return out;
}

// High watermarks (end offsets) of every partition of a topic.
inline std::map<std::int32_t, std::int64_t> endOffsets(rd_kafka_t* rk, const std::string& topic, int partitions) {
  std::map<std::int32_t, std::int64_t> out;
  for (int p = 0; p < partitions; ++p) {
    int64_t lo = 0, hi = 0;
    if (rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &lo, &hi, 10'000) == RD_KAFKA_RESP_ERR_NO_ERROR)
      out[p] = hi;
  }
  return out;
}

inline std::int64_t total(const std::map<std::int32_t, std::int64_t>& m) {
  std::int64_t n = 0;
  for (const auto& [k, v] : m) n += v;
  return n;
}

// Kafka timestamps of records, by (partition, offset).
using Timestamps = std::map<std::pair<std::int32_t, std::int64_t>, std::int64_t>;

// Reads every record of a topic from the beginning up to its end offsets as they are when the
// read starts. With `timestamps`, also each record's Kafka timestamp (the producer's
// CreateTime: set by librdkafka when the record was handed to it, kept across its retries).
inline std::vector<Record> readAll(const std::string& bootstrap, const std::string& topic, int partitions,
                                   Timestamps* timestamps = nullptr) {
  auto c = makeConsumer(bootstrap, "reader-" + std::to_string(getpid()));
  auto ends = endOffsets(c.get(), topic, partitions);
  kafka::PartitionListPtr list(rd_kafka_topic_partition_list_new(partitions));
  std::map<std::int32_t, bool> done;
  int remaining = 0;
  for (int p = 0; p < partitions; ++p) {
    if (ends[p] > 0) {
      rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
      ++remaining;
    }
  }
  std::vector<Record> out;
  if (remaining == 0) return out;
  rd_kafka_assign(c.get(), list.get());
  auto finished = [&](std::int32_t p) {
    if (!done[p]) {
      done[p] = true;
      --remaining;
    }
  };
  const auto deadline = Clock::now() + std::chrono::seconds(120);
  while (remaining > 0 && Clock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(c.get(), 200);
    if (!m) continue;
    kafka::MessagePtr guard(m);
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      if (m->offset >= ends[m->partition]) finished(m->partition);
      continue;
    }
    if (m->err) continue;
    if (m->offset >= ends[m->partition]) {  // written after the end offsets were taken
      finished(m->partition);
      continue;
    }
    Record r;
    r.partition = m->partition;
    r.offset = m->offset;
    r.key_null = m->key == nullptr;
    if (m->key) r.key.assign(static_cast<const char*>(m->key), m->key_len);
    r.value_null = m->payload == nullptr;
    if (m->payload) r.value.assign(static_cast<const char*>(m->payload), m->len);
    rd_kafka_headers_t* hdrs = nullptr;
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* name;
      const void* val;
      size_t size;
      for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i)
        r.headers[name] = val ? std::string(static_cast<const char*>(val), size) : std::string();
    }
    if (timestamps) {
      rd_kafka_timestamp_type_t type;
      (*timestamps)[{m->partition, m->offset}] = rd_kafka_message_timestamp(m, &type);
    }
    out.push_back(std::move(r));
    if (m->offset + 1 >= ends[m->partition]) finished(m->partition);
  }
  rd_kafka_consumer_close(c.get());
  if (remaining > 0) throw std::runtime_error("reading " + topic + " timed out");
  return out;
}

// The group's committed offsets for a topic's partitions (-1001 = none).
inline std::map<std::int32_t, std::int64_t> committedOffsets(const std::string& bootstrap, const std::string& group,
                                                             const std::string& topic, int partitions) {
  auto c = makeConsumer(bootstrap, group);
  kafka::PartitionListPtr list(rd_kafka_topic_partition_list_new(partitions));
  for (int p = 0; p < partitions; ++p) rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p);
  std::map<std::int32_t, std::int64_t> out;
  if (rd_kafka_committed(c.get(), list.get(), 10'000) == RD_KAFKA_RESP_ERR_NO_ERROR)
    for (int i = 0; i < list->cnt; ++i) out[list->elems[i].partition] = list->elems[i].offset;
  rd_kafka_consumer_close(c.get());
  return out;
}

// The HTTP port loginflow reports in its start-up line ("… http 127.0.0.1:PORT"), which is the
// port it actually bound (useful with --http-port 0); nullopt until that line is logged.
inline std::optional<std::uint16_t> httpPortFromLog(const std::string& log) {
  static const std::regex re(R"(starting: [^\n]*, http [^ \n]+:([0-9]+)\n)");
  std::smatch m;
  if (!std::regex_search(log, m, re)) return std::nullopt;
  return static_cast<std::uint16_t>(std::stoul(m[1].str()));
}

// GET http://127.0.0.1:port/path (HTTP/1.0, the server closes after the response); the status
// and the body, or nullopt on a connection error or when nothing complete arrives in `timeout`.
inline std::optional<std::pair<int, std::string>> httpGet(std::uint16_t port, const std::string& path,
                                                          std::chrono::milliseconds timeout = std::chrono::milliseconds(2000)) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return std::nullopt;
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      const auto deadline = Clock::now() + timeout;
      char buf[16384];
      while (Clock::now() < deadline) {
        const ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        response.append(buf, static_cast<std::size_t>(n));
      }
    }
  }
  close(fd);
  // "HTTP/1.x NNN …\r\n…\r\n\r\nbody"
  const auto head_end = response.find("\r\n\r\n");
  if (response.rfind("HTTP/1.", 0) != 0 || response.size() < 12 || head_end == std::string::npos) return std::nullopt;
  return std::make_pair(std::atoi(response.c_str() + 9), response.substr(head_end + 4));
}

// The sum of every sample of a metric in Prometheus text exposition (all label sets of the
// family member `name`, e.g. "loginflow_in_flight_records"); nullopt when there is none.
inline std::optional<double> metricValue(const std::string& exposition, const std::string& name) {
  std::optional<double> sum;
  std::istringstream in(exposition);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() <= name.size() || line.compare(0, name.size(), name) != 0) continue;
    const char next = line[name.size()];
    if (next != ' ' && next != '{') continue;
    const auto sp = line.rfind(' ');
    if (sp == std::string::npos) continue;
    sum = sum.value_or(0.0) + std::strtod(line.c_str() + sp + 1, nullptr);
  }
  return sum;
}

// The value without its "processed_at" member (the one field that differs between runs).
inline std::string withoutProcessedAt(const std::string& v) {
  auto p = v.find(",\"processed_at\":\"");
  if (p == std::string::npos) return v;
  auto e = v.find('"', p + 17);
  return v.substr(0, p) + v.substr(e + 1);
}

}  // namespace loginflow::testing
