package gateway

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestRouter(t *testing.T) {
	t.Parallel()
	rr := newRouter()
	add := func(method, host, pattern, name string) {
		t.Helper()
		require.NoError(t, rr.add(method, host, pattern, &route{name: name}))
	}
	add("POST", "", "/", "root")
	add("POST", "", "/users/{id}", "user")
	add("GET", "", "/users/{id}", "user-get")
	add("POST", "", "/users/me", "me")
	add("POST", "", "/users/{id}/profile", "profile")
	add("POST", "", "/users/me/{rest...}", "me-rest")
	add("POST", "", "/files/{path...}", "files")
	add("POST", "example.com", "/users/{id}", "host-user")
	add("GET", "", "/head", "head-get")
	add("HEAD", "", "/head", "head")

	for _, tc := range []struct {
		method, host, path, want string
		pathFound                bool
	}{
		{"POST", "", "/", "root", true},
		{"POST", "", "/users/42", "user", true},
		{"GET", "", "/users/42", "user-get", true},
		{"POST", "", "/users/me", "me", true},
		{"POST", "", "/users/me/profile", "me-rest", true},
		{"POST", "", "/users/7/profile", "profile", true},
		{"POST", "", "/files/", "files", true},
		{"POST", "", "/files/a/b", "files", true},
		{"POST", "EXAMPLE.com:443", "/users/42", "host-user", true},
		{"POST", "other.com", "/users/42", "user", true},
		{"POST", "", "/users/", "", false},
		{"POST", "", "/users", "", false},
		{"POST", "", "/files", "", false},
		{"POST", "", "/nope", "", false},
		{"POST", "", "", "", false},
		{"DELETE", "", "/users/42", "", true},
		{"GET", "", "/users/me", "user-get", true},
		{"HEAD", "", "/users/42", "user-get", true},
		{"HEAD", "", "/files/a", "", true},
		{"HEAD", "", "/head", "head", true},
	} {
		rt, found := rr.lookup(tc.method, tc.host, tc.path)
		name := ""
		if rt != nil {
			name = rt.name
		}
		require.Equal(t, tc.want, name, "%s %s %s", tc.method, tc.host, tc.path)
		require.Equal(t, tc.pathFound, found, "%s %s %s", tc.method, tc.host, tc.path)
	}
	require.Equal(t, []string{"GET", "HEAD", "POST"}, rr.allowed("", "/users/42"))
	require.Equal(t, []string{"GET", "HEAD"}, rr.allowed("", "/head"))
	require.Equal(t, []string{"POST"}, rr.allowed("", "/files/a"))
	require.Error(t, rr.add("POST", "", "/users/{other}", &route{name: "dup"}), "same shape as /users/{id}")
	require.NoError(t, rr.add("PUT", "", "/users/{other}", &route{name: "put"}))
	require.Error(t, rr.add("POST", "", "users", &route{}))
	require.Error(t, rr.add("POST", "", "/a/{}", &route{}))
	require.Error(t, rr.add("POST", "", "/a/{x", &route{}))
}

func TestHostname(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"example.com":      "example.com",
		"Example.COM:8080": "example.com",
		"[::1]:80":         "::1",
		"[::1]":            "::1",
		"127.0.0.1:1":      "127.0.0.1",
		"":                 "",
	} {
		require.Equal(t, want, hostname(in), in)
	}
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	inputs := []string{
		"", "plain", `quote " backslash \ slash /`, "ctrl \x00\x01\x1f\t\n\r",
		"utf8 é 日本 🎉", "bad \xff\xfe utf8", "sep \u2028 \u2029", "<html>&</html>",
		strings.Repeat("x", 1000),
	}
	for _, s := range inputs {
		got := appendString(nil, s)
		var back string
		require.NoError(t, json.Unmarshal(got, &back), "%q → %s", s, got)
		// Each invalid byte becomes U+FFFD, as with encoding/json.
		want := strings.NewReplacer("\xff", "\uFFFD", "\xfe", "\uFFFD").Replace(s)
		require.Equal(t, want, back)
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add("hello \"\\\x00 \u2028 \xff")
	f.Fuzz(func(t *testing.T, s string) {
		got := appendString(nil, s)
		require.True(t, json.Valid(got), "%q → %s", s, got)
		if utf8.ValidString(s) {
			var back string
			require.NoError(t, json.Unmarshal(got, &back))
			require.Equal(t, s, back)
		}
	})
}

func TestIsJSONType(t *testing.T) {
	t.Parallel()
	for ct, want := range map[string]bool{
		"application/json":                true,
		"Application/JSON; charset=utf-8": true,
		"application/problem+json":        true,
		" application/json ":              true,
		"text/json+":                      false,
		"text/plain":                      false,
		"":                                false,
		"+json":                           false,
		"application/jsonp":               false,
	} {
		require.Equal(t, want, isJSONType(ct), ct)
	}
}

func BenchmarkRouter(b *testing.B) {
	rr := newRouter()
	for i, p := range []string{"/send-info", "/users/{id}/profile", "/orders", "/files/{path...}", "/a/b/c/d", "/users/me/profile"} {
		if err := rr.add("POST", "", p, &route{name: p}); err != nil {
			b.Fatal(i, err)
		}
	}
	paths := []string{"/users/42/profile", "/send-info", "/files/x/y/z", "/nope"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		rr.lookup("POST", "api.example.com:8080", paths[i%len(paths)])
	}
}
