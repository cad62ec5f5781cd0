package storetest

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
)

func acceptTests() []test {
	return []test{
		{"ResultsInOrder", func(t *testing.T, b *bundle) {
			var params []fanout.AcceptParams
			for i := range 5 {
				params = append(params, fanout.AcceptParams{
					Message: b.msg("r", b.at(time.Duration(i)*time.Second)),
					Targets: []string{"a", "b"},
				})
			}
			res := b.accept(params...)
			for i, r := range res {
				require.Equal(t, params[i].Message.ID, r.MessageID, "result %d", i)
				require.False(t, r.Replayed, "result %d", i)
				require.Len(t, b.get(r.MessageID).Deliveries, 2, "result %d", i)
			}
		}},

		{"RefusedMessageFailsItsBatchOnly", func(t *testing.T, b *bundle) {
			// A message the store can never store (here steps that do not
			// form a list, which every store refuses) fails the batch with
			// an error that says so, and not with a store outage: the
			// caller (the committer) then stores the others without it.
			good1 := fanout.AcceptParams{Message: b.msg("r", b.at(0)), Targets: []string{"a"}}
			bad := fanout.AcceptParams{Message: b.msg("r", b.at(0)), Steps: []fanout.AcceptStep{
				{Name: "one", Target: "a", After: []string{"missing"}},
			}}
			good2 := fanout.AcceptParams{Message: b.msg("r", b.at(0)), Targets: []string{"a", "b"}}
			_, err := b.store.Accept(b.ctx, []fanout.AcceptParams{good1, bad, good2})
			require.ErrorIs(t, err, fanout.ErrInvalidMessage)
			require.NotErrorIs(t, err, fanout.ErrStoreUnavailable, "a refused message is not an outage: retrying cannot help")
			for _, id := range []string{good1.Message.ID, bad.Message.ID, good2.Message.ID} {
				_, err := b.store.GetMessage(b.ctx, id)
				require.ErrorIs(t, err, fanout.ErrNotFound, "a failed Accept stores nothing")
			}

			res := b.accept(good1, good2)
			require.Equal(t, good1.Message.ID, res[0].MessageID)
			require.Equal(t, good2.Message.ID, res[1].MessageID)
			require.Len(t, b.get(good2.Message.ID).Deliveries, 2)
		}},

		{"HeaderBytesRoundTrip", func(t *testing.T, b *bundle) {
			// HTTP lets a header value carry bytes that are not UTF-8
			// (obs-text); the store gives back the exact bytes.
			m := b.msg("r", b.at(0))
			m.Header = http.Header{
				"X-Latin1": {"ok", "caf\xe9", "\xff\xfe\x80"},
				"X-Utf8":   {"café ☃"},
				"X-Plain":  {"v"},
			}
			b.accept(fanout.AcceptParams{Message: m, Targets: []string{"a"}})
			require.Equal(t, m.Header, b.get(m.ID).Message.Header)
		}},

		{"RoundTrip", func(t *testing.T, b *bundle) {
			received := time.Date(2026, 3, 1, 14, 0, 0, 123456789, time.FixedZone("CET", 3600))
			m := fanout.Message{
				ID:     fanout.NewMessageID(),
				Route:  "signup",
				Tenant: "acme",
				Method: http.MethodPut,
				Path:   "/users/7/profile?x=1&y=%20",
				Header: http.Header{
					"Content-Type": {"application/json; charset=utf-8"},
					"X-Multi":      {"one", "two", ""},
					"X-Unicode":    {"héllo ☃"},
				},
				Body:           []byte{0, 1, 2, 0xff, 0xfe, '\n', 'x', 0},
				IdempotencyKey: "key-1",
				ReceivedAt:     received,
			}
			res := b.accept(fanout.AcceptParams{Message: m, Targets: []string{"crm", "analytics"}, DedupWindow: time.Hour})
			require.Equal(t, fanout.AcceptResult{MessageID: m.ID}, res[0])

			md := b.get(m.ID)
			got := md.Message
			require.Equal(t, m.ID, got.ID)
			require.Equal(t, m.Route, got.Route)
			require.Equal(t, m.Tenant, got.Tenant)
			require.Equal(t, m.Method, got.Method)
			require.Equal(t, m.Path, got.Path)
			require.Equal(t, m.Header, got.Header)
			require.Equal(t, m.Body, got.Body)
			require.Equal(t, m.IdempotencyKey, got.IdempotencyKey)
			requireTime(t, received, got.ReceivedAt)

			require.Empty(t, md.Attempts)
			require.Len(t, md.Deliveries, 2)
			targets := map[string]bool{}
			for _, d := range md.Deliveries {
				targets[d.Target] = true
				require.NotZero(t, d.ID)
				require.Equal(t, m.ID, d.MessageID)
				require.Equal(t, m.Route, d.Route)
				require.Equal(t, fanout.StatePending, d.State)
				require.Zero(t, d.Attempts)
				requireTime(t, received, d.NextAttemptAt, "a new delivery is due when its message was received")
				require.Zero(t, d.LastStatus)
				require.Empty(t, d.LastError)
				require.Equal(t, fanout.ClassNone, d.LastClass)
			}
			require.Equal(t, map[string]bool{"crm": true, "analytics": true}, targets)
		}},

		{"EmptyBodyAndHeader", func(t *testing.T, b *bundle) {
			m := b.msg("r", b.t0)
			m.Method, m.Body, m.Header = http.MethodGet, nil, nil
			b.accept(fanout.AcceptParams{Message: m, Targets: []string{"a"}})
			got := b.get(m.ID).Message
			require.Empty(t, got.Body)
			require.Empty(t, got.Header)
		}},

		{"Atomic", func(t *testing.T, b *bundle) {
			first := b.send("r", b.t0, "a")
			ok := b.msg("r", b.at(time.Second))
			dup := b.msg("r", b.at(time.Second))
			dup.ID = first // an id that exists: the batch must fail whole
			_, err := b.store.Accept(b.ctx, []fanout.AcceptParams{
				{Message: ok, Targets: []string{"a", "b"}},
				{Message: dup, Targets: []string{"a"}},
			})
			require.Error(t, err)

			_, err = b.store.GetMessage(b.ctx, ok.ID)
			requireNotFound(t, err)
			require.Len(t, b.get(first).Deliveries, 1)
			leased := b.lease("b", "w", b.at(time.Hour), 10)
			require.Empty(t, leased, "no delivery of the failed batch may exist")
		}},

		{"Empty", func(t *testing.T, b *bundle) {
			res, err := b.store.Accept(b.ctx, nil)
			require.NoError(t, err)
			require.Empty(t, res)
		}},
	}
}

func idempotencyTests() []test {
	const window = 24 * time.Hour
	keyed := func(b *bundle, route, key string, at time.Time) fanout.AcceptParams {
		m := b.msg(route, at)
		m.IdempotencyKey = key
		return fanout.AcceptParams{Message: m, Targets: []string{"a", "b"}, DedupWindow: window}
	}
	return []test{
		{"SameRouteWithinWindow", func(t *testing.T, b *bundle) {
			first := keyed(b, "r", "k", b.t0)
			b.accept(first)
			again := keyed(b, "r", "k", b.at(window-time.Minute))
			res := b.accept(again)
			require.Equal(t, fanout.AcceptResult{MessageID: first.Message.ID, Replayed: true}, res[0])

			_, err := b.store.GetMessage(b.ctx, again.Message.ID)
			requireNotFound(t, err)
			page, _, err := b.store.ListMessages(b.ctx, fanout.ListMessagesParams{})
			require.NoError(t, err)
			require.Len(t, page, 1)
			require.Len(t, b.lease("a", "w", b.at(window), 10), 1, "a replayed message adds no delivery")
		}},

		{"DifferentRoute", func(t *testing.T, b *bundle) {
			b.accept(keyed(b, "r1", "k", b.t0))
			other := keyed(b, "r2", "k", b.at(time.Second))
			res := b.accept(other)
			require.Equal(t, fanout.AcceptResult{MessageID: other.Message.ID}, res[0])
			b.get(other.Message.ID)
		}},

		{"OutsideWindow", func(t *testing.T, b *bundle) {
			b.accept(keyed(b, "r", "k", b.t0))
			late := keyed(b, "r", "k", b.at(window+time.Minute))
			res := b.accept(late)
			require.Equal(t, fanout.AcceptResult{MessageID: late.Message.ID}, res[0], "a key past its window is free again")
			b.get(late.Message.ID)

			// The key now belongs to the newer message.
			again := keyed(b, "r", "k", b.at(window+2*time.Minute))
			res = b.accept(again)
			require.Equal(t, fanout.AcceptResult{MessageID: late.Message.ID, Replayed: true}, res[0])
		}},

		{"SameBatch", func(t *testing.T, b *bundle) {
			first := keyed(b, "r", "k", b.t0)
			second := keyed(b, "r", "k", b.t0)
			other := keyed(b, "r", "other", b.t0)
			res := b.accept(first, second, other)
			require.Equal(t, []fanout.AcceptResult{
				{MessageID: first.Message.ID},
				{MessageID: first.Message.ID, Replayed: true},
				{MessageID: other.Message.ID},
			}, res)
			_, err := b.store.GetMessage(b.ctx, second.Message.ID)
			requireNotFound(t, err)
		}},

		{"ZeroWindowIsNotChecked", func(t *testing.T, b *bundle) {
			first := keyed(b, "r", "k", b.t0)
			first.DedupWindow = 0
			second := keyed(b, "r", "k", b.at(time.Second))
			second.DedupWindow = 0
			res := b.accept(first, second)
			require.Equal(t, []fanout.AcceptResult{{MessageID: first.Message.ID}, {MessageID: second.Message.ID}}, res)
		}},
	}
}
