package sqlite_test

import (
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
)

// TestAcceptDeliveriesPerMessage accepts batches larger than one statement
// in which the messages share their targets, and batches in which they do
// not, and checks that every message got exactly one pending delivery per
// distinct target, in the order given.
func TestAcceptDeliveriesPerMessage(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := open(t, filepath.Join(t.TempDir(), "fanout.db"))
	require.NoError(t, s.Migrate(ctx))

	targetSets := map[string][][]string{
		"same":  {{"a", "b"}},
		"mixed": {{"a", "b"}, {"b"}, {"a", "a", "c"}, {}, {"c", "b", "a"}},
	}
	for name, sets := range targetSets {
		t.Run(name, func(t *testing.T) {
			var params []fanout.AcceptParams
			for i := range 150 {
				params = append(params, fanout.AcceptParams{
					Message: fanout.Message{
						ID: fanout.NewMessageID(), Route: "r-" + name, Method: http.MethodPost, Path: "/in",
						Body: []byte("{}"), ReceivedAt: time.Now(),
					},
					Targets: sets[i%len(sets)],
				})
			}
			res, err := s.Accept(ctx, params)
			require.NoError(t, err)
			require.Len(t, res, len(params))
			for i, p := range params {
				d, err := s.GetMessage(ctx, res[i].MessageID)
				require.NoError(t, err)
				var want, got []string
				seen := map[string]bool{}
				for _, tg := range p.Targets {
					if !seen[tg] {
						seen[tg] = true
						want = append(want, tg)
					}
				}
				for _, del := range d.Deliveries {
					require.Equal(t, p.Message.ID, del.MessageID)
					require.Equal(t, fanout.StatePending, del.State)
					got = append(got, del.Target)
				}
				require.Equal(t, want, got, "message %d", i)
			}
		})
	}
}
