package graph

import (
	"context"

	"github.com/authgql/server/graph/model"
	"github.com/authgql/server/internal/auth"
	"github.com/authgql/server/internal/ws"
)

// securityEvents streams the caller's security events (see the schema). The
// stream ends with the socket: when the event is the end of the socket's own
// session, it is written and then the socket closes with 4403.
func (r *subscriptionResolver) securityEvents(ctx context.Context) (<-chan *model.SecurityEvent, error) {
	c, err := auth.Authenticate(ctx)
	if err != nil {
		return nil, err
	}
	events, cancel := r.auth.SubscribeSecurityEvents(c.UserID)
	sock := ws.FromContext(ctx)
	done := func() {}
	if sock != nil {
		done = sock.WatchEvents()
	}
	out := make(chan *model.SecurityEvent)
	go func() {
		defer close(out)
		defer cancel()
		defer done()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-events:
				if !ok {
					return
				}
				own := ev.SessionID != "" && ev.SessionID == c.SessionID
				if own && ev.Type == auth.EventSessionCreated {
					// The socket's own sign-in, read by the sync just after
					// subscribing: not news to it.
					continue
				}
				ends := own && ev.Type == auth.EventSessionRevoked
				if ends && sock != nil {
					sock.CloseAfterFinalEvent(ctx, ws.CodeForbidden, auth.ReasonSessionRevoked)
				}
				select {
				case out <- securityEvent(ev, own):
				case <-ctx.Done():
					return
				}
				if ends {
					return // the stream ends; the socket closes once this event is out
				}
			}
		}
	}()
	return out, nil
}

func securityEvent(ev auth.SecurityEvent, current bool) *model.SecurityEvent {
	return &model.SecurityEvent{
		Type:      ev.Type,
		At:        ev.At.UTC(),
		SessionID: optional(ev.SessionID),
		Current:   current,
		UserAgent: optional(ev.UserAgent),
		IP:        optional(ev.IP),
	}
}
