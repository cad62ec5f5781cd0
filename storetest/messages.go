package storetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
)

func getMessageTests() []test {
	return []test{
		{"NotFound", func(t *testing.T, b *bundle) {
			_, err := b.store.GetMessage(b.ctx, fanout.NewMessageID())
			requireNotFound(t, err)
		}},
	}
}

// list calls ListMessages and returns the ids of the page.
func (b *bundle) list(p fanout.ListMessagesParams) ([]string, string) {
	b.t.Helper()
	page, next, err := b.store.ListMessages(b.ctx, p)
	require.NoError(b.t, err)
	ids := make([]string, len(page))
	for i, s := range page {
		ids[i] = s.Message.ID
	}
	return ids, next
}

func listMessagesTests() []test {
	return []test{
		{"Summaries", func(t *testing.T, b *bundle) {
			id := b.send("r", b.t0, "a", "b")
			page, next, err := b.store.ListMessages(b.ctx, fanout.ListMessagesParams{})
			require.NoError(t, err)
			require.Empty(t, next)
			require.Len(t, page, 1)
			s := page[0]
			require.Equal(t, id, s.Message.ID)
			require.Equal(t, "r", s.Message.Route)
			requireTime(t, b.t0, s.Message.ReceivedAt)
			require.Len(t, s.Deliveries, 2)
			for _, d := range s.Deliveries {
				require.Equal(t, id, d.MessageID)
				require.Equal(t, fanout.StatePending, d.State)
			}
		}},

		{"Empty", func(t *testing.T, b *bundle) {
			ids, next := b.list(fanout.ListMessagesParams{})
			require.Empty(t, ids)
			require.Empty(t, next)
		}},

		{"PagesNewestFirst", func(t *testing.T, b *bundle) {
			const total, limit = 25, 10
			received := map[string]time.Time{}
			var params []fanout.AcceptParams
			for i := range total {
				// Pairs of messages share a receive time, so the cursor
				// must break ties.
				m := b.msg("r", b.at(time.Duration(i/2)*time.Second))
				received[m.ID] = m.ReceivedAt
				params = append(params, fanout.AcceptParams{Message: m, Targets: []string{"a"}})
			}
			b.accept(params...)

			var all []string
			cursor := ""
			for pages := 0; ; pages++ {
				require.Less(t, pages, 3, "too many pages")
				ids, next := b.list(fanout.ListMessagesParams{Cursor: cursor, Limit: limit})
				if next != "" {
					require.Len(t, ids, limit)
				}
				all = append(all, ids...)
				if next == "" {
					break
				}
				cursor = next
			}
			require.Len(t, all, total)
			seen := map[string]bool{}
			for i, id := range all {
				require.False(t, seen[id], "message %s listed twice", id)
				seen[id] = true
				if i > 0 {
					require.False(t, received[id].After(received[all[i-1]]), "not newest first at %d", i)
				}
			}
			require.Len(t, seen, total)
		}},

		{"Filters", func(t *testing.T, b *bundle) {
			send := func(route, tenant string, at time.Time, targets ...string) string {
				m := b.msg(route, at)
				m.Tenant = tenant
				b.accept(fanout.AcceptParams{Message: m, Targets: targets})
				return m.ID
			}
			m1 := send("r1", "t1", b.t0, "a", "b")
			m2 := send("r2", "t2", b.at(time.Minute), "a")
			m3 := send("r1", "t2", b.at(2*time.Minute), "b")
			b.settle("a", b.at(3*time.Minute), map[string]outcome{m1: {fanout.StateDead, time.Time{}}})

			cases := []struct {
				name string
				p    fanout.ListMessagesParams
				want []string
			}{
				{"none", fanout.ListMessagesParams{}, []string{m3, m2, m1}},
				{"route", fanout.ListMessagesParams{Route: "r1"}, []string{m3, m1}},
				{"target", fanout.ListMessagesParams{Target: "b"}, []string{m3, m1}},
				{"tenant", fanout.ListMessagesParams{Tenant: "t2"}, []string{m3, m2}},
				{"state", fanout.ListMessagesParams{State: fanout.StateDead}, []string{m1}},
				{"state pending", fanout.ListMessagesParams{State: fanout.StatePending}, []string{m3, m2, m1}},
				{"state of target", fanout.ListMessagesParams{Target: "b", State: fanout.StateDead}, nil},
				{"pending to a", fanout.ListMessagesParams{Target: "a", State: fanout.StatePending}, []string{m2}},
				{"since", fanout.ListMessagesParams{Since: b.at(time.Minute)}, []string{m3, m2}},
				{"until", fanout.ListMessagesParams{Until: b.at(time.Minute)}, []string{m1}},
				{"since until", fanout.ListMessagesParams{Since: b.at(time.Minute), Until: b.at(2 * time.Minute)}, []string{m2}},
				{"route tenant", fanout.ListMessagesParams{Route: "r1", Tenant: "t1"}, []string{m1}},
				{"unknown route", fanout.ListMessagesParams{Route: "nope"}, nil},
			}
			for _, c := range cases {
				ids, next := b.list(c.p)
				require.Len(t, ids, len(c.want), c.name)
				if len(c.want) > 0 {
					require.Equal(t, c.want, ids, c.name)
				}
				require.Empty(t, next, c.name)
			}
		}},

		// The dead-letter list (state=dead) is a query of its own on
		// some engines: it must page like the others, list a message
		// dead to two targets once, and combine with every filter.
		{"DeadLetterPages", func(t *testing.T, b *bundle) {
			type sent struct {
				id, route, tenant string
				at                time.Time
				deadA, deadB      bool
			}
			var msgs []sent
			deadA, deadB := map[string]outcome{}, map[string]outcome{}
			for i := range 30 {
				m := b.msg([]string{"r1", "r2"}[i%2], b.at(time.Duration(i/2)*time.Second)) // pairs share a time
				m.Tenant = []string{"t1", "t2", "t3"}[i%3]
				b.accept(fanout.AcceptParams{Message: m, Targets: []string{"a", "b"}})
				s := sent{id: m.ID, route: m.Route, tenant: m.Tenant, at: m.ReceivedAt, deadA: i%3 == 0, deadB: i%4 == 0}
				if s.deadA {
					deadA[m.ID] = outcome{fanout.StateDead, time.Time{}}
				}
				if s.deadB {
					deadB[m.ID] = outcome{fanout.StateDead, time.Time{}}
				}
				msgs = append(msgs, s)
			}
			b.settle("a", b.at(time.Hour), deadA)
			b.settle("b", b.at(time.Hour), deadB)
			at := map[string]time.Time{}
			for _, s := range msgs {
				at[s.id] = s.at
			}

			cases := []struct {
				name string
				p    fanout.ListMessagesParams
				keep func(s sent) bool
			}{
				{"dead", fanout.ListMessagesParams{}, func(s sent) bool { return s.deadA || s.deadB }},
				{"dead to a", fanout.ListMessagesParams{Target: "a"}, func(s sent) bool { return s.deadA }},
				{"dead of r1", fanout.ListMessagesParams{Route: "r1"}, func(s sent) bool { return (s.deadA || s.deadB) && s.route == "r1" }},
				{"dead to b of t1", fanout.ListMessagesParams{Target: "b", Tenant: "t1"}, func(s sent) bool { return s.deadB && s.tenant == "t1" }},
				{"dead since", fanout.ListMessagesParams{Since: b.at(5 * time.Second), Until: b.at(12 * time.Second)}, func(s sent) bool {
					return (s.deadA || s.deadB) && !s.at.Before(b.at(5*time.Second)) && s.at.Before(b.at(12*time.Second))
				}},
			}
			for _, c := range cases {
				var want []string
				for i := len(msgs) - 1; i >= 0; i-- { // newest first; ties: larger id first
					if c.keep(msgs[i]) {
						want = append(want, msgs[i].id)
					}
				}
				slices.SortStableFunc(want, func(x, y string) int {
					tx, ty := at[x], at[y]
					if c := ty.Compare(tx); c != 0 {
						return c
					}
					return strings.Compare(y, x)
				})
				p := c.p
				p.State, p.Limit = fanout.StateDead, 3
				var got []string
				for pages := 0; ; pages++ {
					require.Less(t, pages, 20, c.name)
					ids, next := b.list(p)
					got = append(got, ids...)
					if next == "" {
						break
					}
					require.Len(t, ids, 3, c.name)
					p.Cursor = next
				}
				require.Equal(t, want, got, c.name)
			}
		}},

		{"FilteredPages", func(t *testing.T, b *bundle) {
			var want []string
			for i := range 12 {
				route := "odd"
				if i%2 == 0 {
					route = "even"
				}
				id := b.send(route, b.at(time.Duration(i)*time.Second), "a")
				if route == "even" {
					want = append(want, id)
				}
			}
			first, next := b.list(fanout.ListMessagesParams{Route: "even", Limit: 4})
			require.Len(t, first, 4)
			require.NotEmpty(t, next)
			rest, next := b.list(fanout.ListMessagesParams{Route: "even", Limit: 4, Cursor: next})
			require.Len(t, rest, 2)
			require.Empty(t, next)
			require.ElementsMatch(t, want, append(first, rest...))
		}},
	}
}

func deleteMessageTests() []test {
	return []test{
		{"Cascades", func(t *testing.T, b *bundle) {
			id := b.send("r", b.t0, "a", "b")
			keep := b.send("r", b.t0, "a")
			now := b.at(time.Minute)
			b.settle("a", now, map[string]outcome{id: {fanout.StateRetrying, now}, keep: {fanout.StateRetrying, now}})

			require.NoError(t, b.store.DeleteMessage(b.ctx, id))
			_, err := b.store.GetMessage(b.ctx, id)
			requireNotFound(t, err)
			ids, _ := b.list(fanout.ListMessagesParams{})
			require.Equal(t, []string{keep}, ids)
			require.Equal(t, []string{keep}, leasedIDs(b.lease("a", "w", b.at(time.Hour), 10)))
			require.Empty(t, b.lease("b", "w", b.at(time.Hour), 10))
			require.Len(t, b.get(keep).Attempts, 1)
		}},

		{"NotFound", func(t *testing.T, b *bundle) {
			requireNotFound(t, b.store.DeleteMessage(b.ctx, fanout.NewMessageID()))
		}},
	}
}
