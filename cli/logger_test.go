package cli

import (
	"bytes"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLoggerWritesDurationsAsTheConfigDoes(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"json", "text"} {
		var buf bytes.Buffer
		logger, err := newLogger(&buf, "info", format)
		require.NoError(t, err)
		logger.Info("shutting down", slog.Duration("timeout", 30*time.Second),
			slog.Group("retry", slog.Duration("max", 10*time.Minute), slog.Duration("max_age", 7*24*time.Hour)),
			slog.Duration("dedup_window", 24*time.Hour), slog.Duration("took", 1500*time.Millisecond))
		out := buf.String()
		if format == "json" {
			require.Contains(t, out, `"timeout":"30s"`)
			require.Contains(t, out, `"retry":{"max":"10m","max_age":"7d"}`)
			require.Contains(t, out, `"dedup_window":"24h"`)
			require.Contains(t, out, `"took":"1.5s"`)
		} else {
			require.Contains(t, out, `timeout=30s retry.max=10m retry.max_age=7d dedup_window=24h took=1.5s`)
		}
	}
}
