package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// DeleteAccount deletes the caller's own account after checking its
// password (throttled and audited like changePassword).
func (s *Service) DeleteAccount(ctx context.Context, current string) (bool, error) {
	c, err := Authenticate(ctx)
	if err != nil {
		return false, err
	}
	if _, err := s.freshCaller(ctx, c); err != nil {
		return false, err
	}
	u, err := s.checkCurrentPassword(ctx, "delete_account", c, current)
	if err != nil {
		return false, err
	}
	return true, s.deleteUser(ctx, u, "self")
}

// DeleteUser deletes any account, for admins. The last enabled admin cannot
// be deleted.
func (s *Service) DeleteUser(ctx context.Context, id string) (bool, error) {
	if _, err := s.Authorize(ctx, RoleAdmin); err != nil {
		return false, err
	}
	u, err := s.userByID(ctx, id)
	if err != nil {
		return false, err
	}
	return true, s.deleteUser(ctx, u, callerID(ctx))
}

// deleteUser removes u and everything that belongs to it: the user (its
// username and email are free again at once), its sessions — refused
// everywhere within the revocation bound, as user_not_found — its pending
// links, undelivered mails and second factors. A last mail tells the
// address. The audit log keeps the event with the user ID only.
func (s *Service) deleteUser(ctx context.Context, u *User, by string) error {
	if u.HasRole(RoleAdmin) && !u.Disabled {
		// The last-admin guard of disableUser: disable first (re-counted and
		// undone if it left no admin), then delete.
		if err := s.keepAnAdmin(ctx); err != nil {
			return lastAdminDeleted(err)
		}
		if _, err := s.users.SetDisabled(ctx, u.ID, true); err != nil {
			return fmt.Errorf("auth: disable user: %w", err)
		}
		if err := s.undoIfNoAdmin(ctx, func() error { _, err := s.users.SetDisabled(ctx, u.ID, false); return err }); err != nil {
			return lastAdminDeleted(err)
		}
	}
	if err := s.users.Delete(ctx, u.ID); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("auth: delete user: %w", err)
	}
	// The user is gone: a login or refresh in flight finds no account when
	// it reads the user again. Now the sessions, with the bound of logout.
	if _, err := s.revokeUntilDone(ctx, u.ID, nil, "", RevokedAccountDeleted); err != nil {
		return err
	}
	var errs []error
	if _, err := s.sessions.DeleteForUser(ctx, u.ID); err != nil {
		errs = append(errs, fmt.Errorf("sessions: %w", err))
	}
	if _, err := s.emailTokens.DeleteForUser(ctx, u.ID); err != nil {
		errs = append(errs, fmt.Errorf("email tokens: %w", err))
	}
	if _, err := s.outbox.DeleteForUser(ctx, u.ID); err != nil {
		errs = append(errs, fmt.Errorf("mails: %w", err))
	}
	if s.mfa != nil {
		if err := s.mfa.DeleteForUser(ctx, u.ID); err != nil {
			errs = append(errs, fmt.Errorf("authenticator apps: %w", err))
		}
	}
	if err := s.deletePasskeysOf(ctx, u.ID); err != nil {
		errs = append(errs, fmt.Errorf("passkeys: %w", err))
	}
	if s.identities != nil {
		if _, err := s.identities.DeleteForUser(ctx, u.ID); err != nil {
			errs = append(errs, fmt.Errorf("identities: %w", err))
		}
	}
	if s.codes != nil {
		if _, err := s.codes.DeleteForUser(ctx, u.ID); err != nil {
			errs = append(errs, fmt.Errorf("one-time codes: %w", err))
		}
	}
	if s.trail != nil {
		if _, err := s.trail.DeleteForUser(ctx, u.ID); err != nil {
			errs = append(errs, fmt.Errorf("audit events: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		// The account is deleted and cannot sign in; what is left is swept
		// with its expiry. Logged, not returned: retrying cannot undo it.
		s.audit.WarnContext(ctx, "auth: removing the data of a deleted account failed", "user_id", u.ID, "err", err)
	}
	if err := s.enqueue(ctx, &Mail{Kind: MailAccountDeleted, To: u.Email, Username: u.Username}); err != nil {
		s.audit.WarnContext(ctx, "auth: queueing the deletion notice failed", "user_id", u.ID, "err", err)
	}
	s.audit.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("event", "account_deleted"),
		slog.String("user_id", u.ID), slog.String("by", by))
	return nil
}

// lastAdminDeleted words the last-admin refusal for a deletion.
func lastAdminDeleted(err error) error {
	if err == errLastAdmin {
		return badInput("id", "last_admin", "the last enabled ADMIN cannot be deleted")
	}
	return err
}

// maxExportedEvents bounds the audit events in an export.
const maxExportedEvents = 200

// ExportMyData returns what the server holds about the caller: the profile,
// every session it keeps (with user agents and IPs) and recent audit events
// about the account, its passkeys and its identities at providers. Never a
// password hash or a token.
func (s *Service) ExportMyData(ctx context.Context) (map[string]any, error) {
	c, err := Authenticate(ctx)
	if err != nil {
		return nil, err
	}
	u, err := s.freshCaller(ctx, c)
	if err != nil {
		return nil, err
	}
	sessions, err := s.sessions.ForUser(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("auth: list sessions: %w", err)
	}
	totpEnabled := false
	if s.mfa != nil {
		switch _, err := s.mfa.TOTP(ctx, u.ID, true); {
		case err == nil:
			totpEnabled = true
		case !errors.Is(err, ErrNotFound):
			return nil, fmt.Errorf("auth: find totp: %w", err)
		}
	}
	out := map[string]any{
		"exportedAt": s.now().UTC().Format(time.RFC3339),
		"user": map[string]any{
			"id": u.ID, "username": u.Username, "email": u.Email, "emailVerified": u.EmailVerified,
			"roles": roleNames(u.Roles), "disabled": u.Disabled, "createdAt": u.CreatedAt.UTC().Format(time.RFC3339),
			// Whether the factors exist, never their secrets.
			"mfaEnabled": u.MFAEnabled, "totpEnabled": totpEnabled,
		},
	}
	list := make([]any, 0, len(sessions))
	for _, ss := range sessions {
		e := map[string]any{
			"id": ss.ID, "createdAt": rfc3339(ss.CreatedAt), "lastUsedAt": rfc3339(ss.LastUsedAt),
			"expiresAt": rfc3339(ss.ExpiresAt), "userAgent": ss.UserAgent, "ip": ss.IP,
		}
		if !ss.RevokedAt.IsZero() {
			e["revokedAt"], e["revokedReason"] = rfc3339(ss.RevokedAt), ss.RevokedReason
		}
		list = append(list, e)
	}
	out["sessions"] = list
	keys := []any{}
	if s.rp != nil {
		creds, err := s.rp.creds.ForUser(ctx, u.ID)
		if err != nil {
			return nil, fmt.Errorf("auth: list passkeys: %w", err)
		}
		for _, c := range creds {
			pk := c.passkey() // names and dates; never a public key or a counter
			e := map[string]any{"id": pk.ID, "name": pk.Name, "createdAt": rfc3339(pk.CreatedAt)}
			if pk.LastUsedAt != nil {
				e["lastUsedAt"] = rfc3339(*pk.LastUsedAt)
			}
			keys = append(keys, e)
		}
	}
	out["passkeys"] = keys
	idents := []any{}
	if s.identities != nil {
		list, err := s.identities.ForUser(ctx, u.ID)
		if err != nil {
			return nil, fmt.Errorf("auth: list identities: %w", err)
		}
		for _, i := range list {
			idents = append(idents, map[string]any{"id": i.ID, "provider": i.Provider, "subject": i.Subject,
				"email": i.Email, "linkedAt": rfc3339(i.LinkedAt)})
		}
	}
	out["identities"] = idents
	events := []any{}
	if s.trail != nil {
		recent, err := s.trail.Recent(ctx, u.ID, maxExportedEvents)
		if err != nil {
			return nil, fmt.Errorf("auth: read audit events: %w", err)
		}
		for _, ev := range recent {
			events = append(events, ev.export())
		}
	}
	out["auditEvents"] = events
	return out, nil
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }
