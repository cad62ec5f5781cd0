package fanout

import (
	"fmt"
	"slices"
)

// CheckSteps validates the steps of one message: none, or steps without
// Targets, each with a name and a target, unique names, After naming only
// other steps of the list. Stores call it before storing anything.
func (p *AcceptParams) CheckSteps() error {
	steps := p.Steps
	if len(steps) == 0 {
		return nil
	}
	if len(p.Targets) > 0 {
		return fmt.Errorf("targets and steps are exclusive")
	}
	names := make(map[string]bool, len(steps))
	for _, st := range steps {
		if st.Name == "" || names[st.Name] || st.Target == "" {
			return fmt.Errorf("step %q: a step needs a unique name and a target", st.Name)
		}
		names[st.Name] = true
	}
	for _, st := range steps {
		for _, a := range st.After {
			if !names[a] || a == st.Name {
				return fmt.Errorf("step %q: after %q: not another step of the message", st.Name, a)
			}
		}
	}
	return nil
}

// StepNode is one step delivery of a message, as SettleSteps sees it.
type StepNode struct {
	ID    int64
	Step  string
	After []string
	State DeliveryState
}

// StepChange is a state a step delivery must move to. Cause names the
// failed step that a skipped step depends on.
type StepChange struct {
	ID    int64
	State DeliveryState
	Cause string
}

// SettleSteps returns the changes that bring the step deliveries of one
// message in line with the steps they run after, so that both stores
// apply the same rules:
//   - a step with a dead or skipped step before it is skipped;
//   - otherwise a blocked or skipped step whose every earlier step
//     succeeded is pending;
//   - otherwise a blocked, skipped, pending or retrying step whose earlier
//     steps have not all succeeded is blocked (after a replay).
//
// Steps being delivered, succeeded or dead are left as they are. The rules
// are applied until nothing changes, so a skip reaches every step after.
func SettleSteps(nodes []StepNode) []StepChange {
	state := make(map[string]DeliveryState, len(nodes))
	for _, n := range nodes {
		state[n.Step] = n.State
	}
	var changes []StepChange
	cur := slices.Clone(nodes)
	for changed := true; changed; {
		changed = false
		for i := range cur {
			n := &cur[i]
			if len(n.After) == 0 {
				continue
			}
			switch n.State {
			case StateBlocked, StateSkipped, StatePending, StateRetrying:
			default:
				continue
			}
			want, cause := StatePending, ""
			done := true
			for _, a := range n.After {
				switch state[a] {
				case StateSucceeded:
				case StateDead, StateSkipped:
					if cause == "" {
						cause = a
					}
				default:
					done = false
				}
			}
			switch {
			case cause != "":
				want = StateSkipped
			case !done:
				want = StateBlocked
			case n.State == StatePending || n.State == StateRetrying:
				continue
			}
			if want == n.State {
				continue
			}
			n.State, state[n.Step], changed = want, want, true
			changes = slices.DeleteFunc(changes, func(c StepChange) bool { return c.ID == n.ID })
			changes = append(changes, StepChange{ID: n.ID, State: want, Cause: cause})
		}
	}
	return changes
}
