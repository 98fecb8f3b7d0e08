// Throughput of the login-event transform (parse + validate + normalise + serialise) on one
// core. Target: >= 1,000,000 records/s for BM_TransformRealistic (the items_per_second
// counter).
//
//   cmake -S . -B build/rel -DCMAKE_BUILD_TYPE=Release && cmake --build build/rel --target transform_bench
//   build/rel/bench/transform_bench --benchmark_filter=Transform --benchmark_repetitions=5
//
// The pool mimics the `user-login` topic (SPEC "Input"): UUID user ids, android/iOS in mixed
// casing, two-letter locales (including US states), IPv4 and some IPv6, integer and digit-string
// timestamps with some milliseconds, ~5% without device_type and ~1% malformed records.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "loginflow/transform.h"

namespace {

constexpr std::int64_t kNowMs = 1'764'064'800'123;  // 2025-11-25T10:00:00.123Z

std::string uuid(std::mt19937_64& rng) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  const int groups[] = {8, 4, 4, 4, 12};
  for (int g = 0; g < 5; ++g) {
    if (g != 0) s += '-';
    for (int i = 0; i < groups[g]; ++i) s += kHex[rng() % 16];
  }
  return s;
}

std::string ipv4(std::mt19937_64& rng) {
  return std::to_string(1 + rng() % 223) + "." + std::to_string(rng() % 256) + "." +
         std::to_string(rng() % 256) + "." + std::to_string(1 + rng() % 254);
}

std::string ipv6(std::mt19937_64& rng) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s = "2001:db8";
  for (int g = 0; g < 6; ++g) {
    s += ':';
    for (int i = 0; i < 4; ++i) s += kHex[rng() % 16];
  }
  return s;
}

std::string realisticEvent(std::mt19937_64& rng) {
  static const char* const kDeviceTypes[] = {"android", "iOS", "ios", "ANDROID", "android"};
  static const char* const kLocales[] = {"RU", "US", "TX", "CA", "NY", "DE", "FR", "IN",
                                         "BR", "JP", "GB", "ES", "it", "MA", "WA", "FL"};
  const unsigned roll = static_cast<unsigned>(rng() % 1000);
  std::string e = "{\"user_id\": \"" + uuid(rng) + "\", \"app_version\": \"" +
                  std::to_string(rng() % 4) + "." + std::to_string(rng() % 10) + "." +
                  std::to_string(rng() % 10) + "\"";
  if (roll >= 50) {  // ~5% have no device_type
    e += ", \"device_type\": \"";
    e += kDeviceTypes[rng() % 5];
    e += "\"";
  }
  e += ", \"ip\": \"" + (rng() % 5 == 0 ? ipv6(rng) : ipv4(rng)) + "\"";
  e += ", \"locale\": \"";
  e += kLocales[rng() % 16];
  e += "\", \"device_id\": \"" + std::to_string(100 + rng() % 900) + "-" +
       std::to_string(10 + rng() % 90) + "-" + std::to_string(1000 + rng() % 9000) + "\"";
  const std::int64_t seconds = 1'694'000'000 + static_cast<std::int64_t>(rng() % 60'000'000);
  switch (rng() % 10) {
    case 0: e += ", \"timestamp\": \"" + std::to_string(seconds) + "\""; break;
    case 1: e += ", \"timestamp\": " + std::to_string(seconds * 1000 + 123); break;
    default: e += ", \"timestamp\": " + std::to_string(seconds); break;
  }
  e += "}";
  if (roll < 10) {  // ~1% malformed in assorted ways
    switch (roll % 5) {
      case 0: e.resize(e.size() / 2); break;                             // truncated
      case 1: e.replace(2, 7, "userid_"); break;                         // missing user_id
      case 2: e.insert(e.size() - 1, ", \"timestamp\": 1.5"); break;     // invalid timestamp
      case 3: e = "[" + e + "]"; break;                                  // not an object
      default: e.insert(e.size() - 1, ", \"locale\": 42"); break;        // a warning
    }
  }
  return e;
}

std::vector<std::string> realisticPool() {
  std::mt19937_64 rng(20240601);
  std::vector<std::string> pool;
  pool.reserve(10'000);
  for (int i = 0; i < 10'000; ++i) pool.push_back(realisticEvent(rng));
  return pool;
}

void runPool(benchmark::State& state, const std::vector<std::string>& pool) {
  loginflow::Transformer transformer;
  std::size_t i = 0;
  std::size_t bytes = 0;
  for (auto _ : state) {
    const std::string& v = pool[i];
    loginflow::InputRecord in;
    in.value = v.data();
    in.value_len = v.size();
    const loginflow::Result& r = transformer.apply(in, kNowMs);
    benchmark::DoNotOptimize(r.value.data());
    benchmark::DoNotOptimize(r.detail.data());
    bytes += v.size();
    if (++i == pool.size()) i = 0;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}

void BM_TransformRealistic(benchmark::State& state) {
  static const std::vector<std::string> pool = realisticPool();
  runPool(state, pool);
}
BENCHMARK(BM_TransformRealistic);

// Every record a dead letter of some kind (the slow paths must not be pathological).
void BM_TransformDeadLetters(benchmark::State& state) {
  static const std::vector<std::string> pool = {
      R"({"user_id": "u", "timestamp": 1})",
      R"({"device_type": "ios", "timestamp": 1694479551})",
      R"({"user_id": 42, "timestamp": 1694479551})",
      R"({"user_id": "424cdd21-063a-43a7-b91b-7ca1a833afae", "timestamp": "16944x"})",
      R"({"user_id": "424cdd21-063a-43a7-b91b-7ca1a833afae", "timestamp": 1694479551)",
      R"(["not", "an", "object"])",
      R"({"user_id": "\udc00", "timestamp": 1694479551})",
  };
  runPool(state, pool);
}
BENCHMARK(BM_TransformDeadLetters);

// A valid record carrying ~100 KB of ignored nested content.
void BM_TransformLargeIgnored(benchmark::State& state) {
  std::string big = R"({"user_id": "u1", "timestamp": 1694479551, "extra": [)";
  for (int i = 0; i < 5000; ++i) big += R"({"k": "value\n", "n": 1.25e3},)";
  big += "null]}";
  static const std::vector<std::string> pool = {big};
  runPool(state, pool);
}
BENCHMARK(BM_TransformLargeIgnored);

}  // namespace

BENCHMARK_MAIN();
