package config

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func TestParseDuration(t *testing.T) {
	t.Parallel()

	const day = 24 * time.Hour
	for in, want := range map[string]time.Duration{
		"250ms":    250 * time.Millisecond,
		"5s":       5 * time.Second,
		"1h30m":    90 * time.Minute,
		"10m":      10 * time.Minute,
		"7d":       7 * day,
		"1d12h":    36 * time.Hour,
		"1.5d":     36 * time.Hour,
		"2d30m10s": 2*day + 30*time.Minute + 10*time.Second,
		"0":        0,
		"0s":       0,
		"0d":       0,
		"+5s":      5 * time.Second,
		" 5s ":     5 * time.Second,
		"1.5h":     90 * time.Minute,
		"100us":    100 * time.Microsecond,
		"100µs":    100 * time.Microsecond,
		"10ns":     10,
	} {
		got, err := ParseDuration(in)
		require.NoError(t, err, in)
		require.Equal(t, Duration(want), got, in)
	}

	for in, msg := range map[string]string{
		"":             `invalid duration "": empty; use a number and a unit: 250ms, 5s, 10m, 1h30m, 7d`,
		"5":            `invalid duration "5": missing unit; use a number and a unit: 250ms, 5s, 10m, 1h30m, 7d`,
		"-1s":          `invalid duration "-1s": must not be negative`,
		"-1d":          `invalid duration "-1d": must not be negative`,
		"7x":           `invalid duration "7x": use a number and a unit: 250ms, 5s, 10m, 1h30m, 7d`,
		"d":            `invalid duration "d": use a number and a unit: 250ms, 5s, 10m, 1h30m, 7d`,
		"1d-5h":        `invalid duration "1d-5h": use a number and a unit: 250ms, 5s, 10m, 1h30m, 7d`,
		"1e3d":         `invalid duration "1e3d": use a number and a unit: 250ms, 5s, 10m, 1h30m, 7d`,
		"9999999d":     `invalid duration "9999999d": too large`,
		"106751d24h":   `invalid duration "106751d24h": too large`,
		"3000000h":     `invalid duration "3000000h": use a number and a unit: 250ms, 5s, 10m, 1h30m, 7d`,
		"five seconds": `invalid duration "five seconds": use a number and a unit: 250ms, 5s, 10m, 1h30m, 7d`,
	} {
		_, err := ParseDuration(in)
		require.EqualError(t, err, msg, in)
		require.ErrorIs(t, err, ErrInvalidDuration)
	}
}

func TestDurationString(t *testing.T) {
	t.Parallel()

	for d, want := range map[time.Duration]string{
		0:                        "0s",
		250 * time.Millisecond:   "250ms",
		5 * time.Second:          "5s",
		10 * time.Minute:         "10m",
		90 * time.Minute:         "1h30m",
		2 * time.Hour:            "2h",
		90 * time.Second:         "1m30s",
		36 * time.Hour:           "36h",
		7 * 24 * time.Hour:       "7d",
		time.Hour + time.Second:  "1h0m1s",
		1500 * time.Millisecond:  "1.5s",
		-5 * time.Second:         "-5s",
		24*time.Hour + time.Hour: "25h",
		24 * time.Hour:           "24h",
		48 * time.Hour:           "2d",
	} {
		require.Equal(t, want, Duration(d).String())
		if d >= 0 {
			back, err := ParseDuration(want)
			require.NoError(t, err)
			require.Equal(t, Duration(d), back)
		}
	}
}

func TestParseSize(t *testing.T) {
	t.Parallel()

	for in, want := range map[string]int64{
		"0":      0,
		"1024":   1024,
		"+1024":  1024,
		"100B":   100,
		"512KiB": 512 << 10,
		"1MiB":   1 << 20,
		"2GiB":   2 << 30,
		"1TiB":   1 << 40,
		"1KB":    1000,
		"1MB":    1_000_000,
		"1GB":    1_000_000_000,
		"1TB":    1_000_000_000_000,
		"1.5MiB": 3 << 19,
		"1 MiB":  1 << 20,
		"1mib":   1 << 20,
		"10kb":   10_000,
		"2.5":    2,
	} {
		got, err := ParseSize(in)
		require.NoError(t, err, in)
		require.Equal(t, Size(want), got, in)
	}

	for in, msg := range map[string]string{
		"":                     `invalid size "": use bytes or a number and a unit: 1024, 512KiB, 1MiB, 10MB`,
		"-1":                   `invalid size "-1": must not be negative`,
		"-1MiB":                `invalid size "-1MiB": must not be negative`,
		"1XB":                  `invalid size "1XB": use bytes or a number and a unit: 1024, 512KiB, 1MiB, 10MB`,
		"MiB":                  `invalid size "MiB": use bytes or a number and a unit: 1024, 512KiB, 1MiB, 10MB`,
		"1M":                   `invalid size "1M": use bytes or a number and a unit: 1024, 512KiB, 1MiB, 10MB`,
		"1e6":                  `invalid size "1e6": use bytes or a number and a unit: 1024, 512KiB, 1MiB, 10MB`,
		"0x10":                 `invalid size "0x10": use bytes or a number and a unit: 1024, 512KiB, 1MiB, 10MB`,
		"9999999999TiB":        `invalid size "9999999999TiB": too large`,
		"1e400":                `invalid size "1e400": use bytes or a number and a unit: 1024, 512KiB, 1MiB, 10MB`,
		"99999999999999999999": `invalid size "99999999999999999999": too large`,
	} {
		_, err := ParseSize(in)
		require.EqualError(t, err, msg, in)
		require.ErrorIs(t, err, ErrInvalidSize)
	}
}

func TestSizeString(t *testing.T) {
	t.Parallel()

	for s, want := range map[Size]string{
		0:        "0",
		1000:     "1000",
		1 << 10:  "1KiB",
		64 << 10: "64KiB",
		1 << 20:  "1MiB",
		3 << 19:  "1536KiB",
		2 << 30:  "2GiB",
		5 << 40:  "5TiB",
	} {
		require.Equal(t, want, s.String())
		back, err := ParseSize(want)
		require.NoError(t, err)
		require.Equal(t, s, back)
	}
}

func TestUnitsText(t *testing.T) {
	t.Parallel()

	// JSON (the admin API) shows durations and sizes as config text.
	in := struct {
		D Duration
		S Size
	}{Duration(90 * time.Second), 1 << 20}
	b, err := json.Marshal(in)
	require.NoError(t, err)
	require.JSONEq(t, `{"D":"1m30s","S":"1MiB"}`, string(b))

	var out struct {
		D Duration
		S Size
	}
	require.NoError(t, json.Unmarshal(b, &out))
	require.Equal(t, in, out)
	require.ErrorIs(t, json.Unmarshal([]byte(`{"D":"soon"}`), &out), ErrInvalidDuration)
	require.ErrorIs(t, json.Unmarshal([]byte(`{"S":"big"}`), &out), ErrInvalidSize)
}

func TestUnmarshalYAMLDirectly(t *testing.T) {
	t.Parallel()

	// The config types also decode with plain yaml.v3 (no positions, no
	// ${ENV}), for code that embeds them.
	var v struct {
		Timeout Duration      `yaml:"timeout"`
		Max     Size          `yaml:"max"`
		Targets []RouteTarget `yaml:"targets"`
	}
	require.NoError(t, yaml.Unmarshal([]byte("timeout: 1d2h\nmax: 2MiB\ntargets: [a, {name: b, optional: true}]\n"), &v))
	require.Equal(t, Duration(26*time.Hour), v.Timeout)
	require.Equal(t, Size(2<<20), v.Max)
	require.Equal(t, []RouteTarget{{Name: "a"}, {Name: "b", Optional: true}}, v.Targets)

	require.ErrorIs(t, yaml.Unmarshal([]byte("timeout: soon\n"), &v), ErrInvalidDuration)
	require.ErrorIs(t, yaml.Unmarshal([]byte("timeout: [1s]\n"), &v), ErrInvalidDuration)
	require.ErrorIs(t, yaml.Unmarshal([]byte("max: lots\n"), &v), ErrInvalidSize)
	require.ErrorIs(t, yaml.Unmarshal([]byte("max: {a: 1}\n"), &v), ErrInvalidSize)
	require.ErrorContains(t, yaml.Unmarshal([]byte("targets: [[a]]\n"), &v), "must be a target name or a mapping")
	require.ErrorContains(t, yaml.Unmarshal([]byte("targets: [{name: [x]}]\n"), &v), "route target:")
}
