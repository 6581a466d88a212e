package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Role is a set of permissions. Every user holds RoleUser.
type Role string

const (
	RoleUser  Role = "USER"
	RoleAdmin Role = "ADMIN"
)

// Roles are every role, in a stable order.
var Roles = []Role{RoleUser, RoleAdmin}

func validRole(r Role) bool { return slices.Contains(Roles, r) }

// normalizeRoles deduplicates and orders roles and adds RoleUser.
func normalizeRoles(in []Role) ([]Role, error) {
	out := []Role{RoleUser}
	for _, r := range Roles {
		if r != RoleUser && slices.Contains(in, r) {
			out = append(out, r)
		}
	}
	for _, r := range in {
		if !validRole(r) {
			return nil, badInput("roles", ReasonInvalidFormat, fmt.Sprintf("unknown role %q", r))
		}
	}
	return out, nil
}

func roleNames(rs []Role) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r)
	}
	return out
}

// Authorize returns the caller's claims if the caller holds role. The role
// is checked against the database, so a change of roles takes effect at once
// here (other services see it in the roles claim at the next refresh). A
// disabled or deleted account is UNAUTHENTICATED.
func (s *Service) Authorize(ctx context.Context, role Role) (Claims, error) {
	c, err := Authenticate(ctx)
	if err != nil {
		return Claims{}, err
	}
	if role == "" || role == RoleUser {
		return c, nil
	}
	u, err := s.caller(ctx, c)
	if err != nil {
		return Claims{}, err
	}
	if !u.HasRole(role) {
		return Claims{}, &Error{Code: CodeForbidden, RequiredRole: string(role), Message: "this needs the " + string(role) + " role"}
	}
	return c, nil
}

// AuthorizeOwner allows the user the object belongs to, or a holder of role.
// It is for fields that are private to their owner (such as an email).
func (s *Service) AuthorizeOwner(ctx context.Context, ownerID string, role Role) error {
	if id := signedIn(ctx); id != "" && id == ownerID {
		return nil // the user this request just signed in
	}
	c, err := Authenticate(ctx)
	if err != nil {
		return err
	}
	if c.UserID == ownerID {
		return nil
	}
	if _, err := s.Authorize(ctx, role); err != nil {
		if e, ok := errors.AsType[*Error](err); ok && e.Code == CodeForbidden {
			return &Error{Code: CodeForbidden, RequiredRole: string(role), Reason: "owner_only",
				Message: "only the account's owner or the " + string(role) + " role may see this"}
		}
		return err
	}
	return nil
}
