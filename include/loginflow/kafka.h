// librdkafka plumbing: owning handles, configuration building, and small helpers.
//
// Every rd_kafka_* handle lives in a std::unique_ptr with its deleter, so that ownership is
// visible and nothing leaks on an early return.
#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "loginflow/config.h"

namespace loginflow::kafka {

struct HandleDeleter {
  void operator()(rd_kafka_t* rk) const noexcept { rd_kafka_destroy(rk); }
};
struct ConfDeleter {
  void operator()(rd_kafka_conf_t* c) const noexcept { rd_kafka_conf_destroy(c); }
};
struct TopicDeleter {
  void operator()(rd_kafka_topic_t* t) const noexcept { rd_kafka_topic_destroy(t); }
};
struct QueueDeleter {
  void operator()(rd_kafka_queue_t* q) const noexcept { rd_kafka_queue_destroy(q); }
};
struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const noexcept {
    rd_kafka_topic_partition_list_destroy(l);
  }
};
struct MessageDeleter {
  void operator()(rd_kafka_message_t* m) const noexcept { rd_kafka_message_destroy(m); }
};

using HandlePtr = std::unique_ptr<rd_kafka_t, HandleDeleter>;
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;
using TopicPtr = std::unique_ptr<rd_kafka_topic_t, TopicDeleter>;
using QueuePtr = std::unique_ptr<rd_kafka_queue_t, QueueDeleter>;
using PartitionListPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;
using MessagePtr = std::unique_ptr<rd_kafka_message_t, MessageDeleter>;

// Sets one property; throws UsageError("<origin>: <key>: <librdkafka's message>") when
// librdkafka rejects it (unknown property, bad value).
void setProperty(rd_kafka_conf_t* conf, const std::string& key, const std::string& value,
                 const std::string& origin);

// A new configuration with `base` applied first, then the user's properties of the given
// scope (kBoth plus the matching one) on top.
enum class Role { kConsumer, kProducer };
ConfPtr buildConf(const std::vector<std::pair<std::string, std::string>>& base,
                  const std::vector<KafkaProperty>& user, Role role);

// Creates a client; throws std::runtime_error with librdkafka's message on failure (the
// configuration has been validated before, so this is a runtime fault).
HandlePtr createClient(rd_kafka_type_t type, ConfPtr conf);

// A client's integer configuration property (as librdkafka resolved it), or `fallback` when it
// is unset or not an integer.
long long intProperty(rd_kafka_t* rk, const char* name, long long fallback);

// The error's symbolic name ("_MSG_TIMED_OUT", "NOT_LEADER_FOR_PARTITION").
std::string errorName(rd_kafka_resp_err_t err);

// Producer settings that every loginflow producer uses (idempotent, acks=all, murmur2).
std::vector<std::pair<std::string, std::string>> producerDefaults();

// Why a user's librdkafka property would break the at-least-once guarantee, or nullopt when it
// does not. The value is read as librdkafka reads it (so `1`, `t` and `TRUE` are all true), and
// through any name that sets the same property (`request.required.acks`, `topic.acks`): the
// property is applied to a configuration holding loginflow's own guarded settings, which are then
// read back. Guarded: enable.auto.offset.store=false (an offset is stored only once its output is
// acknowledged), enable.idempotence=true and acks=all. A value librdkafka rejects is not judged
// here: creating the client reports it.
std::optional<std::string> unsafeSetting(const KafkaProperty& p);

// Waits until the cluster answers a metadata request, or the timeout passes. Returns an empty
// string on success, else the last error text.
std::string waitForCluster(rd_kafka_t* rk, std::chrono::milliseconds timeout);

// Number of partitions of a topic per the cluster's metadata (0 when unknown / missing).
int partitionCount(rd_kafka_t* rk, const std::string& topic, std::chrono::milliseconds timeout);

}  // namespace loginflow::kafka
