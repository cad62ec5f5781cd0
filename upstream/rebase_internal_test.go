package upstream

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRebaseSendsToTheServer(t *testing.T) {
	t.Parallel()
	parse := func(s string) *url.URL {
		u, err := url.Parse(s)
		require.NoError(t, err)
		return u
	}
	base := parse("http://a.test/v1")
	for _, tc := range []struct{ u, server, want string }{
		{"http://a.test/v1", "http://b.test:81/v1", "http://b.test:81/v1"},
		{"http://a.test/v1/users/7?x=1", "http://b.test/v1", "http://b.test/v1/users/7?x=1"},
		{"http://a.test/v1/users/7", "https://u:p@c.test/api/", "https://u:p@c.test/api/users/7"},
		{"http://a.test/v1/users", "http://c.test/v2", "http://c.test/v2/users"},
	} {
		u := parse(tc.u)
		if tc.u == base.String() {
			u = base
		}
		require.Equal(t, tc.want, rebase(u, base, parse(tc.server)).String(), tc.u)
	}
	same := parse("http://a.test/v1/x")
	require.Same(t, same, rebase(same, base, base), "the configured server: unchanged")
	require.Same(t, same, rebase(same, nil, nil), "no server: unchanged")
}
