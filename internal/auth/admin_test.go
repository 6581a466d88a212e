package auth

import "testing"

func TestLastAdminCannotBeDemotedOrDisabled(t *testing.T) {
	f := newFixture(t)
	root := f.register(t, "root")
	if _, err := f.svc.GrantRole(t.Context(), "root", RoleAdmin); err != nil {
		t.Fatal(err)
	}
	ctx := f.as(t, root)
	wantLast := func(err error) {
		t.Helper()
		if e, ok := err.(*Error); !ok || e.Code != CodeBadUserInput || e.Reason != "last_admin" {
			t.Fatalf("err = %v, want last_admin", err)
		}
	}
	_, err := f.svc.SetUserRoles(ctx, root.User.ID, []Role{RoleUser})
	wantLast(err)
	_, err = f.svc.SetUserDisabled(ctx, root.User.ID, true)
	wantLast(err)
	if u, _ := f.users.ByID(t.Context(), root.User.ID); !u.HasRole(RoleAdmin) || u.Disabled {
		t.Fatalf("the last admin changed: %+v", u)
	}
	// With a second admin, the first may go.
	second := f.register(t, "second")
	if _, err := f.svc.SetUserRoles(ctx, second.User.ID, []Role{RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SetUserRoles(ctx, root.User.ID, []Role{RoleUser}); err != nil {
		t.Fatal(err)
	}
}

func TestAdminOperationsNeedTheRole(t *testing.T) {
	f := newFixture(t)
	plain := f.register(t, "plain")
	other := f.register(t, "other")
	ctx := f.as(t, plain)
	for name, err := range map[string]error{
		"setUserRoles": func() error { _, err := f.svc.SetUserRoles(ctx, other.User.ID, []Role{RoleAdmin}); return err }(),
		"disable":      func() error { _, err := f.svc.SetUserDisabled(ctx, other.User.ID, true); return err }(),
		"list":         func() error { _, err := f.svc.ListUsers(ctx, 10, "", ""); return err }(),
	} {
		if e, ok := err.(*Error); !ok || e.Code != CodeForbidden || e.RequiredRole != "ADMIN" {
			t.Errorf("%s as USER: %v, want FORBIDDEN requiring ADMIN", name, err)
		}
	}
	if u, _ := f.users.ByID(t.Context(), other.User.ID); u.HasRole(RoleAdmin) || u.Disabled {
		t.Fatalf("a USER changed another account: %+v", u)
	}
}
