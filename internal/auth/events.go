package auth

import (
	"context"
	"sync"
	"time"
)

// SecurityEventType is what happened in a SecurityEvent.
type SecurityEventType string

const (
	EventSessionCreated  SecurityEventType = "SESSION_CREATED"
	EventSessionRevoked  SecurityEventType = "SESSION_REVOKED"
	EventPasswordChanged SecurityEventType = "PASSWORD_CHANGED"
	EventEmailChanged    SecurityEventType = "EMAIL_CHANGED"
	EventRolesChanged    SecurityEventType = "ROLES_CHANGED"
	EventAccountDisabled SecurityEventType = "ACCOUNT_DISABLED"
	EventMFAEnabled      SecurityEventType = "MFA_ENABLED"
	EventMFADisabled     SecurityEventType = "MFA_DISABLED"
	EventPasskeyAdded    SecurityEventType = "PASSKEY_ADDED"
	EventPasskeyRemoved  SecurityEventType = "PASSKEY_REMOVED"
	// An identity provider's account was linked to, or unlinked from, the account.
	EventIdentityLinked   SecurityEventType = "IDENTITY_LINKED"
	EventIdentityUnlinked SecurityEventType = "IDENTITY_UNLINKED"
)

// SecurityEvent is something that happened to an account's security.
type SecurityEvent struct {
	Type   SecurityEventType
	At     time.Time
	UserID string
	// SessionID is the session created or ended; for other events, the
	// session that made the change ("" when an admin or a mail link did).
	SessionID string
	UserAgent string // SESSION_CREATED: the new session's client
	// IP is, for SESSION_CREATED, the new session's client; for the others,
	// the client that made the change, unless an admin did.
	IP string
}

// Security events travel in the revocation log, so that every instance reads
// them with the one query per sync it makes anyway, and fans them out in
// memory to its own subscribers. They are delivered when read, also on the
// instance that wrote them: every instance then delivers one account's
// events in log order.

// eventBuffer is how far a subscriber may fall behind before it loses events.
const eventBuffer = 64

// eventHub hands the events the sync reads to this instance's subscribers.
type eventHub struct {
	mu    sync.Mutex
	subs  map[string]map[*subscription]struct{} // by user ID
	ended []func(sessionIDs []string)
	// live is set once a sync has caught up with the log: entries read
	// before are history, delivered to no one.
	live bool
}

type subscription struct {
	ch chan SecurityEvent
}

func newEventHub() *eventHub {
	return &eventHub{subs: make(map[string]map[*subscription]struct{})}
}

// SubscribeSecurityEvents delivers userID's events that this instance reads
// from the log from now on, in log order, at most once: a subscriber that
// does not keep up loses events (the channel is buffered; the sync never
// waits). cancel stops delivery and closes the channel; it is safe to call
// twice.
func (s *Service) SubscribeSecurityEvents(userID string) (events <-chan SecurityEvent, cancel func()) {
	h := s.events
	sub := &subscription{ch: make(chan SecurityEvent, eventBuffer)}
	h.mu.Lock()
	if h.subs[userID] == nil {
		h.subs[userID] = make(map[*subscription]struct{})
	}
	h.subs[userID][sub] = struct{}{}
	h.mu.Unlock()
	var once sync.Once
	return sub.ch, func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			delete(h.subs[userID], sub)
			if len(h.subs[userID]) == 0 {
				delete(h.subs, userID)
			}
			close(sub.ch)
		})
	}
}

// OnSessionsEnded registers fn, called by the sync (one call at a time) with
// the IDs of the sessions ended by each log entry it reads, after the entry's
// events were handed to subscribers: a socket can deliver the SESSION_REVOKED
// of its own session before it closes. Entries written by this instance are
// read back like any other. fn must not block, nor modify sessionIDs.
func (s *Service) OnSessionsEnded(fn func(sessionIDs []string)) {
	s.events.mu.Lock()
	defer s.events.mu.Unlock()
	s.events.ended = append(s.events.ended, fn)
}

// dispatch hands the events of e to the subscribers of their account, then
// tells the OnSessionsEnded functions which sessions e ended.
func (h *eventHub) dispatch(e RevocationEntry) {
	h.mu.Lock()
	if h.live {
		for _, ev := range e.Events {
			if ev.UserID == "" {
				ev.UserID = e.UserID
			}
			for sub := range h.subs[ev.UserID] {
				select {
				case sub.ch <- ev:
				default: // the subscriber is behind: at most once
				}
			}
		}
	}
	ended := h.ended
	h.mu.Unlock()
	if len(e.SessionIDs) == 0 {
		return
	}
	for _, fn := range ended {
		fn(e.SessionIDs)
	}
}

// caughtUp marks the end of the first complete sync.
func (h *eventHub) caughtUp() {
	h.mu.Lock()
	h.live = true
	h.mu.Unlock()
}

// securityEvent is an event of typ about userID, made by the current request:
// its session when it is one of userID's, and its client unless another
// user (an admin) made it.
func (s *Service) securityEvent(ctx context.Context, typ SecurityEventType, userID string) SecurityEvent {
	ev := SecurityEvent{Type: typ, At: s.now().UTC().Truncate(time.Millisecond), UserID: userID}
	c, ok := ClaimsFromContext(ctx)
	if ok && c.UserID == userID {
		ev.SessionID = c.SessionID
	}
	if !ok || c.UserID == userID {
		ev.IP = ClientFromContext(ctx).IP
	}
	return ev
}

// byLink is ev made through a mail link: no session made it.
func byLink(ev SecurityEvent) SecurityEvent {
	ev.SessionID = ""
	return ev
}

// announceTimeout bounds the write of an event-only entry; it goes on when
// the request that made the change is cancelled, for the change is done.
const announceTimeout = 5 * time.Second

// announce writes events (of userID) to the log as an entry that ends no
// session. Events are at most once: a failure is logged, never returned, for
// the change they report has happened.
func (s *Service) announce(ctx context.Context, userID string, events ...SecurityEvent) {
	if len(events) == 0 {
		return
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), announceTimeout)
	defer cancel()
	e := RevocationEntry{UserID: userID, Events: events, At: s.now().UTC()}
	if _, err := s.revocationLog.Append(wctx, e); err != nil {
		s.audit.WarnContext(ctx, "auth: writing a security event failed", "user_id", userID,
			"event", string(events[0].Type), "err", err)
	}
}

// revokedEvents are the SESSION_REVOKED events of sessions ended by the
// current request, after lead (the change that ended them).
func (s *Service) revokedEvents(ctx context.Context, userID string, ended []string, lead []SecurityEvent) []SecurityEvent {
	out := make([]SecurityEvent, 0, len(lead)+len(ended))
	out = append(out, lead...)
	for _, id := range ended {
		ev := s.securityEvent(ctx, EventSessionRevoked, userID)
		ev.SessionID = id
		out = append(out, ev)
	}
	return out
}
