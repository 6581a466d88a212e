package auth

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// In-memory fakes of the store interfaces, for domain rules that need no
// database. Each is atomic under its mutex, like MongoDB; the embedded
// database's weaker behaviour is tested in internal/mongodb and internal/api.

type memUsers struct {
	mu    sync.Mutex
	byID  map[string]User
	seq   int
	onGet func() // called after each ByID read, outside the lock
}

func newMemUsers() *memUsers { return &memUsers{byID: map[string]User{}} }

func (m *memUsers) Create(_ context.Context, u *User) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.byID {
		if o.UsernameKey == u.UsernameKey || o.EmailKey == u.EmailKey {
			return ErrDuplicate
		}
	}
	m.seq++
	u.ID = fmt.Sprintf("%024x", m.seq)
	m.byID[u.ID] = *u
	return nil
}

func (m *memUsers) ByID(_ context.Context, id string) (*User, error) {
	m.mu.Lock()
	u, ok := m.byID[id]
	m.mu.Unlock()
	if m.onGet != nil {
		m.onGet()
	}
	if !ok {
		return nil, ErrNotFound
	}
	return &u, nil
}

func (m *memUsers) find(match func(User) bool) (*User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, u := range m.byID {
		if match(u) {
			return &u, nil
		}
	}
	return nil, ErrNotFound
}

func (m *memUsers) ByUsernameKey(_ context.Context, key string) (*User, error) {
	return m.find(func(u User) bool { return u.UsernameKey == key })
}

func (m *memUsers) ByEmailKey(_ context.Context, key string) (*User, error) {
	return m.find(func(u User) bool { return u.EmailKey == key })
}

func (m *memUsers) update(id string, f func(*User)) (*User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.byID[id]
	if !ok {
		return nil, ErrNotFound
	}
	f(&u)
	m.byID[id] = u
	return &u, nil
}

func (m *memUsers) SetPassword(_ context.Context, id string, from, hash []byte, stamp string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.byID[id]
	if !ok || string(u.PasswordHash) != string(from) {
		return ErrNotFound
	}
	u.PasswordHash, u.CredentialStamp = hash, stamp
	m.byID[id] = u
	return nil
}

func (m *memUsers) SetRoles(_ context.Context, id string, roles []Role) (*User, error) {
	return m.update(id, func(u *User) { u.Roles = roles })
}

func (m *memUsers) SetDisabled(_ context.Context, id string, disabled bool) (*User, error) {
	return m.update(id, func(u *User) { u.Disabled = disabled })
}

func (m *memUsers) SetMFAEnabled(_ context.Context, id string, enabled bool) error {
	_, err := m.update(id, func(u *User) { u.MFAEnabled = enabled })
	return err
}

func (m *memUsers) CountActiveWithRole(_ context.Context, r Role) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for _, u := range m.byID {
		if !u.Disabled && u.HasRole(r) {
			n++
		}
	}
	return n, nil
}

func (m *memUsers) List(_ context.Context, afterID, prefix string, limit int) ([]*User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*User
	for _, u := range m.byID {
		if u.ID > afterID && (prefix == "" || strings.HasPrefix(u.UsernameKey, prefix) || strings.HasPrefix(u.EmailKey, prefix)) {
			out = append(out, &u)
		}
	}
	slices.SortFunc(out, func(a, b *User) int { return strings.Compare(a.ID, b.ID) })
	return out[:min(limit, len(out))], nil
}

type memSessions struct {
	mu   sync.Mutex
	byID map[string]Session
}

func newMemSessions() *memSessions { return &memSessions{byID: map[string]Session{}} }

func (m *memSessions) Create(_ context.Context, s *Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.byID[s.ID] = *s
	return nil
}

func (m *memSessions) ByID(_ context.Context, id string) (*Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.byID[id]
	if !ok {
		return nil, ErrNotFound
	}
	return &s, nil
}

func (m *memSessions) Elevate(_ context.Context, id string, aal int, amr []string, to string, now time.Time) (*Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.byID[id]
	if !ok || !s.Active(now) {
		return nil, ErrNotFound
	}
	s.AAL, s.AMR = aal, append([]string(nil), amr...)
	s.PrevHash, s.TokenHash, s.RotatedAt, s.LastUsedAt = s.TokenHash, to, now, now
	m.byID[id] = s
	return &s, nil
}

func (m *memSessions) Rotate(_ context.Context, id string, r Rotation) (*Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.byID[id]
	if !ok || s.TokenHash != r.From || !s.Active(r.Now) {
		return nil, ErrNotFound
	}
	s.PrevHash, s.TokenHash, s.RotatedAt, s.LastUsedAt, s.ExpiresAt = r.From, r.To, r.Now, r.Now, r.ExpiresAt
	if r.Stamp != "" {
		s.CredentialStamp = r.Stamp
	}
	m.byID[id] = s
	return &s, nil
}

func (m *memSessions) Active(_ context.Context, userID string, now time.Time) ([]*Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*Session
	for _, s := range m.byID {
		if s.UserID == userID && s.Active(now) {
			out = append(out, &s)
		}
	}
	return out, nil
}

func (m *memSessions) ActiveIDs(_ context.Context, userID string, ids []string, except string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for id, s := range m.byID {
		if s.UserID == userID && s.RevokedAt.IsZero() && id != except && (ids == nil || slices.Contains(ids, id)) {
			out = append(out, id)
		}
	}
	return out, nil
}

func (m *memSessions) Revoke(_ context.Context, ids []string, reason string, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		if s, ok := m.byID[id]; ok && s.RevokedAt.IsZero() {
			s.RevokedAt, s.RevokedReason = now, reason
			m.byID[id] = s
		}
	}
	return nil
}

func (m *memSessions) DeleteEnded(context.Context, time.Time) (int64, error) { return 0, nil }

func (m *memSessions) ForUser(_ context.Context, userID string) ([]*Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*Session
	for _, s := range m.byID {
		if s.UserID == userID {
			out = append(out, &s)
		}
	}
	return out, nil
}

func (m *memSessions) DeleteForUser(_ context.Context, userID string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for id, s := range m.byID {
		if s.UserID == userID {
			delete(m.byID, id)
			n++
		}
	}
	return n, nil
}

type memThrottles struct {
	mu       sync.Mutex
	attempts map[string][]Attempt
}

func newMemThrottles() *memThrottles { return &memThrottles{attempts: map[string][]Attempt{}} }

func (m *memThrottles) Last(_ context.Context, key string) (Attempt, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.attempts[key]
	if len(a) == 0 {
		return Attempt{}, ErrNotFound
	}
	return a[len(a)-1], nil
}

func (m *memThrottles) Reserve(_ context.Context, key string, a Attempt) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, have := range m.attempts[key] {
		if have.Seq == a.Seq {
			return ErrDuplicate
		}
	}
	m.attempts[key] = append(m.attempts[key], a)
	return nil
}

func (m *memThrottles) Reset(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.attempts, key)
	return nil
}

func (m *memThrottles) DeleteIdle(context.Context, time.Time) (int64, error) { return 0, nil }

type memLog struct {
	mu      sync.Mutex
	entries []RevocationEntry
}

func (m *memLog) Append(_ context.Context, e RevocationEntry) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	seq := int64(len(m.entries) + 1)
	e.Seq = seq
	m.entries = append(m.entries, e)
	return seq, nil
}

func (m *memLog) Entry(_ context.Context, seq int64) (RevocationEntry, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if seq < 1 || seq > int64(len(m.entries)) {
		return RevocationEntry{}, false, nil
	}
	return m.entries[seq-1], true, nil
}

func (m *memLog) After(_ context.Context, seq int64, limit int) ([]RevocationEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if seq >= int64(len(m.entries)) {
		return nil, nil
	}
	rest := m.entries[seq:]
	return slices.Clone(rest[:min(limit, len(rest))]), nil
}

func (m *memLog) Prune(context.Context, time.Time) (int64, error) { return 0, nil }

func (m *memUsers) SetEmailVerified(_ context.Context, id, emailKey string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.byID[id]
	if !ok || u.EmailKey != emailKey {
		return ErrNotFound
	}
	u.EmailVerified = true
	m.byID[id] = u
	return nil
}

func (m *memUsers) SetEmail(_ context.Context, id, fromKey, email, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.byID[id]
	if !ok || u.EmailKey != fromKey {
		return ErrNotFound
	}
	for oid, o := range m.byID {
		if oid != id && o.EmailKey == key {
			return ErrDuplicate
		}
	}
	u.Email, u.EmailKey, u.EmailVerified = email, key, true
	m.byID[id] = u
	return nil
}

func (m *memUsers) Delete(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.byID[id]; !ok {
		return ErrNotFound
	}
	delete(m.byID, id)
	return nil
}

type memEmailTokens struct {
	mu     sync.Mutex
	byHash map[string]EmailToken
}

func newMemEmailTokens() *memEmailTokens { return &memEmailTokens{byHash: map[string]EmailToken{}} }

func (m *memEmailTokens) Create(_ context.Context, t *EmailToken) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.byHash[t.Hash]; ok {
		return ErrDuplicate
	}
	m.byHash[t.Hash] = *t
	return nil
}

func (m *memEmailTokens) ByHash(_ context.Context, hash string) (*EmailToken, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.byHash[hash]
	if !ok {
		return nil, ErrNotFound
	}
	return &t, nil
}

func (m *memEmailTokens) Latest(_ context.Context, userID string, kind EmailTokenKind) (*EmailToken, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var best *EmailToken
	for _, t := range m.byHash {
		if t.UserID == userID && t.Kind == kind && (best == nil || t.CreatedAt.After(best.CreatedAt) ||
			t.CreatedAt.Equal(best.CreatedAt) && t.Hash > best.Hash) {
			best = &t
		}
	}
	if best == nil {
		return nil, ErrNotFound
	}
	return best, nil
}

func (m *memEmailTokens) DeleteForUser(_ context.Context, userID string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for h, t := range m.byHash {
		if t.UserID == userID {
			delete(m.byHash, h)
			n++
		}
	}
	return n, nil
}

func (m *memEmailTokens) DeleteExpired(context.Context, time.Time) (int64, error) { return 0, nil }

type memMarkers struct {
	mu    sync.Mutex
	until map[string]time.Time
}

func newMemMarkers() *memMarkers { return &memMarkers{until: map[string]time.Time{}} }

func (m *memMarkers) Put(_ context.Context, key string, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.until[key]; ok {
		return ErrDuplicate
	}
	m.until[key] = until
	return nil
}

func (m *memMarkers) Until(_ context.Context, key string) (time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.until[key]
	if !ok {
		return time.Time{}, ErrNotFound
	}
	return u, nil
}

func (m *memMarkers) DeleteBefore(context.Context, time.Time) (int64, error) { return 0, nil }

type memOutbox struct {
	mu    sync.Mutex
	seq   int
	mails []Mail
}

func (m *memOutbox) Enqueue(_ context.Context, mail *Mail) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq++
	mail.ID = fmt.Sprint("mail-", m.seq)
	m.mails = append(m.mails, *mail)
	return nil
}

func (m *memOutbox) DeleteForUser(_ context.Context, userID string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := len(m.mails)
	m.mails = slices.DeleteFunc(m.mails, func(x Mail) bool { return x.UserID == userID })
	return int64(n - len(m.mails)), nil
}

// queued returns the mails of kind, oldest first.
func (m *memOutbox) queued(kind MailKind) []Mail {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Mail
	for _, x := range m.mails {
		if x.Kind == kind {
			out = append(out, x)
		}
	}
	return out
}
