// The shared UTF-8 checks (loginflow/utf8.h) against RFC 3629's boundaries.
#include "loginflow/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace loginflow {
namespace {

TEST(Utf8, SequenceLengthsAtTheBoundaries) {
  using namespace std::string_literals;
  EXPECT_EQ(utf8SequenceLength("a", 0), 1u);
  EXPECT_EQ(utf8SequenceLength("\x00"s, 0), 1u);
  EXPECT_EQ(utf8SequenceLength("\xC2\x80", 0), 2u);          // U+0080
  EXPECT_EQ(utf8SequenceLength("\xDF\xBF", 0), 2u);          // U+07FF
  EXPECT_EQ(utf8SequenceLength("\xE0\xA0\x80", 0), 3u);      // U+0800
  EXPECT_EQ(utf8SequenceLength("\xED\x9F\xBF", 0), 3u);      // U+D7FF
  EXPECT_EQ(utf8SequenceLength("\xEE\x80\x80", 0), 3u);      // U+E000
  EXPECT_EQ(utf8SequenceLength("\xF0\x90\x80\x80", 0), 4u);  // U+10000
  EXPECT_EQ(utf8SequenceLength("\xF4\x8F\xBF\xBF", 0), 4u);  // U+10FFFF
}

TEST(Utf8, IllFormedSequencesAreZero) {
  EXPECT_EQ(utf8SequenceLength("\x80", 0), 0u);              // stray continuation byte
  EXPECT_EQ(utf8SequenceLength("\xC0\x80", 0), 0u);          // overlong U+0000
  EXPECT_EQ(utf8SequenceLength("\xC1\xBF", 0), 0u);          // overlong U+007F
  EXPECT_EQ(utf8SequenceLength("\xE0\x9F\xBF", 0), 0u);      // overlong U+07FF
  EXPECT_EQ(utf8SequenceLength("\xED\xA0\x80", 0), 0u);      // surrogate U+D800
  EXPECT_EQ(utf8SequenceLength("\xF0\x8F\xBF\xBF", 0), 0u);  // overlong U+FFFF
  EXPECT_EQ(utf8SequenceLength("\xF4\x90\x80\x80", 0), 0u);  // U+110000
  EXPECT_EQ(utf8SequenceLength("\xF5\x80\x80\x80", 0), 0u);
  EXPECT_EQ(utf8SequenceLength("\xE2\x82", 0), 0u);          // cut short
  EXPECT_EQ(utf8SequenceLength("\xE2\x28\xA1", 0), 0u);      // bad second byte
  EXPECT_EQ(utf8SequenceLength("\xF0\x90\x28\x80", 0), 0u);  // bad third byte
}

TEST(Utf8, ValidAndSanitized) {
  EXPECT_TRUE(validUtf8(""));
  EXPECT_TRUE(validUtf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));
  EXPECT_FALSE(validUtf8("caf\xC3"));
  EXPECT_EQ(sanitizeUtf8("ok"), "ok");
  EXPECT_EQ(sanitizeUtf8("a\xFF" "b"), "a\xEF\xBF\xBD" "b");
  // Each byte that starts no well-formed sequence is replaced on its own.
  EXPECT_EQ(sanitizeUtf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(sanitizeUtf8("\xE2\x82"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_TRUE(validUtf8(sanitizeUtf8("\xC0\x80\xF4\x90\x80\x80 x")));
  // Control characters stay unless asked for (metric label values).
  EXPECT_EQ(sanitizeUtf8("a\nb\x7F"), "a\nb\x7F");
  EXPECT_EQ(sanitizeUtf8("a\nb\x7F\xC3\xA9", true), "a\xEF\xBF\xBD" "b\xEF\xBF\xBD\xC3\xA9");
}

}  // namespace
}  // namespace loginflow
