package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/gateway"
)

// A route in mode all sends each request to every target and answers with
// the envelope of their results.
func Example() {
	crm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"id":7}`)
	}))
	defer crm.Close()
	analytics := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	}))
	defer analytics.Close()

	target := func(name, raw string) *config.Target {
		u, _ := url.Parse(raw)
		return &config.Target{Name: name, URL: raw, ParsedURL: u}
	}
	cfg := &config.Config{
		Targets: map[string]*config.Target{
			"crm":       target("crm", crm.URL+"/contacts"),
			"analytics": target("analytics", analytics.URL+"/events"),
		},
		Routes: []*config.Route{{
			Name:    "profile",
			Match:   config.Match{Method: http.MethodPost, Path: "/users/{id}/profile"},
			Mode:    config.ModeAll,
			Targets: []config.RouteTarget{{Name: "crm"}, {Name: "analytics"}},
		}},
	}
	gw, err := gateway.New(cfg, gateway.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = gw.Close(context.Background()) }()

	w := httptest.NewRecorder()
	gw.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/users/42/profile", strings.NewReader(`{"name":"ada"}`)))

	var env struct {
		Mode    string
		Results map[string]struct {
			OK     bool
			Status int
			Body   json.RawMessage
		}
	}
	_ = json.Unmarshal(w.Body.Bytes(), &env)
	fmt.Println(w.Code, env.Mode)
	fmt.Println("crm:", env.Results["crm"].OK, env.Results["crm"].Status, string(env.Results["crm"].Body))
	fmt.Println("analytics:", env.Results["analytics"].OK, env.Results["analytics"].Status)
	// Output:
	// 200 all
	// crm: true 201 {"id":7}
	// analytics: true 202
}
