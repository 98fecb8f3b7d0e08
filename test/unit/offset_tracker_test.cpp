// OffsetTracker: the committable offset only moves over contiguous done records, stale handles
// (after revoke or a new generation) never move it, and the ring keeps working when it grows
// past its initial 64 entries (checked against a std::set model over random operations).
#include "loginflow/offset_tracker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <utility>
#include <vector>

namespace loginflow {
namespace {

using Handle = OffsetTracker::Handle;

Handle mustTrack(OffsetTracker& t, std::int32_t partition, std::int64_t offset) {
  auto h = t.track(partition, offset);
  EXPECT_TRUE(h.has_value()) << "track(" << partition << ", " << offset << ") refused";
  return h.value_or(Handle{});
}

TEST(OffsetTracker, InOrderCompletionMovesCommittableToLastPlusOne) {
  OffsetTracker t;
  t.assign(0);
  EXPECT_EQ(t.committable(0), -1);
  std::vector<Handle> hs;
  for (std::int64_t off = 10; off < 15; ++off) hs.push_back(mustTrack(t, 0, off));
  EXPECT_EQ(t.committable(0), -1) << "nothing done yet";
  for (std::size_t i = 0; i < hs.size(); ++i) {
    ASSERT_TRUE(t.done(hs[i]));
    EXPECT_EQ(t.committable(0), 10 + static_cast<std::int64_t>(i) + 1);
  }
  EXPECT_EQ(t.inFlight(0), 0u);
}

TEST(OffsetTracker, OutOfOrderCompletionHoldsAtTheFirstGapAndJumpsWhenItCloses) {
  OffsetTracker t;
  t.assign(3);
  // Offsets need not be contiguous (compacted topics, transaction markers).
  const std::vector<std::int64_t> offsets = {100, 101, 105, 106, 110};
  std::vector<Handle> hs;
  for (auto off : offsets) hs.push_back(mustTrack(t, 3, off));

  ASSERT_TRUE(t.done(hs[2]));  // 105
  ASSERT_TRUE(t.done(hs[4]));  // 110
  EXPECT_EQ(t.committable(3), -1) << "100 is not done: nothing may be committed";
  ASSERT_TRUE(t.done(hs[0]));  // 100
  EXPECT_EQ(t.committable(3), 101) << "held at the gap at 101";
  ASSERT_TRUE(t.done(hs[1]));  // 101 closes the gap: 105 was done already
  EXPECT_EQ(t.committable(3), 106) << "held at the gap at 106";
  ASSERT_TRUE(t.done(hs[3]));  // 106 closes the last gap: jumps over the done 110
  EXPECT_EQ(t.committable(3), 111);
  EXPECT_EQ(t.inFlight(3), 0u);
}

TEST(OffsetTracker, DoneTwiceReturnsFalse) {
  OffsetTracker t;
  t.assign(0);
  Handle a = mustTrack(t, 0, 0);
  Handle b = mustTrack(t, 0, 1);
  ASSERT_TRUE(t.done(b));
  EXPECT_FALSE(t.done(b)) << "done behind a gap, twice";
  ASSERT_TRUE(t.done(a));
  EXPECT_FALSE(t.done(a)) << "done and retired, twice";
  EXPECT_FALSE(t.done(b));
  EXPECT_EQ(t.committable(0), 2);
  EXPECT_EQ(t.inFlight(0), 0u);
  EXPECT_EQ(t.inFlight(), 0u);
}

TEST(OffsetTracker, HandleFromBeforeRevokeIsRefusedAndNeverMovesTheCommitPoint) {
  OffsetTracker t;
  t.assign(1);
  Handle old0 = mustTrack(t, 1, 50);
  Handle old1 = mustTrack(t, 1, 51);
  t.revoke(1);
  EXPECT_FALSE(t.assigned(1));
  EXPECT_FALSE(t.done(old0)) << "partition revoked";
  EXPECT_EQ(t.committable(1), -1);
  EXPECT_TRUE(t.pendingCommits().empty());

  // Re-assigned (a new generation): the new entries have the same sequence numbers as the
  // old handles, so only the generation tells them apart.
  t.assign(1);
  Handle new0 = mustTrack(t, 1, 40);  // the new owner may restart below the old offsets
  Handle new1 = mustTrack(t, 1, 41);
  ASSERT_EQ(new0.seq, old0.seq);
  ASSERT_EQ(new1.seq, old1.seq);
  ASSERT_NE(new0.generation, old0.generation);
  EXPECT_FALSE(t.done(old0));
  EXPECT_FALSE(t.done(old1));
  EXPECT_EQ(t.committable(1), -1) << "a stale ack moved the commit point";
  EXPECT_EQ(t.inFlight(1), 2u);
  EXPECT_TRUE(t.pendingCommits().empty());

  ASSERT_TRUE(t.done(new0));
  EXPECT_EQ(t.committable(1), 41);
  EXPECT_FALSE(t.done(old1));
  EXPECT_EQ(t.committable(1), 41);
  ASSERT_TRUE(t.done(new1)) << "the stale ack must not have marked the new entry done";
  EXPECT_EQ(t.committable(1), 42);
}

TEST(OffsetTracker, AssignOfATrackedPartitionKeepsItsGeneration) {
  OffsetTracker t;
  t.assign(2);
  Handle h = mustTrack(t, 2, 7);
  t.assign(2);  // idempotent: e.g. an eager re-assignment of a partition kept
  EXPECT_EQ(t.inFlight(2), 1u);
  EXPECT_TRUE(t.done(h));
  EXPECT_EQ(t.committable(2), 8);
}

TEST(OffsetTracker, TrackRefusesOffsetsGoingBackwardsAndUnassignedPartitions) {
  OffsetTracker t;
  EXPECT_FALSE(t.track(0, 0).has_value()) << "never assigned";
  t.assign(0);
  mustTrack(t, 0, 10);
  EXPECT_FALSE(t.track(0, 10).has_value()) << "same offset again";
  EXPECT_FALSE(t.track(0, 9).has_value()) << "backwards";
  EXPECT_EQ(t.inFlight(0), 1u) << "a refused track must not count";
  mustTrack(t, 0, 11);
  EXPECT_FALSE(t.track(5, 11).has_value()) << "another, unassigned partition";
  t.revoke(0);
  EXPECT_FALSE(t.track(0, 12).has_value()) << "revoked";
  EXPECT_EQ(t.inFlight(), 0u);
}

TEST(OffsetTracker, InFlightPerPartitionAndTotalAlsoAfterRevoke) {
  OffsetTracker t;
  t.assign(0);
  t.assign(1);
  std::vector<Handle> p0, p1;
  for (std::int64_t off = 0; off < 5; ++off) p0.push_back(mustTrack(t, 0, off));
  for (std::int64_t off = 0; off < 3; ++off) p1.push_back(mustTrack(t, 1, off));
  EXPECT_EQ(t.inFlight(0), 5u);
  EXPECT_EQ(t.inFlight(1), 3u);
  EXPECT_EQ(t.inFlight(), 8u);

  // Done behind a gap still counts as in flight (not yet committable); done at the head
  // no longer does.
  ASSERT_TRUE(t.done(p0[3]));
  EXPECT_EQ(t.inFlight(0), 5u);
  ASSERT_TRUE(t.done(p0[0]));
  EXPECT_EQ(t.inFlight(0), 4u);
  EXPECT_EQ(t.inFlight(), 7u);

  t.revoke(0);
  EXPECT_EQ(t.inFlight(0), 0u);
  EXPECT_EQ(t.inFlight(1), 3u);
  EXPECT_EQ(t.inFlight(), 3u);
  EXPECT_FALSE(t.done(p0[1]));
  EXPECT_EQ(t.inFlight(), 3u) << "a stale ack must not change the totals";
  t.revoke(0);  // revoking twice is harmless
  EXPECT_EQ(t.inFlight(), 3u);
  t.revoke(1);
  EXPECT_EQ(t.inFlight(), 0u);
  EXPECT_TRUE(t.partitions().empty());
}

TEST(OffsetTracker, PendingCommitsListsPartitionsAheadOfTheirCommittedOffset) {
  OffsetTracker t;
  t.assign(0);
  t.assign(1);
  Handle a0 = mustTrack(t, 0, 5);
  Handle a1 = mustTrack(t, 0, 6);
  Handle b0 = mustTrack(t, 1, 20);
  EXPECT_TRUE(t.pendingCommits().empty()) << "nothing done";
  EXPECT_EQ(t.committed(0), -1);

  ASSERT_TRUE(t.done(a0));
  ASSERT_TRUE(t.done(b0));
  auto pending = t.pendingCommits();
  std::sort(pending.begin(), pending.end());
  EXPECT_EQ(pending, (std::vector<std::pair<std::int32_t, std::int64_t>>{{0, 6}, {1, 21}}));

  t.markCommitted(0, 6);
  EXPECT_EQ(t.committed(0), 6);
  EXPECT_EQ(t.pendingCommits(), (std::vector<std::pair<std::int32_t, std::int64_t>>{{1, 21}}));
  t.markCommitted(1, 21);
  EXPECT_TRUE(t.pendingCommits().empty());

  // A late commit callback with an older offset does not move `committed` back.
  t.markCommitted(0, 3);
  EXPECT_EQ(t.committed(0), 6);
  t.markCommitted(7, 100);  // not assigned: ignored
  EXPECT_EQ(t.committed(7), -1);

  ASSERT_TRUE(t.done(a1));
  EXPECT_EQ(t.pendingCommits(), (std::vector<std::pair<std::int32_t, std::int64_t>>{{0, 7}}));

  t.revoke(0);
  EXPECT_TRUE(t.pendingCommits().empty()) << "a revoked partition is never committed";
  EXPECT_EQ(t.committed(0), -1);
}

TEST(OffsetTracker, ResumeAtMakesTheResumePointCommittableAndTracksAboveIt) {
  OffsetTracker t;
  EXPECT_FALSE(t.resumeAt(0, 100)) << "not assigned";
  t.assign(0);
  ASSERT_TRUE(t.resumeAt(0, 100));
  EXPECT_EQ(t.committable(0), 100);
  EXPECT_EQ(t.pendingCommits(), (std::vector<std::pair<std::int32_t, std::int64_t>>{{0, 100}}));
  EXPECT_FALSE(t.track(0, 99)) << "below the resume point: already done";
  Handle h = mustTrack(t, 0, 100);
  EXPECT_FALSE(t.resumeAt(0, 500)) << "records are tracked already";
  EXPECT_EQ(t.committable(0), 100);
  ASSERT_TRUE(t.done(h));
  EXPECT_EQ(t.committable(0), 101);
  t.assign(1);
  EXPECT_FALSE(t.resumeAt(1, -1001)) << "a logical offset is not a position";
}

TEST(OffsetTracker, RingGrowsPastItsInitialSizeKeepingOrder) {
  OffsetTracker t;
  t.assign(0);
  // Move the ring's head first, so that the outstanding entries wrap around the end of the
  // initial 64-entry ring when it has to grow.
  for (std::int64_t off = 0; off < 40; ++off) ASSERT_TRUE(t.done(mustTrack(t, 0, off)));
  ASSERT_EQ(t.committable(0), 40);
  constexpr std::int64_t kN = 1000;  // grows 4 times: 64 → 1024
  std::vector<Handle> hs;
  for (std::int64_t i = 0; i < kN; ++i) hs.push_back(mustTrack(t, 0, 100 + i * 2));
  EXPECT_EQ(t.inFlight(0), static_cast<std::size_t>(kN));
  // Complete all but the first and the 51st, in reverse: the commit point stays put.
  for (std::size_t i = hs.size() - 1; i >= 1; --i) {
    if (i == 50) continue;
    ASSERT_TRUE(t.done(hs[i]));
  }
  EXPECT_EQ(t.committable(0), 40);
  EXPECT_EQ(t.inFlight(0), static_cast<std::size_t>(kN));
  // The first closes a gap up to the 51st: the 50th's offset (an entry that was copied over
  // the old ring's wrap point) + 1.
  ASSERT_TRUE(t.done(hs[0]));
  EXPECT_EQ(t.committable(0), 100 + 49 * 2 + 1);
  EXPECT_EQ(t.inFlight(0), static_cast<std::size_t>(kN - 50));
  ASSERT_TRUE(t.done(hs[50]));
  EXPECT_EQ(t.committable(0), 100 + (kN - 1) * 2 + 1);
  EXPECT_EQ(t.inFlight(0), 0u);
}

// The model: per partition, the tracked entries not yet retired (a std::set of offsets) and
// which of them are not yet done. An entry retires when it and every entry before it are done;
// the committable offset is then the last retired offset + 1.
struct ModelPartition {
  std::set<std::int64_t> outstanding;  // tracked, not retired
  std::set<std::int64_t> not_done;     // tracked, not done (a subset of outstanding)
  std::int64_t last_offset = -1;
  std::int64_t committable = -1;

  void retire() {
    const std::int64_t limit = not_done.empty() ? INT64_MAX : *not_done.begin();
    while (!outstanding.empty() && *outstanding.begin() < limit) {
      committable = *outstanding.begin() + 1;
      outstanding.erase(outstanding.begin());
    }
  }
};

TEST(OffsetTracker, RandomCompletionOrderMatchesASetModel) {
  constexpr std::int32_t kPartitions = 3;
  constexpr int kOperations = 60'000;
  constexpr std::size_t kMaxOutstanding = 700;  // well beyond the initial ring of 64
  std::mt19937_64 rng(20240917);
  OffsetTracker t;
  std::map<std::int32_t, ModelPartition> model;
  // Live handles per partition, by offset; and handles already completed (for double dones).
  std::map<std::int32_t, std::map<std::int64_t, Handle>> live;
  std::vector<Handle> completed;
  for (std::int32_t p = 0; p < kPartitions; ++p) {
    t.assign(p);
    model[p];
  }
  std::size_t max_in_flight = 0;

  for (int op = 0; op < kOperations; ++op) {
    const auto p = static_cast<std::int32_t>(rng() % kPartitions);
    ModelPartition& m = model[p];
    auto& handles = live[p];
    const auto dice = rng() % 100;
    // Grow and shrink the outstanding window in phases, so the ring fills up far past 64 and
    // empties again.
    const bool growing = (op / 5000) % 2 == 0;
    if ((dice < (growing ? 65u : 35u) && m.outstanding.size() < kMaxOutstanding) || handles.empty()) {
      const std::int64_t off = m.last_offset + 1 + static_cast<std::int64_t>(rng() % 3);  // gaps of 0-2
      if (rng() % 50 == 0 && m.last_offset >= 0) {
        const std::int64_t back = m.last_offset - static_cast<std::int64_t>(rng() % 3);
        ASSERT_FALSE(t.track(p, back).has_value()) << "op " << op << ": offset " << back << " went backwards";
      }
      auto h = t.track(p, off);
      ASSERT_TRUE(h.has_value()) << "op " << op;
      m.last_offset = off;
      m.outstanding.insert(off);
      m.not_done.insert(off);
      handles.emplace(off, *h);
    } else if (dice < 97) {
      // Complete a random live handle.
      auto it = handles.begin();
      std::advance(it, static_cast<long>(rng() % handles.size()));
      ASSERT_TRUE(t.done(it->second)) << "op " << op << ": offset " << it->first;
      m.not_done.erase(it->first);
      m.retire();
      completed.push_back(it->second);
      handles.erase(it);
    } else if (!completed.empty()) {
      // A duplicate ack: refused, changes nothing.
      const Handle& h = completed[rng() % completed.size()];
      ASSERT_FALSE(t.done(h)) << "op " << op << ": a second done() was accepted";
    }

    ASSERT_EQ(t.committable(p), m.committable) << "op " << op << " partition " << p;
    ASSERT_EQ(t.inFlight(p), m.outstanding.size()) << "op " << op << " partition " << p;
    std::size_t total = 0;
    for (const auto& [id, mp] : model) total += mp.outstanding.size();
    ASSERT_EQ(t.inFlight(), total) << "op " << op;
    max_in_flight = std::max(max_in_flight, t.inFlight(p));
  }
  EXPECT_GT(max_in_flight, 256u) << "the ring should have grown several times";

  // Drain: complete everything left, in random order; every partition ends committable at its
  // last offset + 1 with nothing in flight.
  for (auto& [p, handles] : live) {
    std::vector<Handle> rest;
    for (const auto& [off, h] : handles) rest.push_back(h);
    std::shuffle(rest.begin(), rest.end(), rng);
    for (const auto& h : rest) ASSERT_TRUE(t.done(h));
    EXPECT_EQ(t.committable(p), model[p].last_offset + 1);
    EXPECT_EQ(t.inFlight(p), 0u);
  }
  EXPECT_EQ(t.inFlight(), 0u);
}

}  // namespace
}  // namespace loginflow
