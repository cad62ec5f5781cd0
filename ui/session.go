package ui

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"
)

// session is one signed-in browser.
type session struct {
	id    string
	token string // the admin or tenant admin token, sent to the admin API
	// admin is true for the admin token; otherwise the token is a
	// tenant's admin token and tenant names that tenant.
	admin   bool
	tenant  string
	csrf    string
	created time.Time
	seen    time.Time // last request
	// flash is the result of the last action, shown once.
	flash      string
	flashError bool
}

// sessions is the server-side session map.
type sessions struct {
	mu   sync.Mutex
	byID map[string]*session
	ttl  time.Duration // since sign-in
	idle time.Duration // since the last request
	max  int
}

func newSessions(ttl, idle time.Duration, max int) *sessions {
	return &sessions{byID: map[string]*session{}, ttl: ttl, idle: idle, max: max}
}

// randomID returns 32 random bytes, base64url encoded.
func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// create stores a new session; false when the map is full of live
// sessions.
func (s *sessions) create(token string, admin bool, tenant string, now time.Time) (*session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.byID) >= s.max {
		s.dropExpiredLocked(now)
		if len(s.byID) >= s.max {
			return nil, false
		}
	}
	ss := &session{id: randomID(), token: token, admin: admin, tenant: tenant, csrf: randomID(), created: now, seen: now}
	s.byID[ss.id] = ss
	return ss, true
}

// get returns the live session id names and marks it seen; an expired one
// is dropped. The returned copy is safe to read without the lock.
func (s *sessions) get(id string, now time.Time) (session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.byID[id]
	if !ok {
		return session{}, false
	}
	if s.expired(ss, now) {
		delete(s.byID, id)
		return session{}, false
	}
	ss.seen = now
	return *ss, true
}

// takeFlash returns and clears the session's flash message.
func (s *sessions) takeFlash(id string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.byID[id]
	if !ok {
		return "", false
	}
	msg, isErr := ss.flash, ss.flashError
	ss.flash, ss.flashError = "", false
	return msg, isErr
}

// setFlash keeps msg for the next page the session sees.
func (s *sessions) setFlash(id, msg string, isErr bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss, ok := s.byID[id]; ok {
		ss.flash, ss.flashError = msg, isErr
	}
}

func (s *sessions) delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, id)
}

func (s *sessions) expired(ss *session, now time.Time) bool {
	return now.Sub(ss.created) >= s.ttl || now.Sub(ss.seen) >= s.idle
}

// dropExpired removes every expired session and returns how many are
// left.
func (s *sessions) dropExpired(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropExpiredLocked(now)
	return len(s.byID)
}

func (s *sessions) dropExpiredLocked(now time.Time) {
	for id, ss := range s.byID {
		if s.expired(ss, now) {
			delete(s.byID, id)
		}
	}
}
