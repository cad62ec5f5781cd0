package server

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/postgres"
	"github.com/fanouthq/fanout/sqlite"
)

// OpenStore opens the store the config names. It does not migrate.
func OpenStore(ctx context.Context, c config.Store, logger *slog.Logger) (fanout.Store, error) {
	switch c.Driver {
	case "", "sqlite":
		st, err := sqlite.Open(ctx, c.DSN, sqlite.Options{Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("open sqlite store %q: %w", c.DSN, err)
		}
		return st, nil
	case "postgres":
		st, err := postgres.Open(ctx, c.DSN, postgres.Options{Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("open postgres store: %w", err)
		}
		return st, nil
	default:
		return nil, fmt.Errorf("store driver %q is not supported", c.Driver)
	}
}

// listener is a store that can tell this process about work committed by
// others (PostgreSQL's LISTEN/NOTIFY). Listen calls fn with a target name
// until ctx ends.
type listener interface {
	Listen(ctx context.Context, fn func(target string)) error
}

// pinger is a store that can tell whether it answers: the /readyz probe.
type pinger interface {
	Ping(ctx context.Context) error
}
