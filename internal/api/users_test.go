package api_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestUsersPagination(t *testing.T) {
	e := newEnv(t)
	e.mustRegister(t, "root", "root@example.com")
	e.grantAdmin(t, "root")
	admin := e.loginAs(t, "root")
	for i := range 24 {
		e.mustRegister(t, fmt.Sprintf("member%02d", i), fmt.Sprintf("m%02d@example.org", i))
	}
	type page struct {
		Edges []struct {
			Cursor string `json:"cursor"`
			Node   struct {
				Username string `json:"username"`
			} `json:"node"`
		} `json:"edges"`
		PageInfo struct {
			HasNextPage bool    `json:"hasNextPage"`
			EndCursor   *string `json:"endCursor"`
		} `json:"pageInfo"`
	}
	list := func(vars map[string]any) (page, gqlResponse) {
		t.Helper()
		res := e.post(t, admin.AccessToken, `query($first: Int, $after: String, $search: String) {
			users(first: $first, after: $after, search: $search) { edges { cursor node { username } } pageInfo { hasNextPage endCursor } } }`, vars)
		var p page
		if len(res.Errors) == 0 {
			if err := json.Unmarshal(res.Data["users"], &p); err != nil {
				t.Fatal(err)
			}
		}
		return p, res
	}
	var seen []string
	var after any
	for pages := 0; ; pages++ {
		p, res := list(map[string]any{"first": 10, "after": after})
		if len(res.Errors) > 0 {
			t.Fatal(res.Raw)
		}
		for _, ed := range p.Edges {
			seen = append(seen, ed.Node.Username)
		}
		if !p.PageInfo.HasNextPage {
			if pages != 2 || len(p.Edges) != 5 {
				t.Errorf("last page: page %d with %d users, want page 2 with 5", pages, len(p.Edges))
			}
			break
		}
		if len(p.Edges) != 10 || p.PageInfo.EndCursor == nil || *p.PageInfo.EndCursor != p.Edges[9].Cursor {
			t.Fatalf("page %d: %d edges, endCursor %v", pages, len(p.Edges), p.PageInfo.EndCursor)
		}
		after = *p.PageInfo.EndCursor
	}
	want := []string{"root"}
	for i := range 24 {
		want = append(want, fmt.Sprintf("member%02d", i))
	}
	if !slices.Equal(seen, want) {
		t.Errorf("pages listed %v, want every user once in creation order", seen)
	}
	// The same request gives the same page: a stable order.
	_, a := list(map[string]any{"first": 7})
	_, b := list(map[string]any{"first": 7})
	if a.Raw != b.Raw || len(a.Errors) > 0 {
		t.Error("two identical requests listed different pages")
	}

	searches := map[string]int{"MEMBER1": 10, "m0": 10, "m23@EXAMPLE.org": 1, "root": 1, ".*": 0, "member0[0-9]": 0, "nobody": 0}
	for search, n := range searches {
		p, res := list(map[string]any{"first": 100, "search": search})
		if len(res.Errors) > 0 || len(p.Edges) != n {
			t.Errorf("search %q: %d users, want %d: %.200s", search, len(p.Edges), n, res.Raw)
		}
	}
	for _, bad := range []map[string]any{{"first": 0}, {"first": 101}, {"after": "not a cursor"}, {"after": base64.RawURLEncoding.EncodeToString([]byte("session:x"))}} {
		if _, res := list(bad); res.code(t) != "BAD_USER_INPUT" {
			t.Errorf("%v: %s", bad, res.Raw)
		}
	}
}

// A cursor that was not issued by the server is BAD_USER_INPUT on "after",
// not an empty page.
func TestTamperedCursor(t *testing.T) {
	e := newEnv(t)
	e.mustRegister(t, "root", "root@example.com")
	e.grantAdmin(t, "root")
	admin := e.loginAs(t, "root")
	for _, c := range []string{
		base64.RawURLEncoding.EncodeToString([]byte("user:zz")),
		base64.RawURLEncoding.EncodeToString([]byte(`user:{"$gt": ""}`)),
		"not base64!",
		base64.RawURLEncoding.EncodeToString([]byte("session:abc")),
	} {
		res := e.post(t, admin.AccessToken, `query($a: String) { users(after: $a) { edges { cursor } } }`, map[string]any{"a": c})
		if res.code(t) != "BAD_USER_INPUT" || res.ext("field") != "after" {
			t.Errorf("after=%q: %s, want BAD_USER_INPUT on after", c, res.Raw)
		}
	}
	// A real cursor still pages.
	res := e.post(t, admin.AccessToken, `{ users(first: 1) { pageInfo { endCursor } } }`, nil)
	var page struct {
		PageInfo struct{ EndCursor string } `json:"pageInfo"`
	}
	if err := json.Unmarshal(res.Data["users"], &page); err != nil || page.PageInfo.EndCursor == "" {
		t.Fatalf("first page: %v: %s", err, res.Raw)
	}
	if r := e.post(t, admin.AccessToken, `query($a: String) { users(after: $a) { edges { cursor } } }`,
		map[string]any{"a": page.PageInfo.EndCursor}); len(r.Errors) > 0 {
		t.Fatalf("a real cursor: %s", r.Raw)
	}
}

func TestDisableUser(t *testing.T) {
	e := newEnv(t)
	e.mustRegister(t, "root", "root@example.com")
	e.grantAdmin(t, "root")
	admin := e.loginAs(t, "root")
	victim := e.mustRegister(t, "victim", "victim@example.com")
	other := e.loginAs(t, "victim")

	res := e.post(t, admin.AccessToken, `mutation($id: ID!) { disableUser(id: $id) { username disabled } }`, map[string]any{"id": victim.User.ID})
	if !strings.Contains(res.Raw, `"disabled":true`) {
		t.Fatalf("disableUser: %s", res.Raw)
	}
	for _, p := range []authPayload{victim, other} {
		wantUnauthenticated(t, e.post(t, p.AccessToken, meQuery, nil), "session_revoked")
		wantRefreshError(t, e.refresh(t, "", p.RefreshToken), "revoked")
	}
	res = e.login(t, "", "victim", testPassword)
	if res.code(t) != "FORBIDDEN" || res.ext("reason") != "user_disabled" {
		t.Errorf("login of a disabled user: %s", res.Raw)
	}
	if got := e.login(t, "", "victim", "wrong password!").code(t); got != "INVALID_CREDENTIALS" {
		t.Errorf("a wrong password must not reveal the account is disabled: %s", got)
	}

	e.post(t, admin.AccessToken, `mutation($id: ID!) { enableUser(id: $id) { id } }`, map[string]any{"id": victim.User.ID})
	back := payload(t, e.login(t, "", "victim", testPassword), "login")
	if !e.meWorks(t, back.AccessToken) {
		t.Error("an enabled user cannot work again")
	}
	wantUnauthenticated(t, e.post(t, victim.AccessToken, meQuery, nil), "session_revoked")
}

func TestLastAdminProtection(t *testing.T) {
	e := newEnv(t)
	e.mustRegister(t, "root", "root@example.com")
	e.grantAdmin(t, "root")
	admin := e.loginAs(t, "root")
	for name, doc := range map[string]string{
		"demote self":  `mutation($id: ID!) { setUserRoles(id: $id, roles: [USER]) { id } }`,
		"disable self": `mutation($id: ID!) { disableUser(id: $id) { id } }`,
	} {
		res := e.post(t, admin.AccessToken, doc, map[string]any{"id": admin.User.ID})
		if res.code(t) != "BAD_USER_INPUT" || res.ext("reason") != "last_admin" {
			t.Errorf("%s: %s", name, res.Raw)
		}
	}
	if !strings.Contains(e.post(t, admin.AccessToken, `{ me { roles disabled } }`, nil).Raw, `"roles":["USER","ADMIN"],"disabled":false`) {
		t.Error("the last admin lost the role or was disabled")
	}
	second := e.mustRegister(t, "second", "second@example.com")
	e.grantAdmin(t, "second")
	res := e.post(t, admin.AccessToken, `mutation($id: ID!) { setUserRoles(id: $id, roles: [USER]) { roles } }`, map[string]any{"id": second.User.ID})
	if !strings.Contains(res.Raw, `"roles":["USER"]`) {
		t.Errorf("demoting one of two admins: %s", res.Raw)
	}
	res = e.post(t, admin.AccessToken, `mutation($id: ID!) { setUserRoles(id: $id, roles: [USER]) { id } }`, map[string]any{"id": admin.User.ID})
	if res.ext("reason") != "last_admin" {
		t.Errorf("then demoting the last: %s", res.Raw)
	}
}
