package admin_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/admin"
	"github.com/fanouthq/fanout/apierror"
	"github.com/fanouthq/fanout/sqlite"
)

// The CLI's view of the admin API: list a route's recent messages, replay
// one delivery, and read an error's code.
func ExampleClient() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "fanout-example")
	if err != nil {
		panic(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "fanout.db"), sqlite.Options{})
	if err != nil {
		panic(err)
	}
	defer func() { _ = store.Close() }()
	if err := store.Migrate(ctx); err != nil {
		panic(err)
	}
	accepted, err := store.Accept(ctx, []fanout.AcceptParams{{
		Message: fanout.Message{
			ID: fanout.NewMessageID(), Route: "signup", Method: "POST", Path: "/send-info",
			Body: []byte(`{"email":"a@example.com"}`), ReceivedAt: time.Now(),
		},
		Targets: []string{"crm", "analytics"},
	}})
	if err != nil {
		panic(err)
	}
	id := accepted[0].MessageID

	// In production: the admin listener of "fanout serve".
	srv := httptest.NewServer(admin.New(admin.Options{
		Store:  store,
		Token:  "s3cret",
		Logger: slog.New(slog.DiscardHandler),
	}))
	defer srv.Close()
	client := admin.NewClient(srv.URL, "s3cret", srv.Client())

	page, err := client.ListMessages(ctx, admin.ListParams{Route: "signup", Since: "1h"})
	if err != nil {
		panic(err)
	}
	for _, m := range page.Messages {
		var targets []string
		for _, d := range m.Deliveries {
			targets = append(targets, d.Target+"="+d.State)
		}
		slices.Sort(targets)
		fmt.Println(m.Route, m.Method, m.Path, strings.Join(targets, " "))
	}

	n, err := client.ReplayMessage(ctx, id, "crm")
	if err != nil {
		panic(err)
	}
	fmt.Println("replayed:", n)

	_, err = client.GetMessage(ctx, "msg_unknown")
	var apiErr *apierror.Error
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.Status, apiErr.Code)
	}
	// Output:
	// signup POST /send-info analytics=pending crm=pending
	// replayed: 1
	// 404 message_not_found
}
