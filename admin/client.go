package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/fanouthq/fanout/apierror"
)

// maxErrorBody bounds how much of an error answer the client reads.
const maxErrorBody = 64 << 10

// Client talks to a running Fanout's admin API; the fanout CLI uses it.
// Errors the server answers with are *apierror.Error values (find them
// with errors.As) carrying the HTTP status, code and message.
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// NewClient returns a client of the admin API at baseURL (such as
// "http://127.0.0.1:9090") that sends token as a bearer token. A nil hc
// means http.DefaultClient; deadlines come from the contexts passed to
// the methods.
func NewClient(baseURL, token string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), token: token, hc: hc}
}

// Routes returns the configured routes.
func (c *Client) Routes(ctx context.Context) ([]Route, error) {
	var out RoutesResponse
	if err := c.do(ctx, http.MethodGet, "/v1/routes", nil, nil, &out); err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	return out.Routes, nil
}

// Targets returns the configured targets, header values redacted.
func (c *Client) Targets(ctx context.Context) ([]Target, error) {
	var out TargetsResponse
	if err := c.do(ctx, http.MethodGet, "/v1/targets", nil, nil, &out); err != nil {
		return nil, fmt.Errorf("list targets: %w", err)
	}
	return out.Targets, nil
}

// ListMessages returns one page of messages; pass NextCursor back in
// p.Cursor for the next one.
func (c *Client) ListMessages(ctx context.Context, p ListParams) (ListResponse, error) {
	q := url.Values{}
	for k, v := range map[string]string{
		"route": p.Route, "target": p.Target, "tenant": p.Tenant, "state": p.State,
		"since": p.Since, "until": p.Until, "cursor": p.Cursor,
	} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if p.Limit != 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	var out ListResponse
	if err := c.do(ctx, http.MethodGet, "/v1/messages", q, nil, &out); err != nil {
		return ListResponse{}, fmt.Errorf("list messages: %w", err)
	}
	return out, nil
}

// GetMessage returns one message with its headers, body, deliveries and
// attempts.
func (c *Client) GetMessage(ctx context.Context, id string) (MessageDetail, error) {
	var out MessageDetail
	if err := c.do(ctx, http.MethodGet, "/v1/messages/"+url.PathEscape(id), nil, nil, &out); err != nil {
		return MessageDetail{}, fmt.Errorf("get message %s: %w", id, err)
	}
	return out, nil
}

// ReplayMessage makes the message's deliveries (only the one to target
// when target is not empty) due again, and returns how many.
func (c *Client) ReplayMessage(ctx context.Context, id, target string) (int, error) {
	var q url.Values
	if target != "" {
		q = url.Values{"target": {target}}
	}
	var out ReplayResponse
	if err := c.do(ctx, http.MethodPost, "/v1/messages/"+url.PathEscape(id)+"/replay", q, nil, &out); err != nil {
		return 0, fmt.Errorf("replay message %s: %w", id, err)
	}
	return out.Replayed, nil
}

// ReplayDeliveries replays the deliveries f selects (dead ones unless
// f.State says otherwise) and returns how many.
func (c *Client) ReplayDeliveries(ctx context.Context, f ReplayFilter) (int, error) {
	var out ReplayResponse
	if err := c.do(ctx, http.MethodPost, "/v1/deliveries/replay", nil, f, &out); err != nil {
		return 0, fmt.Errorf("replay deliveries: %w", err)
	}
	return out.Replayed, nil
}

// DeleteMessage deletes a message with its deliveries and attempts.
func (c *Client) DeleteMessage(ctx context.Context, id string) error {
	if err := c.do(ctx, http.MethodDelete, "/v1/messages/"+url.PathEscape(id), nil, nil, nil); err != nil {
		return fmt.Errorf("delete message %s: %w", id, err)
	}
	return nil
}

// Backfill sends the past messages of an async route to one of its
// targets and returns how many deliveries were queued.
func (c *Client) Backfill(ctx context.Context, route string, req BackfillRequest) (int, error) {
	var out BackfillResponse
	if err := c.do(ctx, http.MethodPost, "/v1/routes/"+url.PathEscape(route)+"/backfill", nil, req, &out); err != nil {
		return 0, fmt.Errorf("backfill route %s: %w", route, err)
	}
	return out.Queued, nil
}

// do sends one request. in, when not nil, is sent as JSON; a 2xx answer is
// decoded into out when out is not nil; any other answer becomes an
// *apierror.Error.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return err // a *url.Error names the method and URL already
	}
	defer func() { _ = res.Body.Close() }()

	if res.StatusCode < 200 || res.StatusCode > 299 {
		return decodeError(res)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, res.Body)
		return nil
	}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		return fmt.Errorf("decode %s answer: %w", res.Status, err)
	}
	return nil
}

// decodeError turns an error answer into an *apierror.Error; an answer
// not in the error shape (a proxy's page, say) keeps its status and the
// start of its body as the message.
func decodeError(res *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(res.Body, maxErrorBody))
	var env struct {
		Error *apierror.Error `json:"error"`
	}
	if err := json.Unmarshal(b, &env); err == nil && env.Error != nil && env.Error.Code != "" {
		env.Error.Status = res.StatusCode
		return env.Error
	}
	msg := strings.TrimSpace(string(b))
	if len(msg) > 200 {
		msg = strings.ToValidUTF8(msg[:200], "") + "…"
	}
	if msg == "" {
		msg = http.StatusText(res.StatusCode)
	}
	return &apierror.Error{Status: res.StatusCode, Code: "http_" + strconv.Itoa(res.StatusCode), Message: msg}
}

// IsNotFound reports whether err is a 404 answer of the admin API.
func IsNotFound(err error) bool {
	var e *apierror.Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}
