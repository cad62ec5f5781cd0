package upstream

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

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
func recordedURL(t *config.Target, sent *url.URL) string {
	if t.URL != "" && sent.User == nil && (t.Auth == nil || t.Auth.APIKey == nil || t.Auth.APIKey.Query == "") {
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

// applyAuth authenticates req to its target per t.Auth (SPEC §10): bearer,
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
		tok, err := c.oauthToken(a.OAuth2ClientCredentials).get(ctx, c)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	case a.HMAC != nil:
		key, err := c.hmacKey(a.HMAC.StandardWebhooksSecret)
		if err != nil {
			return err
		}
		id := r.MessageID
		ts := time.Now().Unix()
		req.Header.Set(HeaderWebhookID, id)
		req.Header.Set(HeaderWebhookTimestamp, strconv.FormatInt(ts, 10))
		req.Header.Set(HeaderWebhookSignature, SignStandardWebhook(key, id, ts, r.Body))
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
	cp := *cc
	cp.Scopes = append([]string(nil), cc.Scopes...)
	v, _ := c.tokens.LoadOrStore(key, &tokenCache{cfg: &cp})
	return v.(*tokenCache)
}

// oauthKey identifies a client-credentials config by its values.
type oauthKey struct{ tokenURL, clientID, secret, scopes string }

// Client authentication styles at a token endpoint (RFC 6749 §2.3.1).
const (
	styleUnknown = iota
	styleHeader  // HTTP basic
	styleParams  // client_id and client_secret in the form
)

// tokenRefreshMargin is how long before its expiry a token is replaced.
const tokenRefreshMargin = 30 * time.Second

// tokenCache holds the current token of one client-credentials config.
type tokenCache struct {
	cfg *config.OAuth2ClientCredentials

	mu     sync.RWMutex
	token  string
	expiry time.Time // zero: until a 401 says otherwise
	style  int
}

// get returns a valid token, fetching one (once, for all waiting callers)
// when there is none or it expires within the refresh margin.
func (tc *tokenCache) get(ctx context.Context, c *Client) (string, error) {
	tc.mu.RLock()
	tok, fresh := tc.token, tc.validLocked()
	tc.mu.RUnlock()
	if fresh {
		return tok, nil
	}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.validLocked() { // another caller fetched it meanwhile
		return tc.token, nil
	}
	return tc.fetchLocked(ctx, c)
}

func (tc *tokenCache) validLocked() bool {
	return tc.token != "" && (tc.expiry.IsZero() || time.Now().Add(tokenRefreshMargin).Before(tc.expiry))
}

// invalidate forgets tok if it is still the current token (a target
// answered 401 to it).
func (tc *tokenCache) invalidate(tok string) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.token == tok {
		tc.token, tc.expiry = "", time.Time{}
	}
}

func (tc *tokenCache) fetchLocked(ctx context.Context, c *Client) (string, error) {
	styles := []int{tc.style}
	if tc.style == styleUnknown {
		styles = []int{styleHeader, styleParams}
	}
	var err error
	for _, style := range styles {
		var tok string
		var expiresIn time.Duration
		tok, expiresIn, err = tc.request(ctx, c, style)
		if err == nil {
			tc.token, tc.style = tok, style
			tc.expiry = time.Time{}
			if expiresIn > 0 {
				tc.expiry = time.Now().Add(expiresIn)
			}
			return tok, nil
		}
		var te *tokenError
		if !errors.As(err, &te) || (te.status != http.StatusBadRequest && te.status != http.StatusUnauthorized) {
			break // only a refused client authentication is worth the other style
		}
	}
	return "", err
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

// request asks the token endpoint for a token with the given client
// authentication style.
func (tc *tokenCache) request(ctx context.Context, c *Client, style int) (string, time.Duration, error) {
	cc := tc.cfg
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(cc.Scopes) > 0 {
		form.Set("scope", strings.Join(cc.Scopes, " "))
	}
	if style == styleParams {
		form.Set("client_id", cc.ClientID)
		form.Set("client_secret", cc.ClientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cc.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, fmt.Errorf("%w: %w: token_url: %w", errBuild, errAuth, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if style == styleHeader {
		req.SetBasicAuth(url.QueryEscape(cc.ClientID), url.QueryEscape(cc.ClientSecret))
	}
	resp, err := c.transport.RoundTrip(req)
	if err != nil {
		return "", 0, fmt.Errorf("%w: oauth2 token: %w", errAuth, withContextErr(ctx, err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", 0, fmt.Errorf("%w: oauth2 token: %w", errAuth, withContextErr(ctx, err))
	}
	var tr struct {
		AccessToken string          `json:"access_token"`
		ExpiresIn   json.RawMessage `json:"expires_in"`
		Error       string          `json:"error"`
	}
	_ = json.Unmarshal(body, &tr)
	if !IsSuccess(resp.StatusCode) {
		return "", 0, fmt.Errorf("%w: %w", errAuth, &tokenError{status: resp.StatusCode, code: tr.Error})
	}
	if tr.AccessToken == "" {
		return "", 0, fmt.Errorf("%w: the oauth2 token endpoint answered no access_token", errAuth)
	}
	// expires_in is a number, but some servers send it as a string.
	secs, _ := strconv.ParseInt(strings.Trim(string(tr.ExpiresIn), `"`), 10, 64)
	return tr.AccessToken, time.Duration(secs) * time.Second, nil
}
