package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// SetUserRoles replaces a user's roles (RoleUser is always kept). The last
// enabled admin cannot lose the admin role.
func (s *Service) SetUserRoles(ctx context.Context, id string, roles []Role) (*User, error) {
	if _, err := s.Authorize(ctx, RoleAdmin); err != nil {
		return nil, err
	}
	roles, err := normalizeRoles(roles)
	if err != nil {
		return nil, err
	}
	u, err := s.userByID(ctx, id)
	if err != nil {
		return nil, err
	}
	demote := u.HasRole(RoleAdmin) && !slices.Contains(roles, RoleAdmin)
	if demote && !u.Disabled {
		if err := s.keepAnAdmin(ctx); err != nil {
			return nil, err
		}
	}
	updated, err := s.users.SetRoles(ctx, id, roles)
	if err != nil {
		return nil, fmt.Errorf("auth: set roles: %w", err)
	}
	if demote && !u.Disabled {
		if err := s.undoIfNoAdmin(ctx, func() error { _, err := s.users.SetRoles(ctx, id, u.Roles); return err }); err != nil {
			return nil, err
		}
	}
	s.audit.InfoContext(ctx, "audit", "event", "set_roles", "user_id", id, "roles", roleNames(roles), "by", callerID(ctx))
	if !slices.Equal(u.Roles, roles) {
		s.announce(ctx, id, s.securityEvent(ctx, EventRolesChanged, id))
	}
	return updated, nil
}

// SetUserDisabled disables or enables an account. Disabling revokes every
// session of the user, with the same bound as logout.
func (s *Service) SetUserDisabled(ctx context.Context, id string, disabled bool) (*User, error) {
	if _, err := s.Authorize(ctx, RoleAdmin); err != nil {
		return nil, err
	}
	u, err := s.userByID(ctx, id)
	if err != nil {
		return nil, err
	}
	last := disabled && !u.Disabled && u.HasRole(RoleAdmin)
	if last {
		if err := s.keepAnAdmin(ctx); err != nil {
			return nil, err
		}
	}
	updated, err := s.users.SetDisabled(ctx, id, disabled)
	if err != nil {
		return nil, fmt.Errorf("auth: set disabled: %w", err)
	}
	if last {
		if err := s.undoIfNoAdmin(ctx, func() error { _, err := s.users.SetDisabled(ctx, id, false); return err }); err != nil {
			return nil, err
		}
	}
	if disabled {
		if _, err := s.revoke(ctx, id, nil, "", "disabled", s.securityEvent(ctx, EventAccountDisabled, id)); err != nil {
			return nil, err
		}
	}
	s.audit.InfoContext(ctx, "audit", "event", "set_disabled", "user_id", id, "disabled", disabled, "by", callerID(ctx))
	return updated, nil
}

var errLastAdmin = badInput("roles", "last_admin", "the last enabled ADMIN cannot be demoted or disabled")

// keepAnAdmin refuses to take away the admin role when only one enabled
// admin is left.
func (s *Service) keepAnAdmin(ctx context.Context) error {
	n, err := s.users.CountActiveWithRole(ctx, RoleAdmin)
	if err != nil {
		return fmt.Errorf("auth: count admins: %w", err)
	}
	if n <= 1 {
		return errLastAdmin
	}
	return nil
}

// undoIfNoAdmin re-counts after a demotion: two admins demoting each other at
// once both pass keepAnAdmin, and without transactions the second write is
// undone here instead. Count, write and re-count are separate operations on
// every database: the guard is a best effort against two admins acting in
// the same instant (tested sequentially, and with two instances, on the
// embedded database), not an atomic invariant.
func (s *Service) undoIfNoAdmin(ctx context.Context, undo func() error) error {
	n, err := s.users.CountActiveWithRole(ctx, RoleAdmin)
	if err != nil {
		return fmt.Errorf("auth: count admins: %w", err)
	}
	if n > 0 {
		return nil
	}
	if err := undo(); err != nil {
		return fmt.Errorf("auth: restore last admin: %w", err)
	}
	return errLastAdmin
}

func (s *Service) userByID(ctx context.Context, id string) (*User, error) {
	u, err := s.users.ByID(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, &Error{Code: CodeNotFound, Field: "id", Message: "no such user"}
	}
	if err != nil {
		return nil, fmt.Errorf("auth: find user: %w", err)
	}
	return u, nil
}

// User returns any user, for admins; nil when there is none.
func (s *Service) User(ctx context.Context, id string) (*User, error) {
	if _, err := s.Authorize(ctx, RoleAdmin); err != nil {
		return nil, err
	}
	u, err := s.users.ByID(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("auth: find user: %w", err)
	}
	return u, nil
}

var errBadCursor = badInput("after", ReasonInvalidFormat, "after must be a cursor from a previous page")

// UserPage is one page of users.
type UserPage struct {
	Users       []*User
	HasNextPage bool
}

// maxPageSize bounds users(first:).
const maxPageSize = 100

// ListUsers pages through users in creation order, for admins. afterID is the
// ID of the last user of the previous page; search is a case-insensitive
// prefix of the username or the email address.
func (s *Service) ListUsers(ctx context.Context, first int, afterID, search string) (*UserPage, error) {
	if _, err := s.Authorize(ctx, RoleAdmin); err != nil {
		return nil, err
	}
	if first < 1 || first > maxPageSize {
		return nil, badInput("first", ReasonInvalidFormat, fmt.Sprintf("first must be from 1 to %d", maxPageSize))
	}
	prefix, _ := loginKey(search)
	users, err := s.users.List(ctx, afterID, prefix, first+1)
	if errors.Is(err, ErrNotFound) {
		return nil, errBadCursor
	}
	if err != nil {
		return nil, fmt.Errorf("auth: list users: %w", err)
	}
	page := &UserPage{Users: users}
	if len(users) > first {
		page.Users, page.HasNextPage = users[:first], true
	}
	return page, nil
}

// GrantRole gives username role, for the admin bootstrap (no caller: it runs
// from the command line or at start). It is idempotent.
func (s *Service) GrantRole(ctx context.Context, username string, role Role) (*User, error) {
	if !validRole(role) {
		return nil, fmt.Errorf("unknown role %q", role)
	}
	_, key, verr := NormalizeUsername(username)
	if verr != nil {
		return nil, verr
	}
	u, err := s.users.ByUsernameKey(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("no user %q: register it first: %w", username, err)
	}
	if err != nil {
		return nil, fmt.Errorf("auth: find user: %w", err)
	}
	if u.HasRole(role) {
		return u, nil
	}
	roles, _ := normalizeRoles(append(append([]Role{}, u.Roles...), role))
	u, err = s.users.SetRoles(ctx, u.ID, roles)
	if err != nil {
		return nil, fmt.Errorf("auth: set roles: %w", err)
	}
	s.audit.InfoContext(ctx, "audit", "event", "grant_role", "user_id", u.ID, "role", string(role), "by", "bootstrap")
	s.announce(ctx, u.ID, s.securityEvent(ctx, EventRolesChanged, u.ID))
	return u, nil
}

func callerID(ctx context.Context) string {
	c, _ := ClaimsFromContext(ctx)
	return c.UserID
}

// BootstrapOutcome says what BootstrapAdmins did with one listed username.
type BootstrapOutcome struct {
	Username string
	Granted  bool
	Reason   string // why not: "admin_exists", "no_such_user" or an error
}

// BootstrapAdmins gives ADMIN to the listed usernames, but only while no
// enabled ADMIN exists: it bootstraps the first admin and nothing else. Once
// an admin exists, the list is ignored — otherwise anyone could register a
// listed name that does not exist yet and become ADMIN at the next restart,
// and demoting a listed admin would be undone by every restart.
func (s *Service) BootstrapAdmins(ctx context.Context, usernames []string) ([]BootstrapOutcome, error) {
	if len(usernames) == 0 {
		return nil, nil
	}
	n, err := s.fresh.CountActiveWithRole(ctx, RoleAdmin)
	if err != nil {
		return nil, fmt.Errorf("auth: count admins: %w", err)
	}
	out := make([]BootstrapOutcome, 0, len(usernames))
	for _, name := range usernames {
		o := BootstrapOutcome{Username: name}
		switch {
		case n > 0:
			o.Reason = "admin_exists"
		default:
			_, err := s.GrantRole(ctx, name, RoleAdmin)
			switch {
			case err == nil:
				o.Granted = true
			case errors.Is(err, ErrNotFound):
				o.Reason = "no_such_user"
			default:
				o.Reason = err.Error()
			}
		}
		out = append(out, o)
	}
	return out, nil
}
