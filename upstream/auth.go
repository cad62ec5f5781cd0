package upstream

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/fanouthq/fanout/config"
)

// Header names of Standard Webhooks signing (config.HMACAuth).
const (
	HeaderWebhookID        = "Webhook-Id"
	HeaderWebhookTimestamp = "Webhook-Timestamp"
	HeaderWebhookSignature = "Webhook-Signature"
)

// defaultAPIKeyHeader is the header of an api_key auth without one.
const defaultAPIKeyHeader = "X-Api-Key"

// errAuth marks failures to authenticate to a target before sending (a
// token endpoint that failed, a signing secret that is not base64).
var errAuth = errors.New("target auth")

// authRedact returns the header names whose values are redacted in the
// record of an attempt to t, beyond the ones always redacted: t's redact
// list, the headers configured on t (their values come from the config,
// often from ${ENV} secrets; configured when set, else every one of
// t.Headers) and the header of an api_key auth.
func authRedact(t *config.Target, configured []string) []string {
	apiKey := t.Auth != nil && t.Auth.APIKey != nil && t.Auth.APIKey.Header != ""
	if len(t.Headers) == 0 && !apiKey {
		return t.Redact
	}
	out := make([]string, 0, len(t.Redact)+len(t.Headers)+1)
	out = append(out, t.Redact...)
	if configured != nil {
		out = append(out, configured...)
	} else {
		for k := range t.Headers {
			out = append(out, k)
		}
	}
	if apiKey {
		out = append(out, t.Auth.APIKey.Header)
	}
	return out
}

// recordedURL is the URL of an attempt to t as recorded: the configured
// URL, without a password and without the query parameter of an api_key
// auth.
// An attempt sent to another server of the target than its URL (rebased)
// records the server's.
func recordedURL(t *config.Target, sent *url.URL, rebased bool) string {
	if t.URL != "" && !rebased && sent.User == nil && (t.Auth == nil || t.Auth.APIKey == nil || t.Auth.APIKey.Query == "") {
		return t.URL
	}
	u := *sent
	if t.Auth != nil && t.Auth.APIKey != nil && t.Auth.APIKey.Query != "" {
		if t.ParsedURL != nil {
			u.RawQuery = t.ParsedURL.RawQuery
		} else {
			q := u.Query()
			q.Del(t.Auth.APIKey.Query)
			u.RawQuery = q.Encode()
		}
	}
	return u.Redacted()
}

// applyAuth authenticates req to its target per t.Auth (docs/security.md): bearer,
// basic, api_key, oauth2_client_credentials (token cached, refreshed before
// expiry) or hmac (Standard Webhooks signature of id, timestamp and body).
// It runs after the configured headers, so auth wins over them.
func (c *Client) applyAuth(ctx context.Context, req *http.Request, r *Request) error {
	a := r.Target.Auth
	switch {
	case a == nil:
	case a.Bearer != "":
		req.Header.Set("Authorization", "Bearer "+a.Bearer)
	case a.Basic != nil:
		req.SetBasicAuth(a.Basic.Username, a.Basic.Password)
	case a.APIKey != nil && a.APIKey.Query != "":
		// The URL is the target's, shared: send a copy.
		u := *req.URL
		if u.RawQuery != "" {
			u.RawQuery += "&"
		}
		u.RawQuery += url.QueryEscape(a.APIKey.Query) + "=" + url.QueryEscape(a.APIKey.Value)
		req.URL = &u
	case a.APIKey != nil:
		h := a.APIKey.Header
		if h == "" {
			h = defaultAPIKeyHeader
		}
		req.Header.Set(h, a.APIKey.Value)
	case a.OAuth2ClientCredentials != nil:
		tok, err := c.oauthToken(a.OAuth2ClientCredentials).get(ctx)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	case a.HMAC != nil:
		id := r.MessageID
		ts := time.Now().Unix()
		// One signature per secret, space separated (Standard Webhooks):
		// a receiver rotating its secret accepts either.
		sigs := make([]string, 0, len(a.HMAC.StandardWebhooksSecret))
		for _, secret := range a.HMAC.StandardWebhooksSecret {
			key, err := c.hmacKey(secret)
			if err != nil {
				return err
			}
			sigs = append(sigs, SignStandardWebhook(key, id, ts, r.Body))
		}
		if len(sigs) == 0 {
			return fmt.Errorf("%w: %w: no hmac secret", errBuild, errAuth)
		}
		req.Header.Set(HeaderWebhookID, id)
		req.Header.Set(HeaderWebhookTimestamp, strconv.FormatInt(ts, 10))
		req.Header.Set(HeaderWebhookSignature, strings.Join(sigs, " "))
	}
	return nil
}

// SignStandardWebhook returns the webhook-signature value of the Standard
// Webhooks specification: "v1," and the base64 HMAC-SHA256, under key, of
// "id.timestamp.body".
func SignStandardWebhook(key []byte, id string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	var ts [20]byte
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write(strconv.AppendInt(ts[:0], timestamp, 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// hmacKey decodes a Standard Webhooks secret ("whsec_" and base64), once.
func (c *Client) hmacKey(secret string) ([]byte, error) {
	if k, ok := c.hmacKeys.Load(secret); ok {
		return k.([]byte), nil
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) == 0 {
		return nil, fmt.Errorf("%w: %w: the hmac secret is not base64 (whsec_…)", errBuild, errAuth)
	}
	c.hmacKeys.Store(secret, key)
	return key, nil
}

// oauthToken returns the token cache of one client-credentials config,
// found by its values: a config reload that keeps them keeps the token
// (and does not add a cache per reload).
func (c *Client) oauthToken(cc *config.OAuth2ClientCredentials) *tokenCache {
	key := oauthKey{cc.TokenURL, cc.ClientID, cc.ClientSecret, strings.Join(cc.Scopes, " ")}
	if v, ok := c.tokens.Load(key); ok {
		return v.(*tokenCache)
	}
	v, _ := c.tokens.LoadOrStore(key, &tokenCache{
		conf: &clientcredentials.Config{
			ClientID:     cc.ClientID,
			ClientSecret: cc.ClientSecret,
			TokenURL:     cc.TokenURL,
			Scopes:       slices.Clone(cc.Scopes),
			// AuthStyleAutoDetect: HTTP basic first, then form fields
			// if the endpoint refuses it; the style that worked is kept.
		},
		// Token requests go through the client's transport and are not
		// redirected, like the attempts they serve.
		hc: &http.Client{
			Transport:     c.transport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	})
	return v.(*tokenCache)
}

// oauthKey identifies a client-credentials config by its values.
type oauthKey struct{ tokenURL, clientID, secret, scopes string }

// tokenRefreshMargin is how long before its expiry a token is replaced.
const tokenRefreshMargin = 30 * time.Second

// tokenCache holds the current token of one client-credentials config.
// golang.org/x/oauth2/clientcredentials speaks the protocol (the request,
// the client authentication style, the error and expires_in fields); the
// cache is ours because oauth2.ReuseTokenSource can neither drop a token
// that a target refused (the one forced refresh on a 401) nor bound a
// fetch by the deadline of the attempt that needs it (a TokenSource keeps
// the context it was made with).
type tokenCache struct {
	conf *clientcredentials.Config
	hc   *http.Client

	mu  sync.RWMutex
	tok *oauth2.Token // nil: none yet, or refused by a target
}

// get returns a valid token, fetching one (once, for all waiting callers)
// when there is none or it expires within the refresh margin.
func (tc *tokenCache) get(ctx context.Context) (string, error) {
	tc.mu.RLock()
	tok := tc.tok
	tc.mu.RUnlock()
	if usable(tok) {
		return tok.AccessToken, nil
	}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if usable(tc.tok) { // another caller fetched it meanwhile
		return tc.tok.AccessToken, nil
	}
	tok, err := tc.conf.Token(context.WithValue(ctx, oauth2.HTTPClient, tc.hc))
	if err != nil {
		return "", tokenErr(ctx, err)
	}
	tc.tok = tok
	return tok.AccessToken, nil
}

// usable reports whether tok is there and does not expire within the
// refresh margin (a token without expires_in lasts until a 401).
func usable(tok *oauth2.Token) bool {
	return tok != nil && tok.AccessToken != "" &&
		(tok.Expiry.IsZero() || time.Now().Add(tokenRefreshMargin).Before(tok.Expiry))
}

// invalidate forgets tok if it is still the current token (a target
// answered 401 to it).
func (tc *tokenCache) invalidate(tok string) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.tok != nil && tc.tok.AccessToken == tok {
		tc.tok = nil
	}
}

// tokenErr words a failed token fetch: the endpoint's refusal with its
// status and OAuth error code, or why there was no answer.
func tokenErr(ctx context.Context, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		return fmt.Errorf("%w: %w", errAuth, &tokenError{status: re.Response.StatusCode, code: re.ErrorCode})
	}
	return fmt.Errorf("%w: oauth2 token: %w", errAuth, withContextErr(ctx, err))
}

// tokenError is a token endpoint's refusal.
type tokenError struct {
	status int
	code   string // the OAuth error code, if any
}

func (e *tokenError) Error() string {
	s := "the oauth2 token endpoint answered " + strconv.Itoa(e.status)
	if e.code != "" {
		s += " (" + e.code + ")"
	}
	return s
}
