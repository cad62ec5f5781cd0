package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
)

func purgeTests() []test {
	purge := func(b *bundle, p fanout.PurgeParams) int {
		b.t.Helper()
		n, err := b.store.Purge(b.ctx, p)
		require.NoError(b.t, err)
		return n
	}
	exists := func(b *bundle, id string) bool {
		b.t.Helper()
		_, err := b.store.GetMessage(b.ctx, id)
		if err == nil {
			return true
		}
		require.ErrorIs(b.t, err, fanout.ErrNotFound)
		return false
	}
	return []test{
		{"OnlySucceededAndOld", func(t *testing.T, b *bundle) {
			cut := b.at(time.Hour)
			done := b.send("r", b.t0, "a", "b")
			dead := b.send("r", b.t0, "a", "b")
			waiting := b.send("r", b.t0, "a", "b")
			recent := b.send("r", cut, "a")
			now := b.at(2 * time.Hour)
			ok := outcome{fanout.StateSucceeded, time.Time{}}
			b.settle("a", now, map[string]outcome{done: ok, dead: ok, waiting: ok, recent: ok})
			b.settle("b", now, map[string]outcome{done: ok, dead: {fanout.StateDead, time.Time{}}, waiting: {fanout.StateRetrying, now.Add(time.Hour)}})

			require.Equal(t, 1, purge(b, fanout.PurgeParams{SucceededBefore: cut}))
			require.False(t, exists(b, done))
			require.True(t, exists(b, dead), "dead letters are kept")
			require.True(t, exists(b, waiting))
			require.True(t, exists(b, recent), "received at the cut, not before it")
			require.Zero(t, purge(b, fanout.PurgeParams{SucceededBefore: cut}))
		}},

		{"Many", func(t *testing.T, b *bundle) {
			const total = 150
			var params []fanout.AcceptParams
			want := map[string]outcome{}
			for range total {
				m := b.msg("r", b.t0)
				params = append(params, fanout.AcceptParams{Message: m, Targets: []string{"a"}})
				want[m.ID] = outcome{fanout.StateSucceeded, time.Time{}}
			}
			b.accept(params...)
			b.settle("a", b.at(time.Minute), want)
			require.Equal(t, total, purge(b, fanout.PurgeParams{SucceededBefore: b.at(time.Hour)}))
			ids, _ := b.list(fanout.ListMessagesParams{})
			require.Empty(t, ids)
		}},

		{"ZeroKeepsMessages", func(t *testing.T, b *bundle) {
			id := b.send("r", b.t0, "a")
			b.settle("a", b.at(time.Minute), map[string]outcome{id: {fanout.StateSucceeded, time.Time{}}})
			require.Zero(t, purge(b, fanout.PurgeParams{KeysBefore: b.at(time.Hour)}))
			require.True(t, exists(b, id))
		}},

		{"ForgetsOldKeys", func(t *testing.T, b *bundle) {
			const window = 24 * time.Hour
			keyed := func(key string, at time.Time) fanout.AcceptParams {
				m := b.msg("r", at)
				m.IdempotencyKey = key
				return fanout.AcceptParams{Message: m, Targets: []string{"a"}, DedupWindow: window}
			}
			old, recent := keyed("old", b.t0), keyed("recent", b.at(time.Hour))
			b.accept(old, recent)
			require.Zero(t, purge(b, fanout.PurgeParams{KeysBefore: b.at(time.Minute)}))
			require.True(t, exists(b, old.Message.ID), "purging keys keeps the messages")

			now := b.at(2 * time.Hour)
			again := keyed("old", now)
			res := b.accept(again, keyed("recent", now))
			require.Equal(t, fanout.AcceptResult{MessageID: again.Message.ID}, res[0], "a forgotten key is free")
			require.Equal(t, fanout.AcceptResult{MessageID: recent.Message.ID, Replayed: true}, res[1], "a newer key is kept")
		}},
	}
}

func backlogTests() []test {
	backlog := func(b *bundle) map[string]fanout.TargetBacklog {
		b.t.Helper()
		got, err := b.store.Backlog(b.ctx)
		require.NoError(b.t, err)
		out := map[string]fanout.TargetBacklog{}
		for _, tb := range got {
			_, dup := out[tb.Target]
			require.False(b.t, dup, "target %s twice", tb.Target)
			out[tb.Target] = tb
		}
		return out
	}
	return []test{
		{"Empty", func(t *testing.T, b *bundle) {
			require.Empty(t, backlog(b))
		}},

		{"Counts", func(t *testing.T, b *bundle) {
			oldest := b.send("r", b.at(time.Second), "a", "b")
			leased := b.send("r", b.at(2*time.Second), "a", "b")
			retrying := b.send("r", b.at(3*time.Second), "a", "b")
			b.send("r", b.at(4*time.Second), "a", "b") // pending
			dead := b.send("r", b.at(5*time.Second), "a", "b", "c")

			now := b.at(time.Minute)
			require.Equal(t, []string{oldest, leased}, leasedIDs(b.lease("a", "w", now, 2)))
			b.settle("a", now, map[string]outcome{retrying: {fanout.StateRetrying, now.Add(time.Hour)}, dead: {fanout.StateDead, time.Time{}}})
			ok := outcome{fanout.StateSucceeded, time.Time{}}
			b.settle("b", now, map[string]outcome{oldest: ok, leased: ok, retrying: ok, dead: ok})
			b.settle("c", now, map[string]outcome{dead: {fanout.StateDead, time.Time{}}})

			got := backlog(b)
			require.Len(t, got, 3)
			a := got["a"]
			require.Equal(t, 4, a.Waiting, "delivering, retrying and pending all wait")
			require.Equal(t, 1, a.Dead)
			requireTime(t, b.at(time.Second), a.OldestWaiting)

			require.Equal(t, 1, got["b"].Waiting)
			require.Zero(t, got["b"].Dead)
			requireTime(t, b.at(4*time.Second), got["b"].OldestWaiting)

			c := got["c"]
			require.Zero(t, c.Waiting)
			require.Equal(t, 1, c.Dead)
			require.True(t, c.OldestWaiting.IsZero())
		}},

		{"DoneTargetsLeave", func(t *testing.T, b *bundle) {
			id := b.send("r", b.t0, "a")
			require.Len(t, backlog(b), 1)
			b.settle("a", b.at(time.Minute), map[string]outcome{id: {fanout.StateSucceeded, time.Time{}}})
			require.Empty(t, backlog(b))
		}},
	}
}
