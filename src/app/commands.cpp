// The commands besides `run`: demo, broker, gen; and the top-level dispatch.
// librdkafka's RD_KAFKA_V_* macros expand to C-style casts.
#pragma GCC diagnostic ignored "-Wold-style-cast"
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <thread>

#include "loginflow/app.h"
#include "loginflow/generator.h"
#include "loginflow/kafka.h"
#include "loginflow/mock_broker.h"
#include "loginflow/transform.h"

namespace loginflow {
namespace {

std::atomic<int> g_signal{0};
extern "C" void onSignal(int sig) { g_signal.store(sig); }

void installStopSignals() {
  struct sigaction sa {};
  sa.sa_handler = onSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

std::string thousands(std::uint64_t n) {
  std::string s = std::to_string(n);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<std::size_t>(i), ",");
  return s;
}

// The q-quantile of a histogram, interpolated linearly inside the bucket (as PromQL's
// histogram_quantile does). Returns -1 when empty.
double quantile(const HistogramSnapshot& h, double q) {
  const std::uint64_t total = h.count();
  if (total == 0) return -1;
  const double rank = q * static_cast<double>(total);
  double cumulative = 0;
  for (std::size_t i = 0; i < h.buckets.size(); ++i) {
    const double before = cumulative;
    cumulative += static_cast<double>(h.buckets[i]);
    if (cumulative >= rank) {
      if (i >= h.bounds.size()) return h.bounds.empty() ? -1 : h.bounds.back();
      const double lo = i == 0 ? 0 : h.bounds[i - 1], hi = h.bounds[i];
      const double in_bucket = static_cast<double>(h.buckets[i]);
      return in_bucket == 0 ? hi : lo + (hi - lo) * (rank - before) / in_bucket;
    }
  }
  return h.bounds.empty() ? -1 : h.bounds.back();
}

std::pair<std::string, std::uint64_t> top(const std::map<std::string, std::uint64_t>& m) {
  std::pair<std::string, std::uint64_t> best{"-", 0};
  for (const auto& [k, v] : m)
    if (v > best.second) best = {k, v};
  return best;
}

// Produces generated events; shared by `gen` and `demo`.
class GenProducer {
 public:
  GenProducer(const std::string& brokers, const std::vector<KafkaProperty>& user) {
    auto base = kafka::producerDefaults();
    base.emplace_back("bootstrap.servers", brokers);
    base.emplace_back("client.id", "loginflow-gen");
    base.emplace_back("message.max.bytes", "4194304");  // room for too_large events
    base.emplace_back("log_level", "4");
    kafka::ConfPtr conf = kafka::buildConf(base, user, kafka::Role::kProducer);
    rd_kafka_conf_set_opaque(conf.get(), this);
    rd_kafka_conf_set_dr_msg_cb(conf.get(), [](rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
      auto* self = static_cast<GenProducer*>(opaque);
      if (m->err) {
        self->failed.fetch_add(1);
        if (self->failed.load() < 5) std::fprintf(stderr, "gen: delivery failed: %s\n", rd_kafka_err2str(m->err));
      } else {
        self->delivered.fetch_add(1);
      }
    });
    rk_ = kafka::createClient(RD_KAFKA_PRODUCER, std::move(conf));
  }

  // false when the event could not be queued (the caller stops)
  bool send(const std::string& topic, const GeneratedEvent& e, const std::atomic<bool>& stop) {
    while (true) {
      rd_kafka_resp_err_t err = rd_kafka_producev(
          rk_.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_KEY(e.key_null ? nullptr : e.key.data(), e.key.size()),
          RD_KAFKA_V_VALUE(e.value_null ? nullptr : const_cast<char*>(e.value.data()), e.value.size()),
          RD_KAFKA_V_END);
      if (!err) return true;
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || stop.load()) {
        std::fprintf(stderr, "gen: produce failed: %s\n", rd_kafka_err2str(err));
        return false;
      }
      rd_kafka_poll(rk_.get(), 10);
    }
  }
  void poll() { rd_kafka_poll(rk_.get(), 0); }
  bool flush(std::chrono::milliseconds timeout) {
    return rd_kafka_flush(rk_.get(), static_cast<int>(timeout.count())) == RD_KAFKA_RESP_ERR_NO_ERROR;
  }

  std::atomic<std::uint64_t> delivered{0};
  std::atomic<std::uint64_t> failed{0};

 private:
  kafka::HandlePtr rk_;
};

// Generates `count` events (0 = unlimited) at `rate` per second (0 = unlimited) until `stop`.
std::uint64_t generate(GenProducer& p, const std::string& topic, EventGenerator& gen, std::uint64_t count, double rate,
                       const std::atomic<bool>& stop, std::atomic<std::uint64_t>& sent,
                       std::atomic<std::uint64_t>& bad) {
  GeneratedEvent e;
  const auto start = std::chrono::steady_clock::now();
  std::uint64_t n = 0;
  while (!stop.load() && (count == 0 || n < count)) {
    if (rate > 0) {
      const double due_s = static_cast<double>(n) / rate;
      const auto due = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                   std::chrono::duration<double>(due_s));
      const auto now = std::chrono::steady_clock::now();
      if (due > now) {
        p.poll();
        std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(due - now, std::chrono::milliseconds(5)));
        continue;
      }
    }
    gen.next(e);
    if (!p.send(topic, e, stop)) break;
    ++n;
    sent.store(n, std::memory_order_relaxed);
    if (e.bad) bad.fetch_add(1, std::memory_order_relaxed);
    if ((n & 1023) == 0) p.poll();
  }
  return n;
}

}  // namespace

int brokerCommand(const std::vector<std::string>& args) {
  BrokerConfig cfg = parseBrokerArgs(args);
  installStopSignals();
  MockBroker broker;
  for (const char* t : {"user-login", "processed-user-login", "user-login-dlq"}) broker.createTopic(t, cfg.partitions);
  broker.createTopic("login-insights", 1);
  std::printf("bootstrap=%s\n", broker.bootstrap().c_str());
  std::fflush(stdout);
  std::fprintf(stderr,
               "embedded broker listening on %s (topics user-login, processed-user-login, user-login-dlq with %d "
               "partitions, login-insights with 1); stop with SIGTERM or Ctrl-C\n",
               broker.bootstrap().c_str(), cfg.partitions);
  while (g_signal.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  return 0;
}

int genCommand(const std::vector<std::string>& args) {
  GenConfig cfg = parseGenArgs(args);
  installStopSignals();
  setupLogging(3, LogFormat::kText);
  const std::uint64_t seed = cfg.seed_explicit ? cfg.seed : std::random_device{}();
  EventGenerator gen(seed, cfg.bad_fraction, wallClockMs() / 1000);
  GenProducer producer(cfg.brokers, cfg.kafka_properties);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> sent{0}, bad{0};
  std::jthread watcher([&](const std::stop_token& st) {
    auto last = std::chrono::steady_clock::now();
    while (!st.stop_requested()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (g_signal.load() != 0) stop.store(true);
      if (std::chrono::steady_clock::now() - last >= std::chrono::seconds(2)) {
        last = std::chrono::steady_clock::now();
        std::fprintf(stderr, "gen: %s events sent, %s delivered\n", thousands(sent.load()).c_str(),
                     thousands(producer.delivered.load()).c_str());
      }
    }
  });
  const auto t0 = std::chrono::steady_clock::now();
  const std::uint64_t n = generate(producer, cfg.topic, gen, cfg.count, cfg.rate, stop, sent, bad);
  const bool flushed = producer.flush(std::chrono::seconds(60));
  watcher.request_stop();
  watcher.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("gen: produced %llu events (%llu malformed) to %s in %.1f s (%.0f/s), seed %llu; %llu delivered, %llu failed\n",
              static_cast<unsigned long long>(n), static_cast<unsigned long long>(bad.load()), cfg.topic.c_str(), secs,
              secs > 0 ? static_cast<double>(n) / secs : 0.0, static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(producer.delivered.load()),
              static_cast<unsigned long long>(producer.failed.load()));
  return flushed && producer.failed.load() == 0 && producer.delivered.load() == n ? 0 : 1;
}

int demoCommand(const std::vector<std::string>& args) {
  DemoConfig d = parseDemoArgs(args);
  setupLogging(3 /* warn */, LogFormat::kText);
  MockBroker broker;
  for (const char* t : {"user-login", "processed-user-login", "user-login-dlq"}) broker.createTopic(t, d.partitions);
  broker.createTopic("login-insights", 1);

  RunConfig cfg;
  cfg.brokers = broker.bootstrap();
  cfg.group_id = "loginflow-demo";
  cfg.workers = d.workers;
  cfg.http_address = d.http_address;
  cfg.http_port = d.http_port;
  cfg.insights_interval = d.insights_interval;
  cfg.connect_timeout = std::chrono::seconds(10);
  cfg.instance_id = "demo";
  cfg.log_level = 3;
  Service service(cfg);

  const bool tty = isatty(STDOUT_FILENO) != 0;
  std::printf("bootstrap=%s\nhttp=http://%s:%u\n", broker.bootstrap().c_str(), d.http_address.c_str(),
              static_cast<unsigned>(service.httpPort()));
  std::printf("loginflow demo: %.0f events/s for %s, %d partitions, %zu workers, %.0f%% malformed; "
              "metrics at http://%s:%u/metrics\n",
              d.rate, d.duration.count() == 0 ? "until Ctrl-C" : (std::to_string(d.duration.count() / 1000) + " s").c_str(),
              d.partitions, d.workers, d.bad_fraction * 100, d.http_address.c_str(),
              static_cast<unsigned>(service.httpPort()));
  std::fflush(stdout);

  std::atomic<bool> gen_stop{false}, gen_done{false};
  std::atomic<std::uint64_t> sent{0}, bad{0};
  GenProducer producer(broker.bootstrap(), {});
  std::jthread gen_thread([&] {
    EventGenerator gen(42, d.bad_fraction, wallClockMs() / 1000);
    const std::uint64_t count =
        d.duration.count() == 0 ? 0 : static_cast<std::uint64_t>(d.rate * static_cast<double>(d.duration.count()) / 1000.0);
    generate(producer, "user-login", gen, count, d.rate, gen_stop, sent, bad);
    producer.flush(std::chrono::seconds(30));
    gen_done.store(true);
  });

  const auto t0 = std::chrono::steady_clock::now();
  std::optional<std::chrono::steady_clock::time_point> drained_since;
  std::uint64_t last_out = 0;
  int ticks = 0;
  auto last_insights = t0;
  int code = service.run([&](const StatsSnapshot& s) {
    ++ticks;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::int64_t lag = 0;
    for (const auto& [p, l] : s.consumer_lag) lag += l;
    const std::uint64_t out = s.produced;
    const std::uint64_t dlq = [&] {
      std::uint64_t n = 0;
      for (auto v : s.dlq) n += v;
      return n;
    }();
    char line[256];
    std::snprintf(line, sizeof line, "[%5.0fs] generated %s | in %s | out %s | dlq %s | %s rec/s | lag %lld | in flight %lld",
                  secs, thousands(sent.load()).c_str(), thousands(s.consumed).c_str(), thousands(out).c_str(),
                  thousands(dlq).c_str(), thousands(out >= last_out ? out - last_out : 0).c_str(),
                  static_cast<long long>(lag), static_cast<long long>(s.in_flight));
    last_out = out;
    if (tty) std::printf("\r%s\033[K", line);
    else if (ticks % 5 == 0) std::printf("%s\n", line);
    if (std::chrono::steady_clock::now() - last_insights >= d.insights_interval) {
      last_insights = std::chrono::steady_clock::now();
      auto dev = top(s.by_device_type);
      auto loc = top(s.by_locale);
      std::printf("%sinsights: %s records, %s dead letters; top device type %s (%s), top locale %s (%s)\n",
                  tty ? "\r\033[K" : "", thousands(s.outputs).c_str(), thousands(s.dead_letters).c_str(),
                  dev.first.c_str(), thousands(dev.second).c_str(), loc.first.c_str(), thousands(loc.second).c_str());
    }
    std::fflush(stdout);
    // Stop once the generator is done and everything it sent has gone through.
    if (gen_done.load() && s.consumed >= sent.load() && s.in_flight == 0) {
      if (!drained_since) drained_since = std::chrono::steady_clock::now();
      service.requestStop();
    } else if (gen_done.load()) {
      if (!drained_since) drained_since = std::chrono::steady_clock::now();
      if (std::chrono::steady_clock::now() - *drained_since > std::chrono::seconds(60)) {
        std::fprintf(stderr, "\ndemo: the pipeline did not catch up within 60 s of the generator's end\n");
        service.requestStop();
      }
    }
  });
  gen_stop.store(true);
  gen_thread.join();

  StatsSnapshot s = service.stats().snapshot();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::uint64_t dlq = 0;
  std::string reasons;
  for (std::size_t i = 0; i < kDlqReasonCount; ++i) {
    dlq += s.dlq[i];
    if (s.dlq[i]) reasons += (reasons.empty() ? "" : ", ") + std::string(dlqReasonName(static_cast<DlqReason>(i))) + " " + thousands(s.dlq[i]);
  }
  auto dev = top(s.by_device_type);
  auto loc = top(s.by_locale);
  auto ms = [](double v) { return v < 0 ? std::string("n/a") : std::to_string(std::lround(v * 1000)) + " ms"; };
  std::printf("%s\nloginflow demo summary\n", tty ? "\r\033[K" : "");
  std::printf("  run time          %.1f s\n", secs);
  std::printf("  generated         %s events (%s malformed)\n", thousands(sent.load()).c_str(), thousands(bad.load()).c_str());
  std::printf("  records in        %s\n", thousands(s.consumed).c_str());
  std::printf("  records out       %s\n", thousands(s.produced).c_str());
  std::printf("  dead letters      %s%s%s%s\n", thousands(dlq).c_str(), reasons.empty() ? "" : " (", reasons.c_str(), reasons.empty() ? "" : ")");
  std::printf("  throughput        %.0f records/s\n", secs > 0 ? static_cast<double>(s.produced + dlq) / secs : 0.0);
  std::printf("  end-to-end        p50 %s, p99 %s, p99.9 %s (Kafka timestamp of the input to delivery of the output)\n",
              ms(quantile(s.end_to_end, 0.5)).c_str(), ms(quantile(s.end_to_end, 0.99)).c_str(),
              ms(quantile(s.end_to_end, 0.999)).c_str());
  std::printf("  top device type   %s (%s)\n  top locale        %s (%s)\n", dev.first.c_str(), thousands(dev.second).c_str(),
              loc.first.c_str(), thousands(loc.second).c_str());
  const bool complete = s.consumed == sent.load() && s.produced + dlq == s.consumed;
  std::printf("  complete          %s\n", complete ? "yes: every generated event was consumed and produced" : "NO");
  std::fflush(stdout);
  return code != 0 ? code : (complete ? 0 : 1);
}

int loginflowMain(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
    std::fputs(topLevelHelp().c_str(), args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version" || args[0] == "version") {
    std::printf("loginflow %s\n", LOGINFLOW_VERSION);
    return 0;
  }
  const std::string cmd = args[0];
  args.erase(args.begin());
  try {
    if (cmd == "run") return runCommand(args);
    if (cmd == "demo") return demoCommand(args);
    if (cmd == "broker") return brokerCommand(args);
    if (cmd == "gen") return genCommand(args);
    std::fprintf(stderr, "loginflow: unknown command '%s' (commands: run, demo, broker, gen; see loginflow --help)\n",
                 cmd.c_str());
    return 2;
  } catch (const HelpRequested& h) {
    std::fputs(h.text.c_str(), stdout);
    return 0;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loginflow %s: %s\n", cmd.c_str(), e.what());
    return 1;
  }
}

}  // namespace loginflow
