package server

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/config"
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
	default:
		return nil, fmt.Errorf("store driver %q is not supported by this build", c.Driver)
	}
}
