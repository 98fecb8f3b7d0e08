#include "loginflow/mock_broker.h"

#include <stdexcept>

namespace loginflow {

MockBroker::MockBroker(int brokers) {
  // The mock cluster needs a client handle to live on; a producer that never produces.
  kafka::ConfPtr conf(rd_kafka_conf_new());
  kafka::setProperty(conf.get(), "log_level", "3", "mock broker");
  handle_ = kafka::createClient(RD_KAFKA_PRODUCER, std::move(conf));
  cluster_ = rd_kafka_mock_cluster_new(handle_.get(), brokers);
  if (!cluster_) throw std::runtime_error("cannot start the embedded broker (rd_kafka_mock_cluster_new failed)");
  bootstrap_ = rd_kafka_mock_cluster_bootstraps(cluster_);
}

MockBroker::~MockBroker() {
  if (cluster_) rd_kafka_mock_cluster_destroy(cluster_);
}

void MockBroker::createTopic(const std::string& name, int partitions, int replication) {
  rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(cluster_, name.c_str(), partitions, replication);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    throw std::runtime_error("cannot create topic " + name + ": " + rd_kafka_err2str(err));
}

}  // namespace loginflow
