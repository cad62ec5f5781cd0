package fanout_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
)

func TestSettleSteps(t *testing.T) {
	t.Parallel()
	// a → b, a → c, (b, c) → d
	dag := func(a, b, c, d fanout.DeliveryState) []fanout.StepNode {
		return []fanout.StepNode{
			{ID: 1, Step: "a", State: a},
			{ID: 2, Step: "b", After: []string{"a"}, State: b},
			{ID: 3, Step: "c", After: []string{"a"}, State: c},
			{ID: 4, Step: "d", After: []string{"b", "c"}, State: d},
		}
	}
	const (
		blocked   = fanout.StateBlocked
		pending   = fanout.StatePending
		retrying  = fanout.StateRetrying
		succeeded = fanout.StateSucceeded
		dead      = fanout.StateDead
		skipped   = fanout.StateSkipped
		leased    = fanout.StateDelivering
	)
	for name, tc := range map[string]struct {
		nodes []fanout.StepNode
		want  []fanout.StepChange
	}{
		"nothing to do":         {dag(pending, blocked, blocked, blocked), nil},
		"first succeeded":       {dag(succeeded, blocked, blocked, blocked), []fanout.StepChange{{ID: 2, State: pending}, {ID: 3, State: pending}}},
		"join waits for both":   {dag(succeeded, succeeded, retrying, blocked), nil},
		"join done":             {dag(succeeded, succeeded, succeeded, blocked), []fanout.StepChange{{ID: 4, State: pending}}},
		"dead skips transitive": {dag(dead, blocked, blocked, blocked), []fanout.StepChange{{ID: 2, State: skipped, Cause: "a"}, {ID: 3, State: skipped, Cause: "a"}, {ID: 4, State: skipped, Cause: "b"}}},
		"one branch dead":       {dag(succeeded, dead, leased, blocked), []fanout.StepChange{{ID: 4, State: skipped, Cause: "b"}}},
		"replayed first":        {dag(pending, skipped, skipped, skipped), []fanout.StepChange{{ID: 2, State: blocked}, {ID: 3, State: blocked}, {ID: 4, State: blocked}}},
		"replayed all":          {dag(pending, pending, pending, pending), []fanout.StepChange{{ID: 2, State: blocked}, {ID: 3, State: blocked}, {ID: 4, State: blocked}}},
		"leased left alone":     {dag(pending, leased, blocked, blocked), nil},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := fanout.SettleSteps(tc.nodes)
			if len(tc.want) == 0 {
				require.Empty(t, got)
				return
			}
			require.ElementsMatch(t, tc.want, got)
		})
	}
}
