#include <array>
#include <charconv>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "loginflow/kafka.h"

namespace loginflow::kafka {

void setProperty(rd_kafka_conf_t* conf, const std::string& key, const std::string& value,
                 const std::string& origin) {
  std::array<char, 512> err{};
  if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err.data(), err.size()) != RD_KAFKA_CONF_OK) {
    throw UsageError("loginflow: " + origin + ": " + key + ": " + err.data());
  }
}

ConfPtr buildConf(const std::vector<std::pair<std::string, std::string>>& base,
                  const std::vector<KafkaProperty>& user, Role role) {
  ConfPtr conf(rd_kafka_conf_new());
  for (const auto& [k, v] : base) setProperty(conf.get(), k, v, "built-in setting");
  for (const auto& p : user) {
    if (p.scope == KafkaProperty::Scope::kConsumer && role != Role::kConsumer) continue;
    if (p.scope == KafkaProperty::Scope::kProducer && role != Role::kProducer) continue;
    setProperty(conf.get(), p.key, p.value, p.origin);
  }
  return conf;
}

HandlePtr createClient(rd_kafka_type_t type, ConfPtr conf) {
  std::array<char, 512> err{};
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), err.data(), err.size());
  if (!rk) throw std::runtime_error(std::string("cannot create the Kafka client: ") + err.data());
  (void)conf.release();  // rd_kafka_new took ownership
  return HandlePtr(rk);
}

long long intProperty(rd_kafka_t* rk, const char* name, long long fallback) {
  std::array<char, 64> buf{};
  std::size_t size = buf.size();
  if (rd_kafka_conf_get(rd_kafka_conf(rk), name, buf.data(), &size) != RD_KAFKA_CONF_OK) return fallback;
  long long v = 0;
  const char* end = buf.data() + std::strlen(buf.data());
  auto [ptr, ec] = std::from_chars(buf.data(), end, v);
  return ec == std::errc() && ptr == end && ptr != buf.data() ? v : fallback;
}

std::optional<std::string> unsafeSetting(const KafkaProperty& p) {
  struct Guard {
    const char* name;
    const char* safe;  // loginflow's value, as librdkafka prints it
    KafkaProperty::Scope client;
    const char* why;
  };
  static const Guard kGuards[] = {
      {"enable.auto.offset.store", "false", KafkaProperty::Scope::kConsumer,
       "librdkafka would store (and auto-commit) offsets of records whose outputs are not acknowledged yet, "
       "breaking at-least-once; loginflow stores each offset once its output is acknowledged"},
      {"enable.idempotence", "true", KafkaProperty::Scope::kProducer,
       "the producer must be idempotent for the at-least-once guarantee (no loss or reordering on retries)"},
      {"acks", "-1", KafkaProperty::Scope::kProducer, "outputs must be acknowledged by all in-sync replicas (acks=all)"},
  };
  ConfPtr conf(rd_kafka_conf_new());
  std::array<char, 512> err{};
  for (const auto& g : kGuards)
    if (rd_kafka_conf_set(conf.get(), g.name, g.safe, err.data(), err.size()) != RD_KAFKA_CONF_OK)
      throw std::logic_error(std::string("guarded property unknown to librdkafka: ") + g.name);
  if (rd_kafka_conf_set(conf.get(), p.key.c_str(), p.value.c_str(), err.data(), err.size()) != RD_KAFKA_CONF_OK)
    return std::nullopt;  // rejected: reported when the client is created
  for (const auto& g : kGuards) {
    if (p.scope != KafkaProperty::Scope::kBoth && p.scope != g.client) continue;  // not for that client
    std::array<char, 64> value{};
    std::size_t size = value.size();
    if (rd_kafka_conf_get(conf.get(), g.name, value.data(), &size) != RD_KAFKA_CONF_OK) continue;
    if (std::string_view(value.data()) != g.safe)
      return std::string(g.why) + " (librdkafka reads it as " + g.name + "=" + value.data() + ")";
  }
  return std::nullopt;
}

std::string errorName(rd_kafka_resp_err_t err) { return rd_kafka_err2name(err); }

std::vector<std::pair<std::string, std::string>> producerDefaults() {
  return {
      {"enable.idempotence", "true"},
      {"acks", "all"},
      // The Java client's and Kafka Streams' partitioner: same key, same partition.
      {"partitioner", "murmur2_random"},
      {"linger.ms", "5"},
      {"compression.type", "lz4"},
      // Outputs can be slightly larger than their input (≤ 1,000,000 bytes); the brokers'
      // default limit is 1,048,588.
      {"message.max.bytes", "1048576"},
  };
}

std::string waitForCluster(rd_kafka_t* rk, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string last = "no answer";
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return last;
    const rd_kafka_metadata_t* md = nullptr;
    int step = static_cast<int>(std::min<std::int64_t>(left.count(), 2000));
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, nullptr, &md, step);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      bool any = md->broker_cnt > 0;
      rd_kafka_metadata_destroy(md);
      if (any) return "";
      last = "the cluster reported no brokers";
    } else {
      last = rd_kafka_err2str(err);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

int partitionCount(rd_kafka_t* rk, const std::string& topic, std::chrono::milliseconds timeout) {
  TopicPtr t(rd_kafka_topic_new(rk, topic.c_str(), nullptr));
  if (!t) return 0;
  const rd_kafka_metadata_t* md = nullptr;
  if (rd_kafka_metadata(rk, 0, t.get(), &md, static_cast<int>(timeout.count())) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return 0;
  int n = 0;
  if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) n = md->topics[0].partition_cnt;
  rd_kafka_metadata_destroy(md);
  return n;
}

}  // namespace loginflow::kafka
