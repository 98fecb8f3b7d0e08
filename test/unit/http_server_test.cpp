#include "loginflow/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "http/header_scanner.h"

namespace loginflow {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// A blocking test client on a raw socket, every wait bounded by a deadline.
class Client {
 public:
  explicit Client(std::uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~Client() { closeNow(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return connected_; }
  void closeNow() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // False when the peer has closed or reset the connection.
  bool send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // Waits up to `timeout` for bytes: appends them and returns true; false on timeout, and
  // sets closed() on EOF or reset.
  bool readSome(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
    char buf[16384];
    const ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
      closed_ = true;
      return false;
    }
    received_.append(buf, static_cast<std::size_t>(n));
    return true;
  }

  bool closed() const { return closed_; }

  // Reads until the peer closes; true when it did before the deadline. Any bytes received
  // meanwhile are kept.
  bool waitClosed(std::chrono::milliseconds timeout = 5000ms) {
    const auto deadline = Clock::now() + timeout;
    while (!closed_ && Clock::now() < deadline) {
      readSome(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    }
    return closed_;
  }

  struct Response {
    int status = 0;
    std::string headers;  // the raw header block
    std::string body;
    std::string header(const std::string& name) const {
      const std::string key = "\r\n" + name + ": ";
      const std::size_t at = headers.find(key);
      if (at == std::string::npos) return {};
      const std::size_t start = at + key.size();
      return headers.substr(start, headers.find("\r\n", start) - start);
    }
  };

  // Reads one response (its body per Content-Length, none when `head`).
  std::optional<Response> readResponse(bool head = false, std::chrono::milliseconds timeout = 5000ms) {
    const auto deadline = Clock::now() + timeout;
    std::size_t end = std::string::npos;
    while ((end = received_.find("\r\n\r\n")) == std::string::npos) {
      if (closed_ || Clock::now() >= deadline) return std::nullopt;
      readSome(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    }
    Response r;
    r.headers = received_.substr(0, end + 2);
    if (r.headers.rfind("HTTP/1.1 ", 0) != 0) return std::nullopt;
    r.status = std::stoi(r.headers.substr(9, 3));
    const std::string length = r.header("Content-Length");
    const std::size_t body_size = head || length.empty() ? 0 : std::stoul(length);
    while (received_.size() < end + 4 + body_size) {
      if (closed_ || Clock::now() >= deadline) return std::nullopt;
      readSome(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    }
    r.body = received_.substr(end + 4, body_size);
    received_.erase(0, end + 4 + body_size);
    return r;
  }

  std::optional<Response> get(const std::string& target, const std::string& extra_headers = "") {
    if (!send("GET " + target + " HTTP/1.1\r\nHost: test\r\n" + extra_headers + "\r\n")) {
      return std::nullopt;
    }
    return readResponse();
  }

  const std::string& received() const { return received_; }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool closed_ = false;
  std::string received_;
};

// An HttpServer with two routes, its io_context run on a thread of its own.
class HttpServerTest : public ::testing::Test {
 protected:
  void start(HttpServerOptions options = {}) {
    options.address = "127.0.0.1";
    options.port = 0;
    server_ = std::make_unique<HttpServer>(io_, options);
    server_->route("/metrics", [this] {
      ++metrics_calls_;
      return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", "metric_total 1\n"};
    });
    server_->route("/healthz", [] { return HttpResponse{503, "text/plain; charset=utf-8", "stale\n"}; });
    server_->route("/boom", []() -> HttpResponse { throw std::runtime_error("handler bug"); });
    runner_ = std::async(std::launch::async, [this] { io_.run(); });
  }

  // Posts stop() and waits (bounded) for io_context::run() to return: proof that nothing is
  // left running — no connection, no timer, no accept.
  bool stopAndDrain(std::chrono::milliseconds timeout = 5000ms) {
    boost::asio::post(io_, [this] {
      server_->stop();
      server_->stop();  // idempotent
    });
    return runner_.wait_for(timeout) == std::future_status::ready;
  }

  void TearDown() override {
    if (runner_.valid() && runner_.wait_for(0ms) != std::future_status::ready) {
      if (!stopAndDrain()) {
        ADD_FAILURE() << "io_context::run() did not return after stop()";
        io_.stop();
        runner_.wait();
      }
    }
    server_.reset();
  }

  std::uint16_t port() const { return server_->port(); }

  boost::asio::io_context io_;
  std::unique_ptr<HttpServer> server_;
  std::future<void> runner_;
  std::atomic<int> metrics_calls_{0};
};

// Header fields of exactly `bytes` bytes, counted as the server documents it: every field
// line with its CRLF.
std::string fieldsOfSize(std::size_t bytes) {
  std::string fields = "Host: test\r\n";
  const std::string prefix = "X-Pad: ";
  EXPECT_GE(bytes, fields.size() + prefix.size() + 3);
  fields += prefix + std::string(bytes - fields.size() - prefix.size() - 2, 'a') + "\r\n";
  EXPECT_EQ(fields.size(), bytes);
  return fields;
}

using http_detail::HeaderScanner;

// Feeds `data` one byte at a time (the worst case for an incremental scanner) and returns the
// first result that is not kNeedMore.
HeaderScanner::Result scanByteByByte(HeaderScanner& scanner, const std::string& data) {
  for (std::size_t n = 1; n <= data.size(); ++n) {
    const auto result = scanner.scan(std::string_view(data).substr(0, n));
    if (result != HeaderScanner::Result::kNeedMore) return result;
  }
  return HeaderScanner::Result::kNeedMore;
}

TEST(HeaderScanner, CountsFieldLinesWithTheirLineEndsAndNotTheRequestLine) {
  HeaderScanner scanner(100, 8192);
  const std::string request = "GET /" + std::string(86, 'x') + " HTTP/1.1\r\n" + fieldsOfSize(8192) + "\r\n";
  ASSERT_EQ(scanner.scan(request), HeaderScanner::Result::kComplete);
  EXPECT_EQ(scanner.fieldBytes(), 8192U);
  EXPECT_EQ(scanner.headerBytes(), request.size());
  scanner.reset();
  EXPECT_EQ(scanByteByByte(scanner, request + "GET / HTTP/1.1\r\n"), HeaderScanner::Result::kComplete);
  EXPECT_EQ(scanner.headerBytes(), request.size());

  scanner.reset();
  EXPECT_EQ(scanByteByByte(scanner, "GET / HTTP/1.1\r\n" + fieldsOfSize(8193) + "\r\n"),
            HeaderScanner::Result::kFieldsTooLarge);
  scanner.reset();
  ASSERT_EQ(scanner.scan("GET / HTTP/1.1\r\n\r\n"), HeaderScanner::Result::kComplete);
  EXPECT_EQ(scanner.fieldBytes(), 0U);
}

TEST(HeaderScanner, NeverRejectsWhatCouldStillFitAndDecidesOnTheLimit) {
  HeaderScanner scanner(100, 10);
  // 11 bytes after the request line could still be 10 bytes of fields + the final CR.
  EXPECT_EQ(scanner.scan("GET / HTTP/1.1\r\nA: 12345\r\n\r"), HeaderScanner::Result::kNeedMore);
  EXPECT_EQ(scanner.scan("GET / HTTP/1.1\r\nA: 12345\r\n\r\n"), HeaderScanner::Result::kComplete);
  EXPECT_EQ(scanner.fieldBytes(), 10U);
  scanner.reset();
  EXPECT_EQ(scanner.scan("GET / HTTP/1.1\r\nA: 123456\r\n"), HeaderScanner::Result::kFieldsTooLarge);
  scanner.reset();
  EXPECT_EQ(scanner.scan("GET / HTTP/1.1\r\nA: 12345678"), HeaderScanner::Result::kNeedMore);
  EXPECT_EQ(scanner.scan("GET / HTTP/1.1\r\nA: 123456789"), HeaderScanner::Result::kFieldsTooLarge);
  // Bare LF line ends count one byte each (Beast then rejects them with 400).
  scanner.reset();
  EXPECT_EQ(scanner.scan("GET / HTTP/1.1\nA: 123456\n\n"), HeaderScanner::Result::kComplete);
  EXPECT_EQ(scanner.fieldBytes(), 10U);

  // The request line: 100 bytes pass, 101 do not.
  scanner.reset();
  const std::string line100 = "GET /" + std::string(86, 'x') + " HTTP/1.1";
  ASSERT_EQ(line100.size(), 100U);
  EXPECT_EQ(scanner.scan(line100 + "\r"), HeaderScanner::Result::kNeedMore);
  EXPECT_EQ(scanner.scan(line100 + "\r\n\r\n"), HeaderScanner::Result::kComplete);
  scanner.reset();
  EXPECT_EQ(scanner.scan("GET /" + std::string(87, 'x') + " HTTP/1.1\r\n"),
            HeaderScanner::Result::kRequestLineTooLong);
  scanner.reset();
  EXPECT_EQ(scanner.scan("GET /" + std::string(96, 'x')), HeaderScanner::Result::kNeedMore);
  EXPECT_EQ(scanner.scan("GET /" + std::string(97, 'x')), HeaderScanner::Result::kRequestLineTooLong);

  scanner.reset();
  EXPECT_EQ(scanner.scan("\x16\x03\x01"), HeaderScanner::Result::kNotHttp);
}

TEST_F(HttpServerTest, RoutesAnswerWithTheHandlersResponse) {
  start();
  Client c(port());
  ASSERT_TRUE(c.connected());
  auto r = c.get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(r->body, "metric_total 1\n");
  EXPECT_TRUE(std::regex_match(r->header("Date"),
                               std::regex(R"([A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT)")))
      << r->header("Date");
  r = c.get("/healthz?verbose=1&x=%20");  // query string ignored
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->body, "stale\n");
}

TEST_F(HttpServerTest, AnythingElseIs404) {
  start();
  Client c(port());
  for (const std::string request :
       {"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n", "GET /metrics/ HTTP/1.1\r\nHost: t\r\n\r\n",
        "POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nab",
        "DELETE /metrics HTTP/1.1\r\nHost: t\r\n\r\n", "OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n"}) {
    ASSERT_TRUE(c.send(request)) << request;
    const auto r = c.readResponse();
    ASSERT_TRUE(r) << request;
    EXPECT_EQ(r->status, 404) << request;
  }
  EXPECT_EQ(metrics_calls_.load(), 0);
}

TEST_F(HttpServerTest, HeadSendsTheHeadersWithoutTheBody) {
  start();
  Client c(port());
  ASSERT_TRUE(c.send("HEAD /metrics HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r = c.readResponse(/*head=*/true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("Content-Length"), std::to_string(std::string("metric_total 1\n").size()));
  // No stray body on the connection: the next response starts right away.
  r = c.get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "metric_total 1\n");
}

TEST_F(HttpServerTest, KeepAliveAndPipelining) {
  start();
  Client c(port());
  ASSERT_TRUE(c.send("GET /metrics HTTP/1.1\r\nHost: t\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\n\r\n"
                     "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
  const auto a = c.readResponse();
  const auto b = c.readResponse();
  const auto d = c.readResponse();
  ASSERT_TRUE(a && b && d);
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(a->header("Connection"), "keep-alive");
  EXPECT_EQ(b->status, 404);
  EXPECT_EQ(d->status, 503);
  EXPECT_EQ(d->header("Connection"), "close");
  EXPECT_TRUE(c.waitClosed());
}

TEST_F(HttpServerTest, Http10ClosesAfterTheResponse) {
  start();
  Client c(port());
  ASSERT_TRUE(c.send("GET /metrics HTTP/1.0\r\n\r\n"));
  const auto r = c.readResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(c.waitClosed());
}

TEST_F(HttpServerTest, MalformedRequestsGet400ThenClose) {
  start();
  for (const std::string request :
       {"GARBAGE\r\n\r\n", "GET / HTTP/1.1\r\nBad Header\r\n\r\n", "GET /metrics HTTP/9\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nContent-Length: x\r\n\r\n"}) {
    Client c(port());
    ASSERT_TRUE(c.send(request));
    const auto r = c.readResponse();
    ASSERT_TRUE(r) << request;
    EXPECT_EQ(r->status, 400) << request;
    EXPECT_EQ(r->header("Connection"), "close");
    EXPECT_TRUE(c.waitClosed()) << request;
  }
}

TEST_F(HttpServerTest, NotHttpAtAllIsJustClosed) {
  start();
  Client c(port());
  // The start of a TLS ClientHello.
  ASSERT_TRUE(c.send(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11)));
  EXPECT_TRUE(c.waitClosed());
  EXPECT_EQ(c.received(), "");
}

TEST_F(HttpServerTest, HeaderFieldsOf8192BytesPassEvenWithALongRequestLine) {
  start();
  Client c(port());
  // The request line is not counted: a 6000-byte target does not matter.
  const std::string target = "/metrics?q=" + std::string(6000, 'x');
  ASSERT_TRUE(c.send("GET " + target + " HTTP/1.1\r\n" + fieldsOfSize(8192) + "\r\n"));
  const auto r = c.readResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "metric_total 1\n");
}

TEST_F(HttpServerTest, HeaderFieldsOf8193BytesGet431) {
  start();
  Client c(port());
  ASSERT_TRUE(c.send("GET /metrics HTTP/1.1\r\n" + fieldsOfSize(8193) + "\r\n"));
  const auto r = c.readResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  EXPECT_TRUE(c.waitClosed());
  EXPECT_EQ(metrics_calls_.load(), 0);
}

TEST_F(HttpServerTest, EndlessHeaderGets431WithoutWaitingForItsEnd) {
  start();
  Client c(port());
  // Never ends the header: the server answers as soon as the limit is certainly passed.
  ASSERT_TRUE(c.send("GET /metrics HTTP/1.1\r\nX-Long: " + std::string(9000, 'a')));
  const auto r = c.readResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
}

// SPEC: malformed requests get 400 (the 431 of over-long header fields does not count the
// request line).
TEST_F(HttpServerTest, OverlongRequestLineGets400) {
  start();
  Client c(port());
  ASSERT_TRUE(c.send("GET /" + std::string(20'000, 'x') + " HTTP/1.1\r\nHost: t\r\n\r\n"));
  const auto r = c.readResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
}

TEST_F(HttpServerTest, BodyOnAGetIsReadAndIgnored) {
  start();
  Client c(port());
  ASSERT_TRUE(c.send("GET /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"));
  auto r = c.readResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  r = c.get("/metrics");  // the body did not leak into the next request
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpServerTest, OversizedBodyGets413) {
  start();
  Client c(port());
  ASSERT_TRUE(c.send("GET /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000\r\n\r\n"));
  const auto r = c.readResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
}

TEST_F(HttpServerTest, HandlerExceptionIs500AndTheServerLivesOn) {
  start();
  Client c(port());
  auto r = c.get("/boom");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  r = c.get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpServerTest, SlowlorisClientIsDroppedAfterTheTimeout) {
  HttpServerOptions options;
  options.io_timeout = 300ms;
  start(options);
  Client c(port());
  const auto begin = Clock::now();
  ASSERT_TRUE(c.send("GET /metrics HTTP/1.1\r\nHost: t\r\nX-Slow: "));
  // One byte every 50 ms: each read makes progress, but the request never completes. Waiting
  // for the close is the pacing (no fixed sleep): readSome returns early when it comes.
  while (!c.closed() && Clock::now() - begin < 10s) {
    if (!c.send("a")) break;
    c.readSome(50ms);
  }
  c.waitClosed(5s);
  const auto elapsed = Clock::now() - begin;
  EXPECT_TRUE(c.closed());
  EXPECT_GE(elapsed, 300ms);
  EXPECT_LT(elapsed, 5s);
  EXPECT_EQ(metrics_calls_.load(), 0);
}

TEST_F(HttpServerTest, IdleConnectionIsDroppedAfterTheTimeout) {
  HttpServerOptions options;
  options.io_timeout = 200ms;
  start(options);
  Client c(port());
  auto r = c.get("/metrics");  // then idle on a keep-alive connection
  ASSERT_TRUE(r);
  const auto begin = Clock::now();
  EXPECT_TRUE(c.waitClosed(5s));
  EXPECT_GE(Clock::now() - begin, 150ms);
}

TEST_F(HttpServerTest, ConnectionsOverTheCapAreClosedAtOnce) {
  HttpServerOptions options;
  options.max_connections = 2;
  start(options);
  Client a(port());
  Client b(port());
  ASSERT_TRUE(a.get("/metrics"));  // both accepted and alive (keep-alive)
  ASSERT_TRUE(b.get("/metrics"));
  Client extra(port());
  ASSERT_TRUE(extra.connected());  // the kernel accepts; the server closes it
  EXPECT_TRUE(extra.waitClosed());
  EXPECT_EQ(extra.received(), "");
  // Still serving the admitted ones.
  auto r = a.get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  // A slot frees when one leaves; a new client gets in (the server sees the close
  // asynchronously: retry until the deadline).
  a.closeNow();
  bool served = false;
  for (const auto deadline = Clock::now() + 5s; !served && Clock::now() < deadline;) {
    Client next(port());
    const auto got = next.get("/metrics");
    served = got && got->status == 200;
  }
  EXPECT_TRUE(served);
}

TEST_F(HttpServerTest, ManyIdleConnectionsDoNotBlockOthers) {
  HttpServerOptions options;
  options.max_connections = 64;
  options.io_timeout = 2s;
  start(options);
  std::vector<std::unique_ptr<Client>> idle;
  for (int i = 0; i < 60; ++i) {
    idle.push_back(std::make_unique<Client>(port()));
    ASSERT_TRUE(idle.back()->connected());
  }
  idle.push_back(std::make_unique<Client>(port()));
  ASSERT_TRUE(idle.back()->send("GET /metrics HTTP/1.1\r\nHost: t\r\n"));  // half a request
  Client c(port());
  const auto begin = Clock::now();
  const auto r = c.get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_LT(Clock::now() - begin, 1s);  // well before the idle ones time out
  // And the idle ones are all dropped in the end.
  for (auto& client : idle) EXPECT_TRUE(client->waitClosed(10s));
}

TEST_F(HttpServerTest, StopClosesEveryConnectionAndRunReturns) {
  start();
  Client idle(port());
  Client half(port());
  Client served(port());
  ASSERT_TRUE(half.send("GET /metrics HTTP/1.1\r\nHo"));
  ASSERT_TRUE(served.get("/metrics"));
  ASSERT_TRUE(stopAndDrain());
  EXPECT_TRUE(idle.waitClosed());
  EXPECT_TRUE(half.waitClosed());
  EXPECT_TRUE(served.waitClosed());
  Client late(port());
  EXPECT_FALSE(late.connected());  // no longer listening
  server_->stop();                 // still idempotent after the loop has ended
}

TEST(HttpServer, BindFailureNamesTheAddress) {
  boost::asio::io_context io;
  HttpServerOptions options;
  options.address = "127.0.0.1";
  options.port = 0;
  HttpServer first(io, options);
  options.port = first.port();
  try {
    HttpServer second(io, options);
    ADD_FAILURE() << "bound the same port twice";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(first.port())),
              std::string::npos)
        << e.what();
  }
  options.address = "not-an-address";
  EXPECT_THROW(HttpServer(io, options), std::system_error);
}

}  // namespace
}  // namespace loginflow
