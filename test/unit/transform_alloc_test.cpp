// Proves the transform's steady state does no heap allocation (transform.h's promise, and what
// keeps the workers' hot path free of allocator contention).
//
// This executable replaces the global operator new/delete with counting versions and, when no
// sanitizer owns the allocator, also interposes malloc/calloc/realloc (glibc's documented
// replacement mechanism, forwarding to __libc_*), so that allocations made with malloc — by
// RapidJSON's default allocator, the C library or anyone else — are seen too. Counting is
// switched on only around the measured loop, which does nothing but call apply() and tally
// plain integers.

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "loginflow/transform.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define LOGINFLOW_SANITIZED_ALLOCATOR 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define LOGINFLOW_SANITIZED_ALLOCATOR 1
#endif

namespace {
std::atomic<bool> g_counting{false};
std::atomic<std::size_t> g_news{0};
std::atomic<std::size_t> g_mallocs{0};

void* countedNew(std::size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) g_news.fetch_add(1, std::memory_order_relaxed);
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void* countedAlignedNew(std::size_t n, std::align_val_t al) {
  if (g_counting.load(std::memory_order_relaxed)) g_news.fetch_add(1, std::memory_order_relaxed);
  const auto a = static_cast<std::size_t>(al);
  void* p = std::aligned_alloc(a, (n + a - 1) / a * a);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
}  // namespace

// ---- replaced global allocation functions (all forms, so that none bypasses the count) ----
void* operator new(std::size_t n) { return countedNew(n); }
void* operator new[](std::size_t n) { return countedNew(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return countedNew(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return countedNew(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new(std::size_t n, std::align_val_t al) { return countedAlignedNew(n, al); }
void* operator new[](std::size_t n, std::align_val_t al) { return countedAlignedNew(n, al); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

#if !defined(LOGINFLOW_SANITIZED_ALLOCATOR) && defined(__GLIBC__)
#define LOGINFLOW_COUNTS_MALLOC 1
extern "C" {
void* __libc_malloc(std::size_t);                // NOLINT(bugprone-reserved-identifier)
void* __libc_calloc(std::size_t, std::size_t);   // NOLINT(bugprone-reserved-identifier)
void* __libc_realloc(void*, std::size_t);        // NOLINT(bugprone-reserved-identifier)
void __libc_free(void*);                         // NOLINT(bugprone-reserved-identifier)

void* malloc(std::size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) g_mallocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t size) {
  if (g_counting.load(std::memory_order_relaxed)) g_mallocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) g_mallocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_realloc(p, n);
}
void free(void* p) { __libc_free(p); }
}
#endif

namespace loginflow {
namespace {

constexpr std::int64_t kNow = 1'764'064'800'123;

struct Counts {
  std::size_t news;
  std::size_t mallocs;
};

// Runs `body` with counting on; returns what was allocated meanwhile.
template <typename Body>
Counts counted(Body&& body) {
  const std::size_t news0 = g_news.load();
  const std::size_t mallocs0 = g_mallocs.load();
  g_counting.store(true);
  body();
  g_counting.store(false);
  return Counts{g_news.load() - news0, g_mallocs.load() - mallocs0};
}

std::vector<std::string> typicalRecords() {
  std::vector<std::string> v = {
      // valid
      R"({"user_id": "424cdd21-063a-43a7-b91b-7ca1a833afae", "app_version": "2.3.0", "device_type": "android", "ip": "199.172.111.135", "locale": "RU", "device_id": "593-47-5928", "timestamp": 1694479551})",
      R"({"user_id": "9b2f0c55-3d1e-4c47-9a0e-0b7d1f5c2e11", "app_version": "4.10", "device_type": "iOS", "ip": "2001:db8::8a2e:370:7334", "locale": "tx", "device_id": "101-22-3333", "timestamp": "1694479551123"})",
      R"({"user_id": "caf\u00e9", "ip": "::ffff:10.1.2.3", "locale": " de ", "timestamp": "0001694479551"})",
      R"({"user_id": "u", "timestamp": 1694479551, "extra": {"nested": [1, 2.5, "x\n", null, true]}})",
      // with warnings
      R"({"user_id": "u2", "device_id": 5, "device_type": [], "app_version": "v1", "locale": "ENGL", "ip": "01.2.3.4", "timestamp": 1694479551})",
      R"({"user_id": "u3", "ip": "fe80::1%eth0", "locale": 7, "timestamp": 1694479551000})",
      // dead letters, one of each reason
      R"({"user_id": "u4", "timestamp": 1694479551)",
      "{\"user_id\": \"\\udc00\", \"timestamp\": 1694479551}",
      "{\"a\": 1e400}",
      "{\"a\": 0e400, \"user_id\": \"u\", \"timestamp\": 1694479551}",
      "\xEF\xBB\xBF{}",
      "{\"a\": \"\xC3\x28\"}",
      R"(["not", "an", "object"])",
      R"({"timestamp": 1694479551})",
      R"({"user_id": 42, "timestamp": 1694479551})",
      R"({"user_id": "u5"})",
      R"({"user_id": "u6", "timestamp": 1.5})",
      R"({"user_id": "u7", "timestamp": "99999999999999999999999"})",
      std::string("{}\0junk", 7),
      "",
  };
  v.push_back(std::string(1'100'000, 'x'));                                  // too_large
  v.push_back(std::string(5'000, '[') + std::string(5'000, ']'));             // deep
  v.push_back(R"({"user_id":"u8","timestamp":1694479551,"d":)" + std::string(2'000, '[') +
              std::string(2'000, ']') + "}");
  return v;
}

struct Tally {
  std::size_t outputs = 0;
  std::size_t dead = 0;
};

Tally applyAll(Transformer& t, const std::vector<std::string>& records, int rounds) {
  Tally tally;
  InputRecord in;
  for (int r = 0; r < rounds; ++r) {
    for (const std::string& rec : records) {
      in.value = rec.data();
      in.value_len = rec.size();
      const Result& res = t.apply(in, kNow);
      if (res.kind == Result::Kind::kOutput) {
        ++tally.outputs;
      } else {
        ++tally.dead;
      }
    }
    // A null Kafka value too.
    in.value = nullptr;
    in.value_len = 0;
    if (t.apply(in, kNow).kind == Result::Kind::kDeadLetter) ++tally.dead;
  }
  return tally;
}

TEST(TransformAlloc, CounterSeesAllocations) {
  // The measurement itself must be able to fail.
  std::string* s = nullptr;
  void* m = nullptr;
  const Counts c = counted([&] {
    s = new std::string(100, 'x');
    m = std::malloc(64);
  });
  delete s;
  std::free(m);
  EXPECT_GE(c.news, 1U);
#ifdef LOGINFLOW_COUNTS_MALLOC
  EXPECT_GE(c.mallocs, 2U);  // operator new above mallocs too
#endif
}

TEST(TransformAlloc, SteadyStateDoesNotAllocate) {
  const std::vector<std::string> records = typicalRecords();
  Transformer t;
  applyAll(t, records, 2);  // warm-up: buffers grow to the largest record seen
  Tally tally;
  const Counts c = counted([&] { tally = applyAll(t, records, 200); });
  EXPECT_EQ(c.news, 0U) << "operator new calls in " << (tally.outputs + tally.dead) << " records";
  EXPECT_EQ(c.mallocs, 0U) << "malloc calls in " << (tally.outputs + tally.dead) << " records";
  // The loop really did run both paths: 8 of the records are outputs (valid, with warnings,
  // the 0e400 re-parse and the deep member), the rest and the null value dead letters.
  constexpr std::size_t kOutputs = 8;
  EXPECT_EQ(tally.outputs, 200U * kOutputs);
  EXPECT_EQ(tally.dead, 200U * (records.size() - kOutputs + 1));
}

TEST(TransformAlloc, ManyThousandTypicalRecordsDoNotAllocate) {
  // A realistic stream: mostly valid records, some warnings, a few dead letters.
  std::vector<std::string> records;
  for (int i = 0; i < 1000; ++i) {
    std::string r = R"({"user_id": "user-)" + std::to_string(i) +
                    R"(", "app_version": "1.)" + std::to_string(i % 30) +
                    R"(", "device_type": ")" + (i % 3 == 0 ? "iOS" : "android") +
                    R"(", "ip": "10.0.)" + std::to_string(i % 256) + "." +
                    std::to_string(i % 200) + R"(", "locale": "US", "timestamp": )" +
                    std::to_string(1694479551 + i) + "}";
    if (i % 50 == 0) r = R"({"user_id": "u", "timestamp": "bad"})";
    if (i % 20 == 1) r.insert(r.size() - 1, R"(, "locale": "toolong")");
    records.push_back(r);
  }
  Transformer t;
  applyAll(t, records, 1);
  Tally tally;
  const Counts c = counted([&] { tally = applyAll(t, records, 10); });
  EXPECT_EQ(c.news, 0U);
  EXPECT_EQ(c.mallocs, 0U);
  EXPECT_EQ(tally.outputs + tally.dead, 10U * 1001);
}

TEST(TransformAlloc, FirstTypicalRecordOfANewTransformerDoesNotAllocate) {
  Transformer t;  // the constructor sizes everything on a typical record
  const std::string rec =
      R"({"user_id": "424cdd21-063a-43a7-b91b-7ca1a833afae", "app_version": "2.3.0", "device_type": "android", "ip": "199.172.111.135", "locale": "RU", "device_id": "593-47-5928", "timestamp": 1694479551})";
  InputRecord in;
  in.value = rec.data();
  in.value_len = rec.size();
  bool output = false;
  const Counts c = counted([&] { output = t.apply(in, kNow).kind == Result::Kind::kOutput; });
  EXPECT_TRUE(output);
  EXPECT_EQ(c.news, 0U);
  EXPECT_EQ(c.mallocs, 0U);
}

}  // namespace
}  // namespace loginflow
