package queue

import (
	"fmt"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/steps"
	"github.com/fanouthq/fanout/template"
	"github.com/fanouthq/fanout/upstream"
)

// The steps of async steps routes run here: the store holds one delivery
// per step, makes a step due once every step it runs after has succeeded,
// and leases it with their kept responses; the worker of the step's target
// renders the step's request with the config in force (as the gateway
// does for a sync steps route) and sends it like any delivery, with the
// same retries. The response of a step that succeeded goes back to the
// store with its completion.

// stepRoutes holds the compiled steps of cfg's async steps routes, by
// route name.
type stepRoutes map[string]*stepRoute

// stepRoute is one compiled async steps route.
type stepRoute struct {
	r     *steps.Route
	match config.Match
	// err is set instead of r when the route does not compile (a config
	// built in code: Parse validates them): its steps fail.
	err error
}

// compileSteps compiles the async steps routes of cfg.
func compileSteps(cfg *config.Config) stepRoutes {
	if cfg == nil {
		return nil
	}
	m := stepRoutes{}
	for _, rc := range cfg.Routes {
		if rc == nil || rc.Mode != config.ModeSteps || !rc.Async {
			continue
		}
		r, err := steps.Compile(cfg, rc)
		m[rc.Name] = &stepRoute{r: r, match: rc.Match, err: err}
	}
	return m
}

// render fills req, a delivery of step ld.Delivery.Step, with the step's
// request rendered from the stored message and the responses of the steps
// before it. The error says why the step cannot be sent: its route or step
// is not in the config in force, or a template failed.
func (m *stepRoutes) render(ld *fanout.LeasedDelivery, req *upstream.Request) error {
	msg, del := &ld.Message, &ld.Delivery
	var sr *stepRoute
	if m != nil {
		sr = (*m)[msg.Route]
	}
	if sr == nil {
		return fmt.Errorf("step %q: route %q is not an async steps route in the config in force; restore it, then replay the message", del.Step, msg.Route)
	}
	if sr.err != nil {
		return fmt.Errorf("step %q: %w", del.Step, sr.err)
	}
	i := sr.r.Index(del.Step)
	if i < 0 {
		return fmt.Errorf("step %q: route %q has no such step in the config in force; restore it, then replay the message", del.Step, msg.Route)
	}
	s := sr.r.Steps[i]
	if s.Target.Name != del.Target {
		return fmt.Errorf("step %q: its target is now %q, not %q as when the message was accepted; restore the target, then replay the message", del.Step, s.Target.Name, del.Target)
	}
	var data map[string]any
	if s.Templated() {
		before := make(map[string]any, len(s.Before))
		for _, j := range s.Before {
			name := sr.r.Steps[j].Name
			r, ok := ld.Steps[name]
			if !ok {
				continue // a template naming it reports the missing key
			}
			before[name] = template.ResponseValue(r.Status, r.Header, r.Body)
		}
		data = template.Data(requestValue(msg, sr.match), before)
	}
	call, err := s.Render(steps.Inbound{Method: msg.Method, Header: msg.Header, Body: msg.Body}, data)
	if err != nil {
		return fmt.Errorf("step %q: %w", del.Step, err)
	}
	req.Target, req.Header, req.Body, req.Configured = call.Target, call.Header, call.Body, call.Configured
	req.IdempotencyKey = msg.ID + "." + del.Step
	return nil
}

// nextTargets returns the targets of the steps that run right after step
// of route.
func (m *stepRoutes) nextTargets(route, step string) []string {
	if m == nil {
		return nil
	}
	sr := (*m)[route]
	if sr == nil || sr.r == nil {
		return nil
	}
	i := sr.r.Index(step)
	if i < 0 {
		return nil
	}
	var out []string
	for _, j := range sr.r.Steps[i].Next {
		out = append(out, sr.r.Steps[j].Target.Name)
	}
	return out
}

// mask returns what hides the secret values of ld's message (see
// steps.Mask): those of the responses kept for the steps before
// ld.Delivery.Step, and those of res, this step's response. It returns nil
// when the route has none.
func (m *stepRoutes) mask(ld *fanout.LeasedDelivery, res *upstream.Result) *steps.Mask {
	if m == nil {
		return nil
	}
	sr := (*m)[ld.Message.Route]
	if sr == nil || sr.r == nil || !sr.r.HasSecrets() {
		return nil
	}
	mask := &steps.Mask{}
	for name, r := range ld.Steps {
		if i := sr.r.Index(name); i >= 0 {
			sr.r.Steps[i].AddSecrets(mask, r.Header, r.Body)
		}
	}
	if i := sr.r.Index(ld.Delivery.Step); i >= 0 {
		sr.r.Steps[i].AddSecrets(mask, res.Header, res.Body)
	}
	return mask
}
